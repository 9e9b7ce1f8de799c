namespace BigFS.Core;

/// <summary>[FileOffset, FileOffset + Length) of a file lives at [ChunkOffset, ChunkOffset + Length) of ChunkId.</summary>
public readonly record struct FileExtent(long FileOffset, long Length, string ChunkId, long ChunkOffset)
{
    public long End => FileOffset + Length;

    /// <summary>The part of this extent inside [start, end), or null when they do not overlap.</summary>
    public FileExtent? Clip(long start, long end)
    {
        var s = Math.Max(start, FileOffset);
        var e = Math.Min(end, End);
        if (s >= e)
            return null;
        return new FileExtent(s, e - s, ChunkId, ChunkOffset + (s - FileOffset));
    }
}
