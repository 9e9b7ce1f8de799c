using System.Diagnostics;
using BigFS.Fuse.Session;

namespace BigFS.Fuse.Tests;

public class SlowHandlerPredictorTests
{
    private static readonly long Slow = Stopwatch.Frequency / 1000; // 1 ms
    private const long Fast = 1;

    [Fact]
    public void Two_slow_runs_in_a_row_predict_slow_and_two_fast_ones_undo_it()
    {
        var p = new SlowHandlerPredictor(TimeSpan.FromMicroseconds(20));
        const uint read = 15, open = 14;
        Assert.False(p.ExpectSlow(read));
        p.Record(read, Slow);
        Assert.False(p.ExpectSlow(read)); // one preemption does not flip it
        p.Record(read, Slow);
        Assert.True(p.ExpectSlow(read));
        Assert.False(p.ExpectSlow(open)); // per opcode
        p.Record(read, Slow);
        p.Record(read, Fast);
        Assert.True(p.ExpectSlow(read)); // saturated: one fast run is not enough either
        p.Record(read, Fast);
        p.Record(read, Fast);
        Assert.False(p.ExpectSlow(read));
    }

    [Fact]
    public void Opcodes_beyond_the_table_share_a_slot_and_never_throw()
    {
        var p = new SlowHandlerPredictor(TimeSpan.FromMicroseconds(20));
        p.Record(4096, Slow);
        p.Record(uint.MaxValue, Slow);
        Assert.True(p.ExpectSlow(4096));
    }
}
