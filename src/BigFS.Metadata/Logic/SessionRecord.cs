namespace BigFS.Metadata.Logic;

/// <summary>A mount's session: a lease and the inodes it has open (in memory only).</summary>
public sealed class SessionRecord
{
    public required string Id { get; init; }
    public string ClientName { get; init; } = "";
    public long ExpiresMs { get; set; }
    public Dictionary<long, int> Opens { get; } = [];
}
