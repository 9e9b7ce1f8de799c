using BigFS.Core;
using BigFS.Protocol;

namespace BigFS.Client;

/// <summary>
/// A sealed run of written data on its way to becoming committed extents: first uploading
/// (data still local), then uploaded (<see cref="ChunkId"/> set, local data released, reads go
/// to the nodes), then committed and forgotten. Guarded by the file's lock.
/// </summary>
/// <remarks>
/// Three kinds. A plain one is one buffered segment uploaded as it is (<see cref="Pages"/>).
/// A merged one covers a span of a region and holds several buffered <see cref="Pieces"/>: its
/// upload first reads its <see cref="Clusters"/> through the file (committed bytes, older
/// uploads, the pieces) and uploads what is not a hole as one packed chunk. A rewrite (compaction) is a merged one
/// without pieces. Merged chunks map the file through <see cref="Runs"/>, set once assembled.
/// </remarks>
internal sealed class PendingChunk(long sequence, long fileOffset, int length, List<byte[]>? pages)
{
    public long Sequence { get; } = sequence;
    public long FileOffset { get; } = fileOffset;
    /// <summary>May shrink (a truncate while it was in flight); the chunk itself keeps its size.</summary>
    public int Length { get; set; } = length;
    public int UploadLength { get; } = length;
    public long End => FileOffset + Length;
    /// <summary>A plain chunk's data until it is uploaded.</summary>
    public List<byte[]>? Pages { get; set; } = pages;
    /// <summary>A merged chunk's buffered data until it is uploaded (sorted, inside the span).</summary>
    public List<DirtySegment>? Pieces { get; set; }
    public bool IsMerged { get; init; }
    /// <summary>Merged chunks: the file ranges (inside the span) assembled into the chunk.</summary>
    public IReadOnlyList<RegionMergePolicy.Cluster> Clusters { get; init; } = [];
    /// <summary>Merged chunks, once uploaded: [file offset, length) at chunk offset (chunk id left empty). Holes are not in it.</summary>
    public List<FileExtent>? Runs { get; set; }
    /// <summary>
    /// Merged chunks, once assembled: the inode version of the committed layout their gaps were
    /// filled from (0: nothing committed was read; -1: the layout changed while reading), and
    /// the file ranges of their own pieces — all that may be committed if that version is stale.
    /// </summary>
    public long ReadVersion { get; set; }
    public List<(long Start, long End)> PieceRanges { get; set; } = [];
    public string? ChunkId { get; set; }
    public IReadOnlyList<ChunkCopy> Copies { get; set; } = [];
    public Task Upload { get; set; } = Task.CompletedTask;
    public Exception? Error { get; set; }

    /// <summary>Buffer memory charged to the write budget until the upload succeeds.</summary>
    public long BudgetBytes =>
        Pages is { } pages ? DirtySegment.BytesOf(pages) : Pieces?.Sum(p => p.MemoryBytes) ?? 0;

    /// <summary>
    /// What this chunk contributes to the file once uploaded, clipped to its current length;
    /// with <paramref name="piecesOnly"/>, a merged chunk contributes only its own pieces (the
    /// bytes it filled gaps with are left out: they may be older than another writer's).
    /// </summary>
    public IEnumerable<FileExtent> UploadedExtents(bool piecesOnly = false)
    {
        if (ChunkId is not { Length: > 0 } id)
            yield break;
        if (!IsMerged)
        {
            if (Length > 0)
                yield return new FileExtent(FileOffset, Length, id, 0);
            yield break;
        }
        foreach (var run in Runs!)
        {
            if (run.Clip(FileOffset, End) is not { } part)
                continue;
            if (!piecesOnly)
            {
                yield return part with { ChunkId = id };
                continue;
            }
            foreach (var (start, end) in PieceRanges)
                if (part.Clip(start, end) is { } own)
                    yield return own with { ChunkId = id };
        }
    }
}
