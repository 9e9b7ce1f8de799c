namespace BigFS.Metadata.Model;

/// <summary>Monotonic counters that must survive restarts (inode ids are never reused).</summary>
public sealed class CountersRecord
{
    public const string SingletonId = "counters";
    public string Id { get; set; } = SingletonId;
    public long NextInode { get; set; } = 2;
    public long NextCookie { get; set; } = 1;

    public CountersRecord Clone() => (CountersRecord)MemberwiseClone();
}
