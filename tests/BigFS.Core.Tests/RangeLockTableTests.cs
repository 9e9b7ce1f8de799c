using BigFS.Core;

namespace BigFS.Core.Tests;

public class RangeLockTableTests
{
    private const long Eof = long.MaxValue;
    private readonly RangeLockTable<int> _t = new();

    private string Held() => string.Join(" ", _t.Held.OrderBy(h => h.Owner).ThenBy(h => h.Start)
        .Select(h => $"{h.Owner}:{(h.Type == RangeLockType.Write ? "w" : "r")}{h.Start}-{(h.End == Eof ? "eof" : h.End.ToString())}"));

    [Fact]
    public void Owners_conflict_where_ranges_overlap_and_one_writes()
    {
        _t.Set(1, 0, 99, RangeLockType.Write, 10);
        Assert.Equal(1, _t.FindConflict(2, 50, 59, RangeLockType.Read)?.Owner);
        Assert.Null(_t.FindConflict(2, 100, 200, RangeLockType.Write));
        Assert.Null(_t.FindConflict(1, 0, Eof, RangeLockType.Write));   // an owner never conflicts with itself
        _t.Set(1, 0, 99, RangeLockType.Read, 10);
        Assert.Null(_t.FindConflict(2, 0, 99, RangeLockType.Read));
        Assert.Equal(10u, _t.FindConflict(2, 99, 99, RangeLockType.Write)?.Pid);
    }

    [Fact]
    public void An_owners_locks_split_on_unlock_and_merge_with_their_own_kind()
    {
        _t.Set(1, 0, 99, RangeLockType.Write, 0);
        Assert.True(_t.Set(1, 40, 59, null, 0));
        Assert.Equal("1:w0-39 1:w60-99", Held());
        _t.Set(1, 40, 59, RangeLockType.Write, 0);
        Assert.Equal("1:w0-99", Held());                  // adjacent and overlapping merge back
        Assert.False(_t.Set(1, 10, 19, RangeLockType.Write, 0));
        Assert.True(_t.Set(1, 10, 19, RangeLockType.Read, 0));   // a downgrade lets readers in
        Assert.Equal("1:w0-9 1:r10-19 1:w20-99", Held());
        _t.Set(1, 100, Eof, RangeLockType.Write, 0);
        Assert.Equal("1:w0-9 1:r10-19 1:w20-eof", Held());
        Assert.False(_t.Set(1, 0, Eof, RangeLockType.Write, 0));  // an upgrade frees nothing
        Assert.Equal("1:w0-eof", Held());
    }

    [Fact]
    public void Releasing_an_owner_leaves_the_others()
    {
        _t.Set(1, 0, 9, RangeLockType.Read, 0);
        _t.Set(2, 0, 9, RangeLockType.Read, 0);
        Assert.True(_t.ReleaseAll(o => o == 1));
        Assert.Equal("2:r0-9", Held());
        Assert.False(_t.Set(3, 0, 9, null, 0));   // unlocking what one does not hold changes nothing
        Assert.True(_t.Set(2, 0, Eof, null, 0));
        Assert.True(_t.IsEmpty);
    }
}
