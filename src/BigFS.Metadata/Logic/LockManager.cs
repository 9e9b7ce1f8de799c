using BigFS.Core;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Logic;

/// <summary>A lock owner across the cluster: the kernel's lock owner id is only unique within one mount's session.</summary>
public readonly record struct LockOwner(string Session, ulong Owner);

/// <summary>
/// The cluster's advisory locks (fcntl record locks and flock), so processes on different
/// mounts exclude each other as processes on one machine do. Locks live in memory, apart from
/// the metadata lock: taking one changes nothing durable and never waits for the journal.
/// A session's locks go with the session (closed, or expired: its mount is gone). After a
/// restart, mounts take back the locks they held (<c>reclaim</c>); until <see cref="GraceEndsMs"/>
/// a new lock waits, so it cannot take a range whose holder has not reclaimed it yet.
/// <para>
/// A record lock that would wait for an owner that (through a chain of waiting owners) waits
/// for the requester is refused with EDEADLK, as Linux refuses F_SETLKW: here the chain may
/// cross mounts, which no single kernel sees. Like Linux, the check follows one blocker per
/// owner, a bounded number of steps, at the time of the request.
/// </para>
/// </summary>
public sealed class LockManager(TimeProvider time, long graceEndsMs)
{
    private readonly Lock _sync = new();
    private readonly Dictionary<(long Ino, bool Flock), FileLocks> _files = [];
    /// <summary>The record lock each waiting owner asked for (the latest, should one owner wait in several threads).</summary>
    private readonly Dictionary<LockOwner, Wanted> _waiting = [];
    private const int MaxDeadlockSteps = 10;

    private sealed record Wanted(long Ino, long Start, long End, RangeLockType Type);
    private readonly CancellationTokenSource _stopping = new();

    public long GraceEndsMs { get; } = graceEndsMs;

    private sealed class FileLocks
    {
        public readonly RangeLockTable<LockOwner> Table = new();
        /// <summary>Completed (and replaced) whenever a lock here is released or downgraded.</summary>
        public TaskCompletionSource Released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void WakeWaiters()
        {
            var released = Released;
            Released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            released.TrySetResult();
        }
    }

    private long NowMs => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Takes or releases a lock (flock locks cover the whole file). With <paramref name="wait"/>,
    /// waits for conflicting locks to go; otherwise a conflict is EAGAIN. A cancelled wait takes
    /// nothing and throws. A reclaim is never made to wait: its conflict means the lock was lost.
    /// </summary>
    public async Task<int> SetAsync(long ino, bool flock, LockOwner owner, long start, long end, RangeLockType? type, uint pid,
        bool wait, bool reclaim, CancellationToken ct)
    {
        if (start < 0 || end < start) return E.EINVAL;
        if (flock) (start, end) = (0, long.MaxValue);
        using var waitEnds = CancellationTokenSource.CreateLinkedTokenSource(ct, _stopping.Token);
        Wanted? wanted = null;   // set while this request waits for a record lock (deadlock detection)
        try
        {
            while (true)
            {
                Task released;
                lock (_sync)
                {
                    var key = (ino, flock);
                    if (type is null)
                    {
                        if (_files.TryGetValue(key, out var held) && held.Table.Set(owner, start, end, null, pid))
                        {
                            held.WakeWaiters();
                            Forget(key, held);
                        }
                        return 0;
                    }
                    var graceLeft = reclaim ? 0 : GraceEndsMs - NowMs;
                    if (graceLeft <= 0)
                    {
                        if (!_files.TryGetValue(key, out var file))
                            _files[key] = file = new FileLocks();
                        if (file.Table.FindConflict(owner, start, end, type.Value) is null)
                        {
                            if (file.Table.Set(owner, start, end, type, pid))
                                file.WakeWaiters();
                            return 0;
                        }
                        if (!wait || reclaim) return E.EAGAIN;
                        if (!flock && wanted is null)
                        {
                            if (WouldDeadlock(owner, ino, start, end, type.Value)) return E.EDEADLK;
                            _waiting[owner] = wanted = new Wanted(ino, start, end, type.Value);
                        }
                        released = file.Released.Task;
                    }
                    else
                    {
                        // After a restart: until the holders have had time to reclaim, nothing new is granted.
                        released = Task.Delay(TimeSpan.FromMilliseconds(graceLeft), time, waitEnds.Token);
                    }
                }
                try
                {
                    await released.WaitAsync(waitEnds.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new LockServiceStoppingException();
                }
            }
        }
        finally
        {
            if (wanted is not null)
                lock (_sync)
                    if (_waiting.TryGetValue(owner, out var current) && ReferenceEquals(current, wanted))
                        _waiting.Remove(owner);
        }
    }

    /// <summary>
    /// Whether <paramref name="owner"/> waiting for this lock would close a cycle: its blocker
    /// waits for a lock whose blocker waits ... for <paramref name="owner"/>. Under <see cref="_sync"/>.
    /// </summary>
    private bool WouldDeadlock(LockOwner owner, long ino, long start, long end, RangeLockType type)
    {
        var want = new Wanted(ino, start, end, type);
        var waiter = owner;
        for (var step = 0; step < MaxDeadlockSteps; step++)
        {
            if (!_files.TryGetValue((want.Ino, false), out var file)
                || file.Table.FindConflict(waiter, want.Start, want.End, want.Type) is not { } blocker)
                return false;
            if (blocker.Owner == owner)
                return true;
            if (!_waiting.TryGetValue(blocker.Owner, out var next))
                return false;
            (waiter, want) = (blocker.Owner, next);
        }
        return false;
    }

    /// <summary>
    /// The server is stopping: every waiting request ends (with <see cref="LockServiceStoppingException"/>,
    /// which clients see as Unavailable and repeat after the restart), so shutdown never waits for them.
    /// </summary>
    public void Close() => _stopping.Cancel();

    /// <summary>F_GETLK: the first lock of another owner conflicting with the one described, or null.</summary>
    public HeldRangeLock<LockOwner>? Test(long ino, LockOwner owner, long start, long end, RangeLockType type)
    {
        lock (_sync)
            return _files.TryGetValue((ino, false), out var file) ? file.Table.FindConflict(owner, start, end, type) : null;
    }

    /// <summary>Drops every lock of a session that ended (closed, expired, or its mount gone).</summary>
    public void ReleaseSession(string session) => ReleaseWhere(o => o.Session == session);

    /// <summary>Drops the locks of a file that is gone.</summary>
    public void ReleaseFile(long ino)
    {
        lock (_sync)
            foreach (var flock in (ReadOnlySpan<bool>)[false, true])
                if (_files.Remove((ino, flock), out var file))
                    file.WakeWaiters();
    }

    private void ReleaseWhere(Func<LockOwner, bool> predicate)
    {
        lock (_sync)
        {
            foreach (var (key, file) in _files.ToList())
            {
                if (!file.Table.ReleaseAll(predicate)) continue;
                file.WakeWaiters();
                Forget(key, file);
            }
        }
    }

    /// <summary>Locks held, for status and tests.</summary>
    public int Count
    {
        get { lock (_sync) return _files.Values.Sum(f => f.Table.Held.Count); }
    }

    /// <summary>An empty table goes (whoever waited on it was woken by the release that emptied it).</summary>
    private void Forget((long, bool) key, FileLocks file)
    {
        if (file.Table.IsEmpty)
            _files.Remove(key);
    }
}

/// <summary>A lock request was waiting when the server began to stop; it took nothing.</summary>
public sealed class LockServiceStoppingException() : Exception("the metadata server is stopping");
