namespace BigFS.Metadata.Storage;

public enum RecordKind { Inode, Dirent, Layout, Chunk, Node, Counters, Reply }

/// <summary>
/// One upsert (Record is a private snapshot, never mutated again) or delete (Record null) of
/// the record with this key.
/// </summary>
public sealed record StoreChange(RecordKind Kind, object Key, object? Record)
{
    public static StoreChange Put(RecordKind kind, object key, object record) => new(kind, key, record);
    public static StoreChange Delete(RecordKind kind, object key) => new(kind, key, null);

    /// <summary>
    /// The same end state with one change per record: the last one wins. Many operations in one
    /// group commit touch the same records (the parent directory, the counters); writing each
    /// once is what makes a large group cheap.
    /// </summary>
    public static List<StoreChange> LastPerRecord(IReadOnlyList<StoreChange> changes)
    {
        var last = new Dictionary<(RecordKind, object), int>(changes.Count);
        for (var i = 0; i < changes.Count; i++)
            last[(changes[i].Kind, changes[i].Key)] = i;
        if (last.Count == changes.Count)
            return [.. changes];
        var result = new List<StoreChange>(last.Count);
        for (var i = 0; i < changes.Count; i++)
            if (last[(changes[i].Kind, changes[i].Key)] == i)
                result.Add(changes[i]);
        return result;
    }
}
