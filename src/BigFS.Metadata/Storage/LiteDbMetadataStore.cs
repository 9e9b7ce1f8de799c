using BigFS.Metadata.Model;
using LiteDB;

namespace BigFS.Metadata.Storage;

/// <summary>
/// LiteDB (direct mode) opened over our own FileStreams so that every applied batch is made
/// durable with an explicit fsync of the data and log files (LiteDB itself does not fsync on
/// commit). All collections and indexes are created in the constructor, never lazily.
/// Must be used from a single thread after construction (LiteDB transactions are thread-bound).
/// </summary>
public sealed class LiteDbMetadataStore : IMetadataStore
{
    public const string DataFileName = "metadata.db";
    public const string LogFileName = "metadata-log.db";

    private static readonly Dictionary<RecordKind, string> CollectionNames = new()
    {
        [RecordKind.Inode] = "inodes",
        [RecordKind.Dirent] = "dirents",
        [RecordKind.Layout] = "layouts",
        [RecordKind.Chunk] = "chunks",
        [RecordKind.Node] = "nodes",
        [RecordKind.Counters] = "counters",
    };

    private readonly FileStream _data;
    private readonly FileStream _log;
    private readonly OrderedLogStream _orderedLog;
    private readonly BsonMapper _mapper;
    private readonly LiteDatabase _db;
    private bool _disposed;

    public LiteDbMetadataStore(string directory)
    {
        Directory.CreateDirectory(directory);
        _data = OpenFile(Path.Combine(directory, DataFileName));
        _log = OpenFile(Path.Combine(directory, LogFileName));
        _orderedLog = new OrderedLogStream(_log, _data);
        _mapper = new BsonMapper { EnumAsInteger = true };
        try
        {
            _db = new LiteDatabase(_data, _mapper, _orderedLog);
            foreach (var name in CollectionNames.Values)
                _db.GetCollection(name).EnsureIndex("_id", unique: true);
            // Secondary indexes used by offline tools; created up front, never lazily.
            _db.GetCollection(CollectionNames[RecordKind.Dirent]).EnsureIndex("Parent");
            _db.GetCollection(CollectionNames[RecordKind.Layout]).EnsureIndex("Ino");
            _db.GetCollection(CollectionNames[RecordKind.Chunk]).EnsureIndex("State");
            Sync();
        }
        catch
        {
            _data.Dispose();
            _log.Dispose();
            throw;
        }
    }

    private static FileStream OpenFile(string path) =>
        new(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite, 4096, FileOptions.RandomAccess);

    /// <summary>How often a checkpoint made the data file durable before reusing the log.</summary>
    public long CheckpointDataSyncs => _orderedLog.DataSyncs;

    public MetadataSnapshot Load()
    {
        List<T> All<T>(RecordKind kind) => _db.GetCollection<T>(CollectionNames[kind]).FindAll().ToList();
        return new MetadataSnapshot(All<InodeRecord>(RecordKind.Inode), All<DirentRecord>(RecordKind.Dirent),
            All<LayoutRegionRecord>(RecordKind.Layout), All<ChunkRecord>(RecordKind.Chunk), All<NodeRecord>(RecordKind.Node),
            All<CountersRecord>(RecordKind.Counters).FirstOrDefault());
    }

    public void Apply(IReadOnlyList<StoreChange> changes)
    {
        if (changes.Count == 0)
            return;
        if (!_db.BeginTrans())
            throw new InvalidOperationException("LiteDB: a transaction is already open on the writer thread");
        try
        {
            foreach (var change in changes)
            {
                var collection = _db.GetCollection(CollectionNames[change.Kind]);
                var id = change.Key switch
                {
                    long l => new BsonValue(l),
                    string s => new BsonValue(s),
                    _ => throw new ArgumentException($"unsupported key type {change.Key.GetType()}"),
                };
                if (change.Record is null)
                    collection.Delete(id);
                else
                    collection.Upsert(_mapper.ToDocument(change.Record.GetType(), change.Record));
            }
            if (!_db.Commit())
                throw new InvalidOperationException("LiteDB commit failed");
        }
        catch
        {
            _db.Rollback();
            throw;
        }
        Sync();
    }

    /// <summary>fsync both files: a commit only wrote the log through the OS cache.</summary>
    private void Sync()
    {
        _log.Flush(flushToDisk: true);
        _data.Flush(flushToDisk: true);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _db.Dispose();   // checkpoints the log into the data file
        try { Sync(); } catch (ObjectDisposedException) { }
        _data.Dispose();
        _log.Dispose();
    }
}
