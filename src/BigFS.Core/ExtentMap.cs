namespace BigFS.Core;

/// <summary>
/// A file's layout: sorted, non-overlapping extents. Gaps are holes (read as zeros).
/// Writing an extent replaces whatever it covers, trimming or splitting older extents, so
/// an overwrite in the middle of a file never rewrites unchanged data.
/// </summary>
public sealed class ExtentMap
{
    private readonly List<FileExtent> _extents;

    public ExtentMap() => _extents = [];

    public ExtentMap(IEnumerable<FileExtent> sortedExtents)
    {
        _extents = [.. sortedExtents];
        foreach (var e in _extents)
            StoredBytes += e.Length;
    }

    /// <summary>Bytes backed by chunk data (holes excluded): what st_blocks reports.</summary>
    public long StoredBytes { get; private set; }

    public IReadOnlyList<FileExtent> Extents => _extents;

    /// <summary>Offset just past the last stored byte (not the file size: a file may end in a hole).</summary>
    public long DataEnd => _extents.Count == 0 ? 0 : _extents[^1].End;

    public void Write(FileExtent extent)
    {
        if (extent.Length <= 0)
            return;
        var (first, last) = OverlapRange(extent.FileOffset, extent.End);
        var replacement = new List<FileExtent>(3);
        if (first <= last)
        {
            var head = _extents[first].Clip(long.MinValue, extent.FileOffset);
            var tail = _extents[last].Clip(extent.End, long.MaxValue);
            if (head is { } h) replacement.Add(h);
            replacement.Add(extent);
            if (tail is { } t) replacement.Add(t);
            RemoveRange(first, last - first + 1);
            InsertRange(first, replacement);
        }
        else
        {
            InsertRange(first, [extent]);
        }
    }

    /// <summary>Drops everything at or beyond <paramref name="size"/>.</summary>
    public void Truncate(long size)
    {
        var (first, last) = OverlapRange(size, long.MaxValue);
        if (first > last)
            return;
        var head = _extents[first].Clip(long.MinValue, size);
        RemoveRange(first, last - first + 1);
        if (head is { } h)
            InsertRange(_extents.Count, [h]);
    }

    /// <summary>Replaces [start, end) with a hole (punch hole).</summary>
    public void Clear(long start, long end)
    {
        if (end <= start)
            return;
        var (first, last) = OverlapRange(start, end);
        if (first > last)
            return;
        var head = _extents[first].Clip(long.MinValue, start);
        var tail = _extents[last].Clip(end, long.MaxValue);
        RemoveRange(first, last - first + 1);
        var at = first;
        if (head is { } h) InsertRange(at++, [h]);
        if (tail is { } t) InsertRange(at, [t]);
    }

    /// <summary>The extents overlapping [start, end), clipped to it, in order.</summary>
    public List<FileExtent> Find(long start, long end)
    {
        var result = new List<FileExtent>();
        var (first, last) = OverlapRange(start, end);
        for (var i = first; i <= last; i++)
            result.Add(_extents[i].Clip(start, end)!.Value);
        return result;
    }

    public HashSet<string> ChunkIds()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in _extents)
            ids.Add(e.ChunkId);
        return ids;
    }

    private void RemoveRange(int index, int count)
    {
        for (var i = index; i < index + count; i++)
            StoredBytes -= _extents[i].Length;
        _extents.RemoveRange(index, count);
    }

    private void InsertRange(int index, List<FileExtent> extents)
    {
        foreach (var e in extents)
            StoredBytes += e.Length;
        _extents.InsertRange(index, extents);
    }

    /// <summary>Index range [first, last] of extents overlapping [start, end); first &gt; last when none.</summary>
    private (int First, int Last) OverlapRange(long start, long end)
    {
        // First extent whose end is after start.
        int lo = 0, hi = _extents.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_extents[mid].End <= start) lo = mid + 1;
            else hi = mid;
        }
        var first = lo;
        var last = first - 1;
        for (var i = first; i < _extents.Count && _extents[i].FileOffset < end; i++)
            last = i;
        return (first, last);
    }
}
