using System.Collections.Frozen;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// Wire ids of the unary metadata methods the fast transport carries: the Namespace service's
/// (mounts) and the Cluster service's hot ones (storage nodes registering and confirming
/// chunks). Ids are part of the protocol: never renumber or reuse one; a new method gets the
/// next free id. Streaming methods (WatchChanges, ReportInventory) stay on gRPC, and so does a
/// waiting Lock: its cancellation (an interrupted F_SETLKW) must reach the server.
/// </summary>
public static class MetaMethodIds
{
    private const string Namespace = "/bigfs.v1.Namespace/", Cluster = "/bigfs.v1.Cluster/";

    private static readonly (string FullName, ushort Id)[] Table =
    [
        (Namespace + "Lookup", 1), (Namespace + "GetAttr", 2), (Namespace + "SetAttr", 3), (Namespace + "CreateNode", 4),
        (Namespace + "ReadLink", 5), (Namespace + "Link", 6), (Namespace + "Unlink", 7), (Namespace + "RemoveDirectory", 8),
        (Namespace + "Rename", 9), (Namespace + "ReadDirectory", 10), (Namespace + "StatFs", 11), (Namespace + "GetXattr", 12),
        (Namespace + "SetXattr", 13), (Namespace + "ListXattr", 14), (Namespace + "RemoveXattr", 15), (Namespace + "GetLayout", 16),
        (Namespace + "CommitWrite", 17), (Namespace + "Sync", 18), (Namespace + "OpenSession", 19), (Namespace + "RenewSession", 20),
        (Namespace + "CloseSession", 21), (Namespace + "Open", 22), (Namespace + "Release", 23), (Namespace + "ListWritableNodes", 24),
        (Namespace + "ReportBadCopy", 25),
        (Cluster + "RegisterChunk", 26), (Cluster + "ConfirmReplica", 27), (Cluster + "Heartbeat", 28), (Cluster + "ReportCorruptChunk", 29),
        (Namespace + "AbandonChunks", 30),
        (Namespace + "TryLock", 31), (Namespace + "TestLock", 32),
        (Namespace + "CopyRange", 33),
    ];

    private static readonly FrozenDictionary<string, ushort> ByFullName =
        Table.ToFrozenDictionary(m => m.FullName, m => m.Id, StringComparer.Ordinal);

    /// <summary>The id of a gRPC method by its full name ("/bigfs.v1.Namespace/Rename"), if the fast transport carries it.</summary>
    public static bool TryGetId(string fullName, out ushort id) => ByFullName.TryGetValue(fullName, out id);

    public static IEnumerable<(string FullName, ushort Id)> All => Table;
}
