using BigFS.Fuse.Session;

namespace BigFS.Fuse.Tests;

/// <summary>The leader/follower policy without a kernel: reader threads are simulated by calls
/// (and, where a follower must block, by real threads).</summary>
public class ReaderHandoffTests
{
    private sealed class Harness
    {
        public int Starts;
        public ReaderHandoff Handoff { get; }

        public Harness(int max, TimeSpan? tick = null)
        {
            Handoff = new ReaderHandoff(max, () => Interlocked.Increment(ref Starts), tick ?? TimeSpan.FromMilliseconds(1));
            Handoff.AddFirstReader();
        }

        public ReaderHandoff.Reader Leader()
        {
            var r = Handoff.Register();
            Assert.True(r.AwaitLeadership());
            return r;
        }

        /// <summary>A reader thread that waits for leadership; its task says whether it got it.</summary>
        public Task<bool> Follower()
        {
            var r = Handoff.Register();
            return Task.Factory.StartNew(r.AwaitLeadership, TaskCreationOptions.LongRunning);
        }
    }

    [Fact]
    public void A_leader_whose_handlers_complete_synchronously_keeps_reading_alone()
    {
        var h = new Harness(max: 4);
        var r = h.Leader();
        for (int i = 0; i < 100; i++)
        {
            Assert.True(r.BeginDispatch(expectSlow: false));
            Assert.True(r.EndDispatch());
        }
        Assert.Equal(0, h.Starts);
        Assert.Equal(1, h.Handoff.Leaders);
    }

    [Fact]
    public void A_slow_handler_starts_another_reader_up_to_the_maximum_and_the_first_to_finish_leads()
    {
        var h = new Harness(max: 2);
        var first = h.Leader();
        Assert.False(first.BeginDispatch(expectSlow: true));
        Assert.Equal(1, h.Starts); // no follower was idle: a reader is started
        Assert.Equal(0, h.Handoff.Leaders);

        var second = h.Leader(); // the started thread takes the lead
        Assert.False(second.BeginDispatch(expectSlow: true));
        Assert.Equal(1, h.Starts); // at the maximum: nobody to start
        Assert.Equal(0, h.Handoff.Leaders);
        Assert.Equal(2, h.Handoff.SlowHandlers);

        Assert.True(first.AwaitLeadership()); // finished its handler: leads at once
        Assert.Equal(1, h.Handoff.Leaders);
        Assert.Equal(1, h.Handoff.SlowHandlers);
    }

    [Fact]
    public async Task The_last_leader_going_slow_wakes_an_idle_follower_instead_of_starting_a_reader()
    {
        var h = new Harness(max: 4);
        var leader = h.Leader();
        var follower = h.Follower();
        await Poll.UntilAsync(() => h.Handoff.IdleFollowers == 1, TimeSpan.FromSeconds(10), "the follower to wait");
        Assert.False(follower.IsCompleted);

        Assert.True(leader.BeginDispatch(expectSlow: false)); // a prompt handler wakes nobody
        Assert.True(leader.EndDispatch());
        Assert.Equal(1, h.Handoff.IdleFollowers);

        Assert.False(leader.BeginDispatch(expectSlow: true));
        Assert.True(await follower.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, h.Starts);
        Assert.Equal(1, h.Handoff.Leaders);
    }

    [Fact]
    public void Parallel_slow_handlers_keep_a_reader_in_read_and_extra_leaders_step_back_once_requests_are_fast()
    {
        var h = new Harness(max: 4);
        var a = h.Leader();
        Assert.False(a.BeginDispatch(expectSlow: true));
        var b = h.Leader();
        Assert.True(a.AwaitLeadership()); // after a slow handler: may lead alongside b
        Assert.Equal(2, h.Handoff.Leaders);
        Assert.False(b.BeginDispatch(expectSlow: true)); // a still reads: no reader released
        Assert.Equal(1, h.Starts);
        Assert.Equal(1, h.Handoff.Leaders);

        Assert.True(b.AwaitLeadership());
        Assert.Equal(2, h.Handoff.Leaders);
        Assert.True(a.BeginDispatch(expectSlow: false));
        Assert.False(a.EndDispatch()); // fast again and b leads too: a steps back
        Assert.Equal(1, h.Handoff.Leaders);
        Assert.True(b.BeginDispatch(expectSlow: false));
        Assert.True(b.EndDispatch()); // the last leader never steps back
        Assert.Equal(1, h.Handoff.Leaders);
    }

