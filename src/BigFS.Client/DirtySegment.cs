namespace BigFS.Client;

/// <summary>
/// A contiguous run of buffered write data, [Offset, Offset + Length), held in pooled pages
/// (page i covers bytes [i·64 KiB, (i+1)·64 KiB) of the segment). Every page but the last is a
/// full 64 KiB array; the last may be a smaller power of two (at least 4 KiB), so a 4 KiB
/// random write costs 4 KiB of buffer, not 64. Pages double as the upload frames, so data is
/// never copied again on its way to a node.
/// </summary>
internal sealed class DirtySegment(long offset)
{
    public const int PageSize = 64 * 1024;
    public const int MinPageSize = 4 * 1024;

    public long Offset { get; } = offset;
    public int Length { get; set; }
    public List<byte[]> Pages { get; } = [];
    public long End => Offset + Length;
    public int Capacity => Pages.Count == 0 ? 0 : (Pages.Count - 1) * PageSize + Math.Min(PageSize, Pages[^1].Length);
    public int SpareCapacity => Capacity - Length;
    /// <summary>Buffer memory held (what the write budget is charged).</summary>
    public long MemoryBytes => BytesOf(Pages);

    public static long BytesOf(IReadOnlyList<byte[]> pages)
    {
        long bytes = 0;
        foreach (var page in pages)
            bytes += page.Length;
        return bytes;
    }

    /// <summary>The page size to rent for <paramref name="bytes"/> bytes of a page: a power of two from 4 KiB to 64 KiB.</summary>
    public static int PageFor(int bytes) =>
        bytes >= PageSize ? PageSize : Math.Max(MinPageSize, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)bytes));

    /// <summary>Copies <paramref name="data"/> to segment position <paramref name="at"/>; pages must exist.</summary>
    public void CopyIn(int at, ReadOnlySpan<byte> data) => CopyIn(Pages, at, data);

    public static void CopyIn(IReadOnlyList<byte[]> pages, int at, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var page = pages[at / PageSize];
            var inPage = at % PageSize;
            var n = Math.Min(data.Length, PageSize - inPage);
            data[..n].CopyTo(page.AsSpan(inPage));
            data = data[n..];
            at += n;
        }
    }

    public void CopyOut(int at, Span<byte> destination) => CopyOut(Pages, at, destination);

    public static void CopyOut(IReadOnlyList<byte[]> pages, int at, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var inPage = at % PageSize;
            var n = Math.Min(destination.Length, PageSize - inPage);
            pages[at / PageSize].AsSpan(inPage, n).CopyTo(destination);
            destination = destination[n..];
            at += n;
        }
    }
}
