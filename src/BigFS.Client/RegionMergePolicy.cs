namespace BigFS.Client;

/// <summary>
/// Decides, when buffered writes are sealed, which pieces of one chunk-aligned region are
/// uploaded as ONE merged chunk (the committed bytes between them read back and combined)
/// instead of one small chunk each. Pure logic: no I/O.
/// </summary>
/// <remarks>
/// A chunk has a fixed cost (an upload, a registration, replicas, a metadata record, an
/// extent in every later layout read) that is about the cost of moving
/// <see cref="PieceCostBytes"/> of data. Merging is worth it when the committed bytes to read
/// and upload again are at most that much per piece saved. The merged span is the whole
/// region (up to the file's end) when affordable, which also repairs older fragmentation;
/// otherwise just from the first piece to the end of the last.
/// </remarks>
public sealed class RegionMergePolicy(int regionSize, long pieceCostBytes = RegionMergePolicy.DefaultPieceCostBytes)
{
    public const long DefaultPieceCostBytes = 1024 * 1024;

    public readonly record struct Piece(long Offset, int Length)
    {
        public long End => Offset + Length;
    }

    /// <summary>Pieces [First, First + Count) of the input; merged into one chunk over [SpanStart, SpanEnd) when <see cref="Merge"/>.</summary>
    public readonly record struct Group(int First, int Count, bool Merge, long SpanStart, long SpanEnd);

    public int RegionSize => regionSize;
    public long PieceCostBytes => pieceCostBytes;

    /// <summary>Plans the sealing of sorted, non-overlapping pieces of a file of <paramref name="fileSize"/> bytes.</summary>
    public List<Group> Plan(IReadOnlyList<Piece> pieces, long fileSize)
    {
        var groups = new List<Group>();
        for (var i = 0; i < pieces.Count;)
        {
            var region = pieces[i].Offset / regionSize;
            var regionStart = region * regionSize;
            var regionEnd = regionStart + regionSize;
            if (pieces[i].End > regionEnd)
            {
                // Crosses a region boundary (contiguous data): uploaded as it is.
                groups.Add(new Group(i, 1, false, pieces[i].Offset, pieces[i].End));
                i++;
                continue;
            }
            var j = i;
            long dirty = 0;
            while (j < pieces.Count && pieces[j].End <= regionEnd)
                dirty += pieces[j++].Length;
            var count = j - i;
            var first = pieces[i].Offset;
            var last = pieces[j - 1].End;
            var wholeEnd = Math.Min(regionEnd, Math.Max(fileSize, last));
            if (count >= 2 && Affordable(count, dirty, wholeEnd - regionStart))
                groups.Add(new Group(i, count, true, regionStart, wholeEnd));
            else if (count >= 2 && Affordable(count, dirty, last - first))
                groups.Add(new Group(i, count, true, first, last));
            else
            {
                for (var k = i; k < j; k++)
                    groups.Add(new Group(k, 1, false, pieces[k].Offset, pieces[k].End));
            }
            i = j;
        }
        return groups;
    }

    /// <summary>
    /// Orders a plan for partial sealing under memory pressure: cheapest first, by bytes uploaded
    /// per buffered byte freed (a plain piece costs 1; a merged region its span over its dirty
    /// bytes), so sparse regions stay buffered and keep gathering writes.
    /// </summary>
    public static List<Group> CheapestFirst(IReadOnlyList<Piece> pieces, IEnumerable<Group> plan) =>
        plan.OrderBy(g =>
        {
            if (!g.Merge)
                return 1.0;
            long dirty = 0;
            for (var k = g.First; k < g.First + g.Count; k++)
                dirty += pieces[k].Length;
            return (double)(g.SpanEnd - g.SpanStart) / Math.Max(1, dirty);
        }).ThenBy(g => g.First).ToList();

    /// <summary>Whether re-uploading the span's other bytes costs no more than the chunks saved (count − 1).</summary>
    private bool Affordable(int count, long dirty, long span) => span - dirty <= (count - 1) * pieceCostBytes;
}