    [Fact]
    public void The_watchdog_releases_a_reader_when_the_leader_is_stuck_in_a_handler()
    {
        var h = new Harness(max: 2);
        var stuck = h.Leader();
        Assert.True(stuck.BeginDispatch(expectSlow: false));
        Assert.Equal(ReaderHandoff.WatchdogVerdict.Busy, h.Handoff.CheckDispatches());
        Assert.Equal(ReaderHandoff.WatchdogVerdict.TookOver, h.Handoff.CheckDispatches());
        Assert.Equal(1, h.Starts);
        Assert.Equal(1, h.Handoff.Takeovers);
        Assert.Equal(0, h.Handoff.Leaders);

        var next = h.Leader();
        Assert.False(stuck.EndDispatch()); // it lost the lead while stuck
        Assert.True(stuck.AwaitLeadership()); // finishing a slow handler, it goes straight back to read()
        Assert.Equal(2, h.Handoff.Leaders);
        Assert.Equal(0, h.Handoff.SlowHandlers);
        Assert.True(next.BeginDispatch(expectSlow: false));
        Assert.False(next.EndDispatch());
        Assert.Equal(1, h.Handoff.Leaders);
    }

    [Fact]
    public void The_watchdog_leaves_prompt_leaders_alone_and_reports_idle_when_nothing_was_dispatched()
    {
        var h = new Harness(max: 2);
        var r = h.Leader();
        Assert.Equal(ReaderHandoff.WatchdogVerdict.Busy, h.Handoff.CheckDispatches()); // first look
        Assert.Equal(ReaderHandoff.WatchdogVerdict.Idle, h.Handoff.CheckDispatches());
        for (int i = 0; i < 3; i++)
        {
            Assert.True(r.BeginDispatch(expectSlow: false));
            Assert.Equal(ReaderHandoff.WatchdogVerdict.Busy, h.Handoff.CheckDispatches());
            Assert.True(r.EndDispatch());
        }
        Assert.Equal(ReaderHandoff.WatchdogVerdict.Idle, h.Handoff.CheckDispatches());
        Assert.Equal(0, h.Handoff.Takeovers);
        Assert.Equal(0, h.Starts);
    }

    [Fact]
    public async Task A_parked_watchdog_wakes_for_the_next_dispatch_and_takes_over_a_stuck_one()
    {
        var h = new Harness(max: 2);
        var r = h.Leader();
        var watchdog = new Thread(h.Handoff.RunWatchdog) { IsBackground = true };
        watchdog.Start();
        await Poll.UntilAsync(() => h.Handoff.WatchdogParked, TimeSpan.FromSeconds(10), "the idle watchdog to park");
        Assert.True(r.BeginDispatch(expectSlow: false));
        await Poll.UntilAsync(() => h.Handoff.Takeovers == 1, TimeSpan.FromSeconds(10), "the watchdog to take over");
        Assert.Equal(1, h.Starts);
        Assert.False(r.EndDispatch());
        h.Handoff.Stop();
        Assert.True(watchdog.Join(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Stop_releases_every_waiting_follower()
    {
        var h = new Harness(max: 4);
        h.Leader();
        var followers = new[] { h.Follower(), h.Follower(), h.Follower() };
        await Poll.UntilAsync(() => h.Handoff.IdleFollowers == 3, TimeSpan.FromSeconds(10), "three followers to wait");
        h.Handoff.Stop();
        foreach (var f in followers) Assert.False(await f.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(h.Handoff.IsStopping);
    }

    [Fact]
    public async Task Many_readers_in_parallel_keep_making_progress()
    {
        // Four simulated readers run random fast and slow "handlers". Were the session ever left with
        // no leader and everyone waiting as a follower, the dispatch count would stop growing.
        var h = new Harness(max: 4);
        for (int t = 1; t < 4; t++) h.Handoff.AddFirstReader(); // all four run from the start: none is ever started
        var readers = new List<Task>();
        int done = 0, dispatched = 0;
        for (int t = 0; t < 4; t++)
        {
            int seed = t;
            readers.Add(Task.Factory.StartNew(() =>
            {
                var r = h.Handoff.Register();
                var random = new Random(seed);
                if (!r.AwaitLeadership()) return;
                while (Volatile.Read(ref done) == 0)
                {
                    Interlocked.Increment(ref dispatched);
                    bool watched = r.BeginDispatch(expectSlow: random.Next(4) == 0);
                    Thread.SpinWait(random.Next(50));
                    if ((!watched || !r.EndDispatch()) && !r.AwaitLeadership()) return;
                }
            }, TaskCreationOptions.LongRunning));
        }
        await Poll.UntilAsync(() => Volatile.Read(ref dispatched) > 20_000, TimeSpan.FromSeconds(60), "20,000 dispatches");
        Volatile.Write(ref done, 1);
        h.Handoff.Stop();
        await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(Volatile.Read(ref dispatched) > 20_000);
        Assert.Equal(0, h.Starts);
    }
}
