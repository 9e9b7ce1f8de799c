using BigFS.Core;
using BigFS.Protocol;

namespace BigFS.Client;

/// <summary>
/// One fetched window of a file's committed layout, indexed once: a read finds its extents by
/// binary search and its chunks' copies by id, so a 4 KiB read of a fragmented file does not
/// walk (or copy) every extent and chunk of the 64 MiB window.
/// </summary>
internal sealed class CachedLayoutWindow
{
    private readonly List<FileExtent> _extents;
    private readonly Dictionary<string, IReadOnlyList<ChunkCopy>> _copies;

    public CachedLayoutWindow(long start, long length, LayoutReply reply)
    {
        _extents = new List<FileExtent>(reply.Extents.Count);
        foreach (var e in reply.Extents)
        {
            // Sorted and non-overlapping per the protocol; clipped to the window it was asked for.
            if (new FileExtent((long)e.FileOffset, (long)e.Length, e.ChunkId, (long)e.ChunkOffset).Clip(start, start + length) is { } c
                && (_extents.Count == 0 || c.FileOffset >= _extents[^1].End))
                _extents.Add(c);
        }
        _copies = new Dictionary<string, IReadOnlyList<ChunkCopy>>(reply.Chunks.Count, StringComparer.Ordinal);
        foreach (var location in reply.Chunks)
            _copies[location.ChunkId] = location.Copies;
    }

    public IReadOnlyList<FileExtent> Extents => _extents;

    /// <summary>The extents overlapping [from, to), clipped to it, in order.</summary>
    public IEnumerable<FileExtent> Overlapping(long from, long to)
    {
        int lo = 0, hi = _extents.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_extents[mid].End <= from) lo = mid + 1;
            else hi = mid;
        }
        for (var i = lo; i < _extents.Count && _extents[i].FileOffset < to; i++)
            yield return _extents[i].Clip(from, to)!.Value;
    }

    public IReadOnlyList<ChunkCopy>? CopiesOf(string chunkId) => _copies.GetValueOrDefault(chunkId);
}
