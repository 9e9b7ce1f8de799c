namespace BigFS.Client;

/// <summary>
/// A file's buffered, not yet sealed writes: sorted, non-overlapping segments of at most
/// <c>maxSegmentLength</c> (the chunk size). A write overwrites buffered bytes in place,
/// extends the segment it continues, or starts a new one, so contiguous data stays in as
/// few segments as possible. New memory is only taken within a caller-granted allowance in
/// bytes (the global memory budget). Every operation but <see cref="TakeAll"/> and
/// <see cref="Truncate"/> costs O(log segments) plus the bytes copied, so thousands of
/// scattered small writes stay cheap. Not thread-safe: the owning file locks around it.
/// </summary>
internal sealed class DirtyRangeSet(int maxSegmentLength, Func<int, byte[]> rentPage, Action<byte[]> returnPage)
{
    private readonly List<DirtySegment> _segments = [];
    private readonly List<DirtySegment> _full = [];

    public IReadOnlyList<DirtySegment> Segments => _segments;
    public bool IsEmpty => _segments.Count == 0;
    public long End => _segments.Count == 0 ? 0 : _segments[^1].End;
    public long MemoryBytes => _segments.Sum(s => s.MemoryBytes);

    /// <summary>Buffers as much of <paramref name="data"/> (at file <paramref name="offset"/>) as the allowance (bytes of new memory) permits.</summary>
    /// <returns>The number of leading bytes of <paramref name="data"/> buffered.</returns>
    public int Write(long offset, ReadOnlySpan<byte> data, ref long allowance)
    {
        var total = 0;
        while (!data.IsEmpty)
        {
            var n = WriteStep(offset, data, ref allowance);
            if (n == 0)
                break;
            total += n;
            offset += n;
            data = data[n..];
        }
        return total;
    }

    private int WriteStep(long pos, ReadOnlySpan<byte> data, ref long allowance)
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
            NoteIfFull(s);
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
            NoteIfFull(s);
            return n;
        }
    }

    private void NoteIfFull(DirtySegment s)
    {
        if (s.Length >= maxSegmentLength)
            _full.Add(s);
    }

    /// <summary>
    /// Makes room for <paramref name="want"/> more bytes at the segment's end, within the
    /// allowance; returns how many fit. A short last page grows by doubling (copied), so
    /// small writes take small pages and sequential ones soon get whole 64 KiB pages.
    /// </summary>
    private int Grow(DirtySegment s, int want, ref long allowance)
    {
        var target = s.Length + want;
        while (s.Capacity < target)
        {
            var pageStart = (s.Pages.Count - 1) * DirtySegment.PageSize;
            if (s.Pages.Count > 0 && s.Pages[^1].Length < DirtySegment.PageSize)
            {
                var last = s.Pages[^1];
                var size = DirtySegment.PageFor(target - pageStart);
                if (size - last.Length > allowance)
                    break;
                var bigger = rentPage(size);
                last.AsSpan(0, s.Length - pageStart).CopyTo(bigger);
                s.Pages[^1] = bigger;
                allowance -= bigger.Length - last.Length;
                returnPage(last);
            }
            else
            {
                var size = DirtySegment.PageFor(target - s.Pages.Count * DirtySegment.PageSize);
                if (size > allowance)
                    break;
                var page = rentPage(size);
                s.Pages.Add(page);
                allowance -= page.Length;
            }
        }
        return Math.Max(0, Math.Min(want, s.Capacity - s.Length));
    }

    /// <summary>Removes and returns the segments that reached the maximum length.</summary>
    public List<DirtySegment> TakeFull()
    {
        if (_full.Count == 0)
            return [];
        var full = new List<DirtySegment>(_full.Count);
        foreach (var s in _full)
        {
            var i = FirstEndingAfter(s.Offset);
            if (i < _segments.Count && ReferenceEquals(_segments[i], s) && s.Length >= maxSegmentLength)
            {
                _segments.RemoveAt(i);
                full.Add(s);
            }
        }
        _full.Clear();
        return full;
    }

    public List<DirtySegment> TakeAll()
    {
        var all = _segments.ToList();
        _segments.Clear();
        _full.Clear();
        return all;
    }

    /// <summary>Removes the segments at the given index ranges of <see cref="Segments"/> (disjoint, any order).</summary>
    public void RemoveRanges(IEnumerable<(int First, int Count)> ranges)
    {
        foreach (var (first, count) in ranges.OrderByDescending(r => r.First))
            _segments.RemoveRange(first, count);
    }

    /// <summary>The segments overlapping [start, end), in order.</summary>
    public IEnumerable<DirtySegment> Overlapping(long start, long end)
    {
        for (var i = FirstEndingAfter(start); i < _segments.Count && _segments[i].Offset < end; i++)
            yield return _segments[i];
    }

    /// <summary>Drops buffered bytes at or beyond <paramref name="size"/>; returns the bytes of memory freed.</summary>
    public long Truncate(long size)
    {
        long freed = 0;
        for (var i = _segments.Count - 1; i >= 0; i--)
        {
            var s = _segments[i];
            if (s.End <= size)
                break;
            var keep = (int)Math.Max(0, size - s.Offset);
            var keepPages = (keep + DirtySegment.PageSize - 1) / DirtySegment.PageSize;
            while (s.Pages.Count > keepPages)
            {
                freed += s.Pages[^1].Length;
                returnPage(s.Pages[^1]);
                s.Pages.RemoveAt(s.Pages.Count - 1);
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
