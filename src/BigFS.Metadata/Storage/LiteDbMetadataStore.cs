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
        [RecordKind.Reply] = "replies",
    };

    private readonly FileStream _data;
    private readonly FileStream _log;
    private readonly TrackedFileStream _trackedData;
    private readonly TrackedFileStream _trackedLog;
    private readonly OrderedLogStream _orderedLog;
    private readonly Dictionary<RecordKind, ILiteCollection<BsonDocument>> _collections = [];
    private readonly BsonMapper _mapper;
    private readonly LiteDatabase _db;
    private bool _disposed;

    public LiteDbMetadataStore(string directory)
    {
        Directory.CreateDirectory(directory);
        _data = OpenFile(Path.Combine(directory, DataFileName));
        _log = OpenFile(Path.Combine(directory, LogFileName));
        _trackedData = new TrackedFileStream(_data);
        _trackedLog = new TrackedFileStream(_log);
        _orderedLog = new OrderedLogStream(_trackedLog, _trackedData);
        _mapper = new BsonMapper { EnumAsInteger = true };
        try
        {
            _db = new LiteDatabase(_trackedData, _mapper, _orderedLog);
            foreach (var (kind, name) in CollectionNames)
            {
                _collections[kind] = _db.GetCollection(name);
                _collections[kind].EnsureIndex("_id", unique: true);
            }
            // Secondary indexes used by offline tools; created up front, never lazily. Dirents have
            // none: nothing queries them (the server keeps the namespace in memory) and it cost every
            // create, rename and unlink one more page in the log it fsyncs.
            _db.GetCollection(CollectionNames[RecordKind.Dirent]).DropIndex("Parent");
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

    // Unbuffered (LiteDB writes whole pages anyway), so an fsync from the sync thread never
    // touches a buffer the writer thread is filling.
    private static FileStream OpenFile(string path) =>
        new(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0, FileOptions.RandomAccess);

    /// <summary>How often a checkpoint made the data file durable before reusing the log.</summary>
    public long CheckpointDataSyncs => _orderedLog.DataSyncs;

    /// <summary>fsyncs that reached the disk, log and data file together.</summary>
    public long FileSyncs => _trackedLog.Syncs + _trackedData.Syncs;

    public MetadataSnapshot Load()
    {
        List<T> All<T>(RecordKind kind) => _db.GetCollection<T>(CollectionNames[kind]).FindAll().ToList();
        return new MetadataSnapshot(All<InodeRecord>(RecordKind.Inode), All<DirentRecord>(RecordKind.Dirent),
            All<LayoutRegionRecord>(RecordKind.Layout), All<ChunkRecord>(RecordKind.Chunk), All<NodeRecord>(RecordKind.Node),
            All<CountersRecord>(RecordKind.Counters).FirstOrDefault(), All<ReplyRecord>(RecordKind.Reply));
    }

    public void Apply(IReadOnlyList<StoreChange> changes)
    {
        Write(changes);
        MakeDurable();
    }

    public void Write(IReadOnlyList<StoreChange> changes)
    {
        if (changes.Count == 0)
            return;
        if (!_db.BeginTrans())
            throw new InvalidOperationException("LiteDB: a transaction is already open on the writer thread");
        try
        {
            foreach (var change in changes)
            {
                var collection = _collections[change.Kind];
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
    }

    /// <summary>Thread-safe against a concurrent <see cref="Write"/>: the files are unbuffered, and a
    /// write counts as made durable only if it had completed before the fsync started.</summary>
    public void MakeDurable() => Sync();

    /// <summary>
    /// Makes the commit durable: fsync the log (the commit wrote it through the OS cache), and the
    /// data file only if a checkpoint wrote it since its last fsync. Each file is synced at most
    /// once per batch, and not at all if LiteDB already flushed it.
    /// </summary>
    private void Sync()
    {
        _trackedLog.SyncIfDirty();
        _trackedData.SyncIfDirty();
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
