using BigFS.Client;

namespace BigFS.Data.Tests;

public class DirtyRangeSetTests
{
    private const int Page = DirtySegment.PageSize;
    private int _rented;

    private DirtyRangeSet NewSet(int max = 4 * Page) => new(max, () => { _rented++; return new byte[Page]; }, _ => _rented--);

    private static byte[] Bytes(int n, byte value) => Enumerable.Repeat(value, n).ToArray();

    private static byte[] Contents(DirtySegment s)
    {
        var bytes = new byte[s.Length];
        s.CopyOut(0, bytes);
        return bytes;
    }

    [Fact]
    public void SequentialWrites_ExtendOneSegment_UpToTheMaximum()
    {
        var set = NewSet();
        var allowance = 100;

        Assert.Equal(Page + 10, set.Write(0, Bytes(Page + 10, 1), ref allowance));
        Assert.Equal(3 * Page, set.Write(Page + 10, Bytes(3 * Page, 2), ref allowance));

        Assert.Equal(2, set.Segments.Count);
        Assert.Equal(4 * Page, set.Segments[0].Length);
        Assert.Equal((4L * Page, 4L * Page + 10), (set.Segments[1].Offset, set.Segments[1].End));
        Assert.Single(set.TakeFull());
        Assert.Equal(100 - 5, allowance);
    }

    [Fact]
    public void Overwrite_InsideBufferedData_NeedsNoPages_AndLaterDataWins()
    {
        var set = NewSet();
        var allowance = 10;
        set.Write(0, Bytes(1000, 1), ref allowance);
        var none = 0;

        Assert.Equal(100, set.Write(500, Bytes(100, 7), ref none));

        var data = Contents(Assert.Single(set.Segments));
        Assert.Equal(Bytes(500, 1).Concat(Bytes(100, 7)).Concat(Bytes(400, 1)), data);
    }

    [Fact]
    public void WriteIntoGap_StopsAtNextSegment_ThenOverwritesAndExtendsIt()
    {
        var set = NewSet();
        var allowance = 10;
        set.Write(2000, Bytes(100, 2), ref allowance);

        Assert.Equal(3000, set.Write(0, Bytes(3000, 9), ref allowance));

        // [0,2000) new; [2000,2100) overwritten and then extended to 3000.
        Assert.Equal(2, set.Segments.Count);
        Assert.Equal((0L, 2000L), (set.Segments[0].Offset, set.Segments[0].End));
        Assert.Equal(Bytes(1000, 9), Contents(set.Segments[1]));
        Assert.Equal((2000L, 3000L), (set.Segments[1].Offset, set.Segments[1].End));
    }

    [Fact]
    public void ZeroAllowance_WritesOnlyIntoExistingPages()
    {
        var set = NewSet();
        var allowance = 1;
        Assert.Equal(Page, set.Write(0, Bytes(Page + 5, 1), ref allowance));
        Assert.Equal(0, allowance);
        var none = 0;

        Assert.Equal(0, set.Write(Page, Bytes(5, 1), ref none));
        Assert.Equal(0, set.Write(10 * Page, Bytes(5, 1), ref none));
    }

    [Fact]
    public void Truncate_DropsBytesAndPagesBeyondSize()
    {
        var set = NewSet();
        var allowance = 10;
        set.Write(0, Bytes(2 * Page + 1, 1), ref allowance);
        set.Write(3 * Page, Bytes(10, 1), ref allowance);
        Assert.Equal(4, _rented);

        var freed = set.Truncate(Page - 1);

        Assert.Equal(3, freed);
        Assert.Equal(1, _rented);
        Assert.Equal(Page - 1, Assert.Single(set.Segments).Length);
    }
}
