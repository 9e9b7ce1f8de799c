using BigFS.Client;

namespace BigFS.Data.Tests;

public class DirtyRangeSetTests
{
    private const int Page = DirtySegment.PageSize;
    private long _rentedBytes;
    private int _rented;

    private DirtyRangeSet NewSet(int max = 4 * Page) => new(max,
        size => { _rented++; _rentedBytes += size; return new byte[size]; },
        page => { _rented--; _rentedBytes -= page.Length; });

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
        long allowance = 100 * Page;

        Assert.Equal(Page + 10, set.Write(0, Bytes(Page + 10, 1), ref allowance));
        Assert.Equal(3 * Page, set.Write(Page + 10, Bytes(3 * Page, 2), ref allowance));

        Assert.Equal(2, set.Segments.Count);
        Assert.Equal(4 * Page, set.Segments[0].Length);
        Assert.Equal(Bytes(Page + 10, 1).Concat(Bytes(3 * Page - 10, 2)), Contents(set.Segments[0]));
        Assert.Equal((4L * Page, 4L * Page + 10), (set.Segments[1].Offset, set.Segments[1].End));
        Assert.Single(set.TakeFull());
        Assert.Empty(set.TakeFull());
        Assert.Equal(100L * Page - _rentedBytes, allowance);
        Assert.Equal(_rentedBytes, set.MemoryBytes + 4L * Page);
    }

    [Fact]
    public void SmallWrites_TakeSmallPages_ThatGrowByDoubling()
    {
        var set = NewSet();
        long allowance = 100 * Page;

        set.Write(10 * Page, Bytes(4096, 1), ref allowance);
        Assert.Equal(4096, _rentedBytes);
        set.Write(10 * Page + 4096, Bytes(4096, 2), ref allowance);
        Assert.Equal(8192, _rentedBytes);
        Assert.Equal(1, _rented);
        set.Write(10 * Page + 8192, Bytes(Page, 3), ref allowance);

        var s = Assert.Single(set.Segments);
        Assert.Equal(Bytes(4096, 1).Concat(Bytes(4096, 2)).Concat(Bytes(Page, 3)), Contents(s));
        Assert.Equal(Page, s.Pages[0].Length);
        Assert.Equal(2, _rented);
        Assert.Equal(100L * Page - _rentedBytes, allowance);
    }

    [Fact]
    public void Overwrite_InsideBufferedData_NeedsNoPages_AndLaterDataWins()
    {
        var set = NewSet();
        long allowance = 10 * Page;
        set.Write(0, Bytes(1000, 1), ref allowance);
        long none = 0;

        Assert.Equal(100, set.Write(500, Bytes(100, 7), ref none));

        var data = Contents(Assert.Single(set.Segments));
        Assert.Equal(Bytes(500, 1).Concat(Bytes(100, 7)).Concat(Bytes(400, 1)), data);
    }

    [Fact]
    public void WriteIntoGap_StopsAtNextSegment_ThenOverwritesAndExtendsIt()
    {
        var set = NewSet();
        long allowance = 10 * Page;
        set.Write(2000, Bytes(100, 2), ref allowance);

        Assert.Equal(3000, set.Write(0, Bytes(3000, 9), ref allowance));

        // [0,2000) new; [2000,2100) overwritten and then extended to 3000.
        Assert.Equal(2, set.Segments.Count);
        Assert.Equal((0L, 2000L), (set.Segments[0].Offset, set.Segments[0].End));
        Assert.Equal(Bytes(1000, 9), Contents(set.Segments[1]));
        Assert.Equal((2000L, 3000L), (set.Segments[1].Offset, set.Segments[1].End));
    }

    [Fact]
    public void Allowance_BoundsNewMemory_AndZeroWritesOnlyIntoExistingRoom()
    {
        var set = NewSet();
        long allowance = Page;
        Assert.Equal(Page, set.Write(0, Bytes(Page + 5, 1), ref allowance));
        Assert.Equal(0, allowance);
        long none = 0;

        Assert.Equal(0, set.Write(Page, Bytes(5, 1), ref none));
        Assert.Equal(0, set.Write(10 * Page, Bytes(5, 1), ref none));

        long little = 4096;
        Assert.Equal(100, set.Write(20 * Page, Bytes(100, 1), ref little));
        Assert.Equal(0, little);
        Assert.Equal(3996, set.Write(20 * Page + 100, Bytes(5000, 1), ref none)); // the rest of that 4 KiB page
    }

    [Fact]
    public void Truncate_DropsBytesAndPagesBeyondSize()
    {
        var set = NewSet();
        long allowance = 10 * Page;
        set.Write(0, Bytes(2 * Page + 1, 1), ref allowance);
        set.Write(3 * Page, Bytes(10, 1), ref allowance);
        Assert.Equal(4, _rented);

        var freed = set.Truncate(Page - 1);

        Assert.Equal(Page + 4096 + 4096, freed); // a whole page, the 4 KiB tail page, the other segment's page
        Assert.Equal(1, _rented);
        Assert.Equal(Page - 1, Assert.Single(set.Segments).Length);
    }

    [Fact]
    public void Overlapping_FindsOnlyTheSegmentsInRange()
    {
        var set = NewSet();
        long allowance = 100 * Page;
        for (var i = 0; i < 100; i++)
            set.Write(i * 10_000L, Bytes(100, 1), ref allowance);

        Assert.Equal([250_000L, 260_000L], set.Overlapping(250_050, 260_001).Select(s => s.Offset));
        Assert.Empty(set.Overlapping(250_100, 260_000));
    }
}
