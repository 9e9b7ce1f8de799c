namespace BigFS.Client;

/// <summary>
/// Decides, when buffered writes are sealed, which pieces of one chunk-aligned region are
/// uploaded together as ONE chunk instead of one small chunk each, and which committed bytes
/// between them are read back and uploaded again to keep the layout contiguous. Pure logic.
/// </summary>
/// <remarks>
/// Two or more pieces inside one region always share a chunk (a chunk costs an upload, a
/// registration, replicas and a metadata record; packing pieces costs nothing extra). The gap
/// between two neighbouring pieces is filled (read and re-uploaded) when it is at most
/// <see cref="GapFillBytes"/>, so nearby pieces become one extent; larger gaps are left to the
/// older extents, so a few scattered writes do not re-upload a whole region. When the region is
/// at least half dirty, the whole region (up to the file's end) is taken: one extent, which
/// also repairs older fragmentation. What stays fragmented is the compaction's business.
/// </remarks>
public sealed class RegionMergePolicy(int regionSize, int gapFillBytes = RegionMergePolicy.DefaultGapFillBytes)
{
    public const int DefaultGapFillBytes = 64 * 1024;

    public readonly record struct Piece(long Offset, int Length)
    {
        public long End => Offset + Length;
    }

    /// <summary>A file range a merged chunk is assembled from (read through the file, holes skipped).</summary>
    public readonly record struct Cluster(long Start, long End)
    {
        public long Length => End - Start;
    }

    /// <summary>
    /// Pieces [First, First + Count) of the input: uploaded as they are, or (<see cref="Merge"/>)
    /// as one chunk assembled from <see cref="Clusters"/> within [SpanStart, SpanEnd).
    /// </summary>
    public sealed record Group(int First, int Count, bool Merge, long SpanStart, long SpanEnd, IReadOnlyList<Cluster> Clusters)
    {
        /// <summary>Bytes this group uploads.</summary>
        public long UploadBytes => Clusters.Sum(c => c.Length);
    }

    public int RegionSize => regionSize;
    public int GapFillBytes => gapFillBytes;

    /// <summary>Plans the sealing of sorted, non-overlapping pieces of a file of <paramref name="fileSize"/> bytes.</summary>
    public List<Group> Plan(IReadOnlyList<Piece> pieces, long fileSize)
    {
        var groups = new List<Group>();
        for (var i = 0; i < pieces.Count;)
        {
            var regionStart = pieces[i].Offset / regionSize * regionSize;
            var regionEnd = regionStart + regionSize;
            if (pieces[i].End > regionEnd)
            {
                // Crosses a region boundary (contiguous data): uploaded as it is.
                groups.Add(Alone(pieces, i++));
                continue;
            }
            var j = i;
            long dirty = 0;
            while (j < pieces.Count && pieces[j].End <= regionEnd)
                dirty += pieces[j++].Length;
            if (j - i == 1)
            {
                groups.Add(Alone(pieces, i));
                i = j;
                continue;
            }
            var wholeEnd = Math.Min(regionEnd, Math.Max(fileSize, pieces[j - 1].End));
            List<Cluster> clusters;
            if (2 * dirty >= wholeEnd - regionStart)
            {
                clusters = [new Cluster(regionStart, wholeEnd)];
            }
            else
            {
                clusters = [];
                var start = pieces[i].Offset;
                var end = pieces[i].End;
                for (var k = i + 1; k < j; k++)
                {
                    if (pieces[k].Offset - end > gapFillBytes)
                    {
                        clusters.Add(new Cluster(start, end));
                        start = pieces[k].Offset;
                    }
                    end = pieces[k].End;
                }
                clusters.Add(new Cluster(start, end));
            }
            groups.Add(new Group(i, j - i, true, clusters[0].Start, clusters[^1].End, clusters));
            i = j;
        }
        return groups;
    }

    private static Group Alone(IReadOnlyList<Piece> pieces, int i) =>
        new(i, 1, false, pieces[i].Offset, pieces[i].End, [new Cluster(pieces[i].Offset, pieces[i].End)]);

    /// <summary>
    /// Orders a plan for partial sealing under memory pressure: cheapest first, by bytes uploaded
    /// per buffered byte freed, so sparse regions stay buffered and keep gathering writes.
    /// </summary>
    public static List<Group> CheapestFirst(IReadOnlyList<Piece> pieces, IEnumerable<Group> plan) =>
        plan.OrderBy(g =>
        {
            long dirty = 0;
            for (var k = g.First; k < g.First + g.Count; k++)
                dirty += pieces[k].Length;
            return (double)g.UploadBytes / Math.Max(1, dirty);
        }).ThenBy(g => g.First).ToList();
}
