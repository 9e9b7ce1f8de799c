using BigFS.Core;

namespace BigFS.Client;

/// <summary>
/// Upper bounds on how many distinct chunks each chunk-aligned region of a file draws on, as
/// far as this handle knows: exact counts from fetched layout windows, plus the chunks each of
/// its commits added. Lets a flush skip the layout fetch that compaction needs when no region
/// it touched can be over the bound (a new file written and closed costs no extra call).
/// Not thread-safe: the owning file locks around it.
/// </summary>
internal sealed class RegionChunkBounds(int regionSize)
{
    private readonly Dictionary<long, int> _bounds = [];
    private bool _complete;

    /// <summary>The file is known to be empty: every region draws on no chunk.</summary>
    public void ResetEmpty()
    {
        _bounds.Clear();
        _complete = true;
    }

    /// <summary>Others may have changed the file: nothing is known.</summary>
    public void Forget()
    {
        _bounds.Clear();
        _complete = false;
    }

    /// <summary>Exact counts from a layout window [start, start + length) (sorted extents inside it).</summary>
    public void Observe(long start, long length, IEnumerable<FileExtent> extents)
    {
        var counts = Count(extents);
        for (var region = (start + regionSize - 1) / regionSize; (region + 1) * regionSize <= start + length; region++)
            _bounds[region] = counts.GetValueOrDefault(region);
    }

    /// <summary>A commit of these extents succeeded: each region may draw on its new chunks too.</summary>
    public void AddCommitted(IEnumerable<FileExtent> extents)
    {
        foreach (var (region, added) in Count(extents))
        {
            if (_bounds.TryGetValue(region, out var known))
                _bounds[region] = known + added;
            else if (_complete)
                _bounds[region] = added;
        }
    }

    public void Set(long region, int chunks) => _bounds[region] = chunks;

    /// <summary>Whether the region may draw on more than <paramref name="max"/> chunks (unknown counts as yes).</summary>
    public bool MayExceed(long region, int max) =>
        _bounds.TryGetValue(region, out var known) ? known > max : !_complete;

    private Dictionary<long, int> Count(IEnumerable<FileExtent> extents)
    {
        var chunks = new Dictionary<long, HashSet<string>>();
        foreach (var e in extents)
        {
            for (var region = e.FileOffset / regionSize; region * regionSize < e.End; region++)
            {
                if (!chunks.TryGetValue(region, out var set))
                    chunks[region] = set = new HashSet<string>(StringComparer.Ordinal);
                set.Add(e.ChunkId);
            }
        }
        return chunks.ToDictionary(c => c.Key, c => c.Value.Count);
    }
}
