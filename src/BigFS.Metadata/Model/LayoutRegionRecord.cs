namespace BigFS.Metadata.Model;

/// <summary>The extents of one file inside one fixed region (64 MiB), so one document stays small.</summary>
public sealed class LayoutRegionRecord
{
    public const long RegionSize = 64L * 1024 * 1024;

    public string Id { get; set; } = "";   // KeyOf(ino, region)
    public long Ino { get; set; }
    public long Region { get; set; }
    public List<ExtentRecord> Extents { get; set; } = [];

    public static string KeyOf(long ino, long region) => $"{ino}:{region}";
}

public sealed class ExtentRecord
{
    public long FileOffset { get; set; }
    public long Length { get; set; }
    public string ChunkId { get; set; } = "";
    public long ChunkOffset { get; set; }
}
