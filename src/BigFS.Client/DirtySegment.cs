namespace BigFS.Client;

/// <summary>
/// A contiguous run of buffered write data, [Offset, Offset + Length), held in 64 KiB pooled
/// pages (page i covers bytes [i·64 KiB, (i+1)·64 KiB) of the segment). Pages double as the
/// upload frames, so data is never copied again on its way to a node.
/// </summary>
internal sealed class DirtySegment(long offset)
{
    public const int PageSize = 64 * 1024;

    public long Offset { get; } = offset;
    public int Length { get; set; }
    public List<byte[]> Pages { get; } = [];
    public long End => Offset + Length;
    public int SpareCapacity => Pages.Count * PageSize - Length;

    /// <summary>Copies <paramref name="data"/> to segment position <paramref name="at"/>; pages must exist.</summary>
    public void CopyIn(int at, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var page = Pages[at / PageSize];
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
