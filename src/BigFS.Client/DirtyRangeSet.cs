namespace BigFS.Client;

/// <summary>
/// A file's buffered, not yet sealed writes: sorted, non-overlapping segments of at most
/// <c>maxSegmentLength</c> (the chunk size). A write overwrites buffered bytes in place,
/// extends the segment it continues, or starts a new one, so contiguous data stays in as
/// few segments as possible. New pages are only taken within a caller-granted allowance
/// (the global memory budget). Not thread-safe: the owning file locks around it.
/// </summary>
internal sealed class DirtyRangeSet(int maxSegmentLength, Func<byte[]> rentPage, Action<byte[]> returnPage)
{
    private readonly List<DirtySegment> _segments = [];

    public IReadOnlyList<DirtySegment> Segments => _segments;
    public bool IsEmpty => _segments.Count == 0;
    public long End => _segments.Count == 0 ? 0 : _segments[^1].End;
    public int PageCount => _segments.Sum(s => s.Pages.Count);

    /// <summary>Buffers as much of <paramref name="data"/> (at file <paramref name="offset"/>) as the page allowance permits.</summary>
    /// <returns>The number of leading bytes of <paramref name="data"/> buffered.</returns>
    public int Write(long offset, ReadOnlySpan<byte> data, ref int pageAllowance)
    {
        var total = 0;
        while (!data.IsEmpty)
        {
            var n = WriteStep(offset, data, ref pageAllowance);
            if (n == 0)
                break;
            total += n;
            offset += n;
            data = data[n..];
        }
        return total;
    }

    private int WriteStep(long pos, ReadOnlySpan<byte> data, ref int allowance)
    {
        var i = FirstEndingAfter(pos);
        if (i < _segments.Count && _segments[i].Offset <= pos)
        {
            // Overwrite buffered bytes in place.
            var s = _segments[i];
            var n = (int)Math.Min(data.Length, s.End - pos);
            s.CopyIn((int)(pos - s.Offset), data[..n]);
            return n;
        }
        var next = i < _segments.Count ? _segments[i].Offset : long.MaxValue;
        if (i > 0 && _segments[i - 1].End == pos && _segments[i - 1].Length < maxSegmentLength)
        {
            var s = _segments[i - 1];
            var n = (int)Math.Min(Math.Min(data.Length, maxSegmentLength - s.Length), next - pos);
            n = Grow(s, n, ref allowance);
            if (n == 0)
                return 0;
            var at = s.Length;
            s.Length += n;
            s.CopyIn(at, data[..n]);
            return n;
        }
        {
            var n = (int)Math.Min(Math.Min(data.Length, maxSegmentLength), next - pos);
            var s = new DirtySegment(pos);
            n = Grow(s, n, ref allowance);
            if (n == 0)
                return 0;
            s.Length = n;
            s.CopyIn(0, data[..n]);
            _segments.Insert(i, s);
            return n;
        }
    }

    /// <summary>Adds pages so <paramref name="want"/> more bytes fit, within the allowance; returns how many fit.</summary>
    private int Grow(DirtySegment s, int want, ref int allowance)
    {
        var spare = s.SpareCapacity;
        if (want <= spare)
            return want;
        var pages = (want - spare + DirtySegment.PageSize - 1) / DirtySegment.PageSize;
        if (pages > allowance)
        {
            pages = allowance;
            want = spare + pages * DirtySegment.PageSize;
        }
        for (var p = 0; p < pages; p++)
            s.Pages.Add(rentPage());
        allowance -= pages;
        return want;
    }

    /// <summary>Removes and returns the segments that reached the maximum length.</summary>
    public List<DirtySegment> TakeFull()
    {
        var full = _segments.Where(s => s.Length >= maxSegmentLength).ToList();
        if (full.Count > 0)
            _segments.RemoveAll(s => s.Length >= maxSegmentLength);
        return full;
    }

    public List<DirtySegment> TakeAll()
    {
        var all = _segments.ToList();
        _segments.Clear();
        return all;
    }

    /// <summary>Drops buffered bytes at or beyond <paramref name="size"/>; returns the number of pages freed.</summary>
    public int Truncate(long size)
    {
        var freed = 0;
        for (var i = _segments.Count - 1; i >= 0; i--)
        {
            var s = _segments[i];
            if (s.End <= size)
                break;
            var keep = (int)Math.Max(0, size - s.Offset);
            var keepPages = (keep + DirtySegment.PageSize - 1) / DirtySegment.PageSize;
            while (s.Pages.Count > keepPages)
            {
                returnPage(s.Pages[^1]);
                s.Pages.RemoveAt(s.Pages.Count - 1);
                freed++;
            }
            s.Length = keep;
            if (keep == 0)
                _segments.RemoveAt(i);
        }
        return freed;
    }

    private int FirstEndingAfter(long pos)
    {
        int lo = 0, hi = _segments.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_segments[mid].End <= pos) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
