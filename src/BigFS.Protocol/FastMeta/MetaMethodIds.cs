using System.Collections.Frozen;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// Wire ids of the unary Namespace methods the fast transport carries. Ids are part of the
/// protocol: never renumber or reuse one; a new method gets the next free id. Streaming
/// methods (WatchChanges) stay on gRPC.
/// </summary>
public static class MetaMethodIds
{
    private static readonly (string Name, ushort Id)[] Table =
    [
        ("Lookup", 1), ("GetAttr", 2), ("SetAttr", 3), ("CreateNode", 4), ("ReadLink", 5), ("Link", 6),
        ("Unlink", 7), ("RemoveDirectory", 8), ("Rename", 9), ("ReadDirectory", 10), ("StatFs", 11),
        ("GetXattr", 12), ("SetXattr", 13), ("ListXattr", 14), ("RemoveXattr", 15), ("GetLayout", 16),
        ("CommitWrite", 17), ("Sync", 18), ("OpenSession", 19), ("RenewSession", 20), ("CloseSession", 21),
        ("Open", 22), ("Release", 23), ("ListWritableNodes", 24), ("ReportBadCopy", 25),
    ];

    private const string Prefix = "/bigfs.v1.Namespace/";

    private static readonly FrozenDictionary<string, ushort> ByFullName =
        Table.ToFrozenDictionary(m => Prefix + m.Name, m => m.Id, StringComparer.Ordinal);

    /// <summary>The id of a gRPC method by its full name ("/bigfs.v1.Namespace/Rename"), if the fast transport carries it.</summary>
    public static bool TryGetId(string fullName, out ushort id) => ByFullName.TryGetValue(fullName, out id);

    public static IEnumerable<(string FullName, ushort Id)> All => Table.Select(m => (Prefix + m.Name, m.Id));
}
