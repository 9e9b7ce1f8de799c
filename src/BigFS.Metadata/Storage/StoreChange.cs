namespace BigFS.Metadata.Storage;

public enum RecordKind { Inode, Dirent, Layout, Chunk, Node, Counters }

/// <summary>
/// One upsert (Record is a private snapshot, never mutated again) or delete (Record null) of
/// the record with this key.
/// </summary>
public sealed record StoreChange(RecordKind Kind, object Key, object? Record)
{
    public static StoreChange Put(RecordKind kind, object key, object record) => new(kind, key, record);
    public static StoreChange Delete(RecordKind kind, object key) => new(kind, key, null);
}
