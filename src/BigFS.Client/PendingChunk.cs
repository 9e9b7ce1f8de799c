using BigFS.Protocol;

namespace BigFS.Client;

/// <summary>
/// A sealed run of written data on its way to becoming a committed extent: first uploading
/// (data still in <see cref="Pages"/>), then uploaded (<see cref="ChunkId"/> set, pages
/// released, reads go to the nodes), then committed and forgotten. Guarded by the file's lock.
/// </summary>
internal sealed class PendingChunk(long sequence, long fileOffset, int length, List<byte[]> pages)
{
    public long Sequence { get; } = sequence;
    public long FileOffset { get; } = fileOffset;
    /// <summary>May shrink (a truncate while it was in flight); the chunk itself keeps its size.</summary>
    public int Length { get; set; } = length;
    public int UploadLength { get; } = length;
    public long End => FileOffset + Length;
    public List<byte[]>? Pages { get; set; } = pages;
    public string? ChunkId { get; set; }
    public IReadOnlyList<ChunkCopy> Copies { get; set; } = [];
    public Task Upload { get; set; } = Task.CompletedTask;
    public Exception? Error { get; set; }
}
