namespace BigFS.Metadata.Logic;

/// <summary>A mount's session: a lease and the inodes it has open (in memory only).</summary>
public sealed class SessionRecord
{
    public required string Id { get; init; }
    public string ClientName { get; init; } = "";
    public long ExpiresMs { get; set; }
    /// <summary>
    /// Known to its mount as live here: opened here, or renewed since this server started. A
    /// session another call re-created after a restart is not, until its mount renews it and
    /// is told to register its opens and locks again.
    /// </summary>
    public bool Confirmed { get; set; }
    public Dictionary<long, int> Opens { get; } = [];
}
