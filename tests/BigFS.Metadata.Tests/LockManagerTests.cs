using BigFS.Core;
using BigFS.Metadata.Logic;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Tests;

public class LockManagerTests
{
    private const long Eof = long.MaxValue;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);
    private readonly ManualTimeProvider _time = new();
    private static readonly LockOwner A = new("mount-a", 7), B = new("mount-b", 7), C = new("mount-c", 3);

    private LockManager Manager() => new(_time, _time.GetUtcNow().ToUnixTimeMilliseconds());

    private static Task<int> Take(LockManager m, LockOwner o, RangeLockType? type, bool wait = false, bool flock = false, bool reclaim = false, CancellationToken ct = default) =>
        m.SetAsync(1, flock, o, 0, Eof, type, 1, wait, reclaim, ct);

    [Fact]
    public async Task The_same_owner_id_on_two_sessions_is_two_owners()
    {
        var m = Manager();
        Assert.Equal(0, await Take(m, A, RangeLockType.Write));
        Assert.Equal(E.EAGAIN, await Take(m, B, RangeLockType.Read));
        Assert.Equal(0, await Take(m, B, RangeLockType.Write, flock: true));   // flock and record locks never conflict
        Assert.Equal("mount-a", m.Test(1, B, 0, 0, RangeLockType.Read)?.Owner.Session);
    }

    [Fact]
    public async Task A_waiter_gets_the_lock_when_it_is_released_and_a_cancelled_one_takes_nothing()
    {
        var m = Manager();
        await Take(m, A, RangeLockType.Write);
        var waiting = Take(m, B, RangeLockType.Write, wait: true);
        using var cancel = new CancellationTokenSource();
        var cancelled = Take(m, new LockOwner("mount-c", 1), RangeLockType.Write, wait: true, ct: cancel.Token);
        Assert.False(waiting.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);

        Assert.Equal(0, await Take(m, A, null));
        Assert.Equal(0, await waiting.WaitAsync(Patience));
        Assert.Equal(B, m.Test(1, A, 0, 0, RangeLockType.Read)?.Owner);
    }

    private static Task<int> Lock(LockManager m, long ino, LockOwner o, bool wait = false, bool flock = false, CancellationToken ct = default) =>
        m.SetAsync(ino, flock, o, 0, Eof, RangeLockType.Write, 1, wait, reclaim: false, ct);

    private static Task<int> Unlock(LockManager m, long ino, LockOwner o) => m.SetAsync(ino, false, o, 0, Eof, null, 1, false, false, default);

    [Fact]
    public async Task A_wait_that_would_close_a_cycle_across_owners_is_refused_with_EDEADLK()
    {
        var m = Manager();
        foreach (var (ino, owner) in new[] { (1L, A), (2L, B), (3L, C) })
            Assert.Equal(0, await Lock(m, ino, owner));
        var aWaits = Lock(m, 2, A, wait: true);   // A waits for B
        var bWaits = Lock(m, 3, B, wait: true);   // B waits for C
        Assert.Equal(E.EDEADLK, await Lock(m, 1, C, wait: true).WaitAsync(Patience));   // C would wait for A: a cycle
        Assert.False(aWaits.IsCompleted || bWaits.IsCompleted);

        // Without the cycle's last link C waits like anyone else, and the chain unwinds in order.
        Assert.Equal(0, await Unlock(m, 3, C));
        Assert.Equal(0, await bWaits.WaitAsync(Patience));
        Assert.Equal(0, await Unlock(m, 2, B));
        Assert.Equal(0, await aWaits.WaitAsync(Patience));
    }

    [Fact]
    public async Task Waiting_behind_an_owner_that_waits_elsewhere_is_no_deadlock_and_flock_is_never_checked()
    {
        var m = Manager();
        Assert.Equal(0, await Lock(m, 1, A));
        Assert.Equal(0, await Lock(m, 2, C));
        var bWaits = Lock(m, 1, B, wait: true);   // B waits for A
        var aWaits = Lock(m, 2, A, wait: true);   // A waits for C, who waits for nobody
        Assert.False(aWaits.IsCompleted || bWaits.IsCompleted);

        // flock, as on Linux: a cycle of flocks is not detected (both wait until one is interrupted).
        Assert.Equal(0, await Lock(m, 5, A, flock: true));
        Assert.Equal(0, await Lock(m, 6, B, flock: true));
        using var cancel = new CancellationTokenSource();
        var f1 = Lock(m, 6, A, wait: true, flock: true, ct: cancel.Token);
        var f2 = Lock(m, 5, B, wait: true, flock: true, ct: cancel.Token);
        Assert.False(f1.IsCompleted || f2.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => f1);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => f2);
    }

    [Fact]
    public async Task Closing_ends_every_wait_without_granting_it()
    {
        var m = Manager();
        await Take(m, A, RangeLockType.Write);
        var waiting = Take(m, B, RangeLockType.Write, wait: true);
        m.Close();
        await Assert.ThrowsAsync<LockServiceStoppingException>(() => waiting.WaitAsync(Patience));
        Assert.Equal(A, m.Test(1, B, 0, 0, RangeLockType.Read)?.Owner);
    }

    [Fact]
    public async Task A_sessions_end_releases_its_locks_and_wakes_waiters()
    {
        var m = Manager();
        await m.SetAsync(1, false, A, 0, 9, RangeLockType.Write, 1, false, false, default);
        await m.SetAsync(2, true, A, 0, Eof, RangeLockType.Write, 1, false, false, default);
        var waiting = m.SetAsync(1, false, B, 5, 5, RangeLockType.Read, 2, true, false, default);
        m.ReleaseSession("mount-a");
        Assert.Equal(0, await waiting.WaitAsync(Patience));
        Assert.Equal(1, m.Count);
    }

    [Fact]
    public async Task After_a_restart_new_locks_wait_for_the_grace_while_reclaims_go_first()
    {
        // The grace is waited out on a real clock.
        var m = new LockManager(TimeProvider.System, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1000);
        var fresh = Take(m, B, RangeLockType.Write);           // even F_SETLK waits out the grace
        Assert.Equal(0, await Take(m, A, RangeLockType.Write, reclaim: true));
        Assert.Equal(E.EAGAIN, await Take(m, new LockOwner("mount-c", 1), RangeLockType.Read, reclaim: true));   // lost: reclaims never wait
        Assert.False(fresh.IsCompleted);
        Assert.Equal(E.EAGAIN, await fresh.WaitAsync(Patience));
    }
}
