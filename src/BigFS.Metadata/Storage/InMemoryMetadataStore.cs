using BigFS.Metadata.Model;

namespace BigFS.Metadata.Storage;

/// <summary>A store that keeps the last applied records in dictionaries: for tests and throwaway clusters.</summary>
public sealed class InMemoryMetadataStore : IMetadataStore
{
    private readonly Dictionary<(RecordKind, object), object> _records = [];
    private readonly Lock _sync = new();

    public int AppliedBatches { get; private set; }

    public MetadataSnapshot Load()
    {
        lock (_sync)
        {
            List<T> Of<T>(RecordKind kind) => _records.Where(r => r.Key.Item1 == kind).Select(r => (T)r.Value).ToList();
            return new MetadataSnapshot(Of<InodeRecord>(RecordKind.Inode), Of<DirentRecord>(RecordKind.Dirent),
                Of<LayoutRegionRecord>(RecordKind.Layout), Of<ChunkRecord>(RecordKind.Chunk), Of<NodeRecord>(RecordKind.Node),
                Of<CountersRecord>(RecordKind.Counters).FirstOrDefault(), Of<ReplyRecord>(RecordKind.Reply));
        }
    }

    public void Apply(IReadOnlyList<StoreChange> changes)
    {
        lock (_sync)
        {
            foreach (var change in changes)
            {
                if (change.Record is null) _records.Remove((change.Kind, change.Key));
                else _records[(change.Kind, change.Key)] = change.Record;
            }
            AppliedBatches++;
        }
    }

    public void Dispose() { }
}
