using BigFS.Core;

namespace BigFS.Client;

/// <summary>
/// Decides which chunk-aligned regions of a file's committed layout are fragmented enough to
/// be rewritten as one chunk: those whose bytes come from more than
/// <see cref="MaxChunksPerRegion"/> distinct chunks. Holes do not count (a sparse region
/// served by one chunk is not fragmented). Pure logic: no I/O.
/// </summary>
public sealed class CompactionPolicy(int regionSize, int maxChunksPerRegion = CompactionPolicy.DefaultMaxChunksPerRegion)
{
    public const int DefaultMaxChunksPerRegion = 8;

    public int MaxChunksPerRegion => maxChunksPerRegion;

    /// <summary>Starts of the regions to rewrite, ascending, among the regions overlapping [start, end).</summary>
    public List<long> RegionsToCompact(IEnumerable<FileExtent> sortedExtents, long start, long end)
    {
        var result = new List<long>();
        var chunks = new HashSet<string>(StringComparer.Ordinal);
        long current = -1;
        foreach (var e in sortedExtents)
        {
            if (e.End <= start || e.FileOffset >= end)
                continue;
            // An extent may span several regions: it counts in each.
            for (var region = e.FileOffset / regionSize; region * regionSize < e.End; region++)
            {
                if (region != current)
                {
                    Close();
                    current = region;
                }
                chunks.Add(e.ChunkId);
            }
        }
        Close();
        return result;

        void Close()
        {
            var regionStart = current * regionSize;
            if (current >= 0 && chunks.Count > maxChunksPerRegion && regionStart < end && regionStart + regionSize > start)
                result.Add(regionStart);
            chunks.Clear();
        }
    }
}
