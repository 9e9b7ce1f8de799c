namespace BigFS.Fuse.Session;

/// <summary>
/// Leader/follower hand-off between the reader threads of one session. The kernel wakes one thread
/// sleeping in read(/dev/fuse) per request it queues, so with every idle reader in read() a burst
/// such as RELEASE-then-OPEN woke two threads, one of which found nothing to do. Here idle readers
/// wait in user space (followers, invisible to the kernel) and normally one leader reads: it answers
/// a request that completes synchronously and reads the next one itself.
/// </summary>
/// <remarks>
/// <para>A reader is released from the followers only when the readers in read() will not be back
/// promptly: a leader about to run a handler expected to be slow (<see cref="Reader.BeginDispatch"/>
/// with <c>expectSlow</c>) stops counting as a leader; so does one the watchdog finds in the same
/// synchronous dispatch for over a tick; if it was the last leader, a follower is woken. A reader
/// finishing a slow handler goes straight back to read() (like a plain thread pool), so parallel
/// READs still find readers waiting; once requests are fast again, extra leaders drop back to
/// followers after one request each. With no follower idle, a reader is started, up to the
/// maximum; at the maximum the next reader to finish a slow handler leads.</para>
/// <para>Counts (<c>leaders</c>: readers in or heading to read(), or in a synchronous dispatch they
/// will return from; <c>slow</c>: readers in a slow handler) are kept with interlocked operations;
/// only the follower stack takes a lock. No I/O: the session supplies the thread start, so this is
/// testable without a kernel.</para>
/// </remarks>
internal sealed class ReaderHandoff
{
    private const long Idle = 0, Dispatching = 1, TakenOver = 2, PhaseMask = 3;

    private readonly int _maxReaders;
    private readonly Action _startReader;
    private readonly Reader?[] _readers;
    private readonly Stack<Reader> _followers = new();
    private readonly object _watchdogGate = new();
    private int _registered;
    private int _running;
    private int _leaders;
    private int _slow;
    private long _dispatches;
    private int _watchdogParked;
    private long _lastDispatches = -1; // watchdog thread only
    private long _takeovers, _started;
    private volatile bool _stopping;

    /// <param name="maxReaders">Most reader threads (the configured ReaderThreads).</param>
    /// <param name="startReader">Starts one more reader thread, which calls <see cref="Register"/> and <see cref="Reader.AwaitLeadership"/>.</param>
    /// <param name="watchdogTick">How often a busy session's dispatches are checked; one running for 1–2 ticks is treated as slow.</param>
    public ReaderHandoff(int maxReaders, Action startReader, TimeSpan watchdogTick)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxReaders, 1);
        _maxReaders = maxReaders;
        _startReader = startReader;
        _readers = new Reader?[maxReaders];
        WatchdogTick = watchdogTick;
    }

    public TimeSpan WatchdogTick { get; }
    public bool IsStopping => _stopping;
    /// <summary>Reader threads started and not yet ended (the first one included).</summary>
    public int Running => Volatile.Read(ref _running);
    public int Leaders => Volatile.Read(ref _leaders);
    public int SlowHandlers => Volatile.Read(ref _slow);
    public int IdleFollowers { get { lock (_followers) return _followers.Count; } }
    /// <summary>Dispatches the watchdog found stuck and released another reader for.</summary>
    public long Takeovers => Interlocked.Read(ref _takeovers);
    /// <summary>Readers started by hand-offs (the first reader not counted).</summary>
    public long ReadersStarted => Interlocked.Read(ref _started);
    /// <summary>The watchdog sleeps until the next synchronous dispatch.</summary>
    public bool WatchdogParked => Volatile.Read(ref _watchdogParked) != 0;
    /// <summary>A watchdog is only useful when another reader may take over.</summary>
    public bool NeedsWatchdog => _maxReaders > 1;

    /// <summary>Counts the first reader (the one that answers INIT) before its thread starts.</summary>
    public void AddFirstReader() => Interlocked.Increment(ref _running);

    /// <summary>Counts a reader's end; true when it was the last one.</summary>
    public bool ReaderEnded() => Interlocked.Decrement(ref _running) == 0;

    /// <summary>The calling thread's handle; each reader thread registers once.</summary>
    public Reader Register()
    {
        var reader = new Reader(this);
        int i = Interlocked.Increment(ref _registered) - 1;
        if (i < _readers.Length) Volatile.Write(ref _readers[i], reader); // beyond: only if misused; the watchdog then does not see it
        return reader;
    }

    /// <summary>Joins the leaders if fewer than one per slow handler plus one lead.</summary>
    private bool TryJoinLeaders()
    {
        int l = Volatile.Read(ref _leaders);
        while (l < 1 + Volatile.Read(ref _slow))
        {
            int seen = Interlocked.CompareExchange(ref _leaders, l + 1, l);
            if (seen == l) return true;
            l = seen;
        }
        return false;
    }

    /// <summary>Leaves the leaders if more than one per slow handler plus one lead (never the last).</summary>
    private bool TryLeaveLeaders()
    {
        int l = Volatile.Read(ref _leaders);
        while (l > 1 && l > 1 + Volatile.Read(ref _slow))
        {
            int seen = Interlocked.CompareExchange(ref _leaders, l - 1, l);
            if (seen == l) return true;
            l = seen;
        }
        return false;
    }

    /// <summary>A leader becomes a slow handler; if it was the last leader, another reader must read.</summary>
    private void LeaderTurnsSlow()
    {
        Interlocked.Increment(ref _slow); // first: a reader finishing meanwhile sees the room to lead
        if (Interlocked.Decrement(ref _leaders) == 0) WakeSuccessor();
    }

    /// <summary>No leader left: wakes the most recently idle follower (its cache is the warmest), or
    /// starts a reader if none is idle and the maximum allows; otherwise the next reader to finish a
    /// slow handler leads.</summary>
    private void WakeSuccessor()
    {
        Reader? follower = null;
        lock (_followers)
        {
            if (_followers.Count > 0) follower = _followers.Pop();
            else if (_stopping || Volatile.Read(ref _running) >= _maxReaders) return;
            else Interlocked.Increment(ref _running); // ends are counted without the lock
        }
        if (follower is not null)
        {
            follower.Wake();
            return;
        }
        Interlocked.Increment(ref _started);
        _startReader();
    }

    /// <summary>What one watchdog check found.</summary>
    public enum WatchdogVerdict { Busy, Idle, TookOver }

    /// <summary>
    /// One watchdog check (every <see cref="WatchdogTick"/>): a synchronous dispatch found running at
    /// the previous check too counts as slow from now on (its reader stops leading; if it was the last
    /// leader, another reader is released). Idle: nothing dispatched since the previous check, so the
    /// watchdog may park until the next dispatch.
    /// </summary>
    public WatchdogVerdict CheckDispatches()
    {
        long dispatches = Interlocked.Read(ref _dispatches);
        bool busy = false, tookOver = false;
        int count = Math.Min(Volatile.Read(ref _registered), _readers.Length);
        for (int i = 0; i < count; i++)
        {
            var reader = Volatile.Read(ref _readers[i]);
            if (reader is null) continue;
            long state = Volatile.Read(ref reader.State);
            if ((state & PhaseMask) != Dispatching) continue;
            if (state != reader.LastSeen)
            {
                reader.LastSeen = state;
                busy = true;
            }
            else
            {
                // Counted slow before the reader can see TakenOver: its later decrement never goes below zero.
                Interlocked.Increment(ref _slow);
                if (Interlocked.CompareExchange(ref reader.State, state - Dispatching + TakenOver, state) == state)
                {
                    Interlocked.Increment(ref _takeovers);
                    if (Interlocked.Decrement(ref _leaders) == 0) WakeSuccessor();
                    tookOver = true;
                }
                else Interlocked.Decrement(ref _slow); // it finished just now
            }
        }
        bool idle = !busy && !tookOver && dispatches == _lastDispatches;
        _lastDispatches = dispatches;
        return tookOver ? WatchdogVerdict.TookOver : idle ? WatchdogVerdict.Idle : WatchdogVerdict.Busy;
    }

    /// <summary>The watchdog thread's body: checks every tick while requests flow, sleeps while idle
    /// (the next synchronous dispatch wakes it). Ends on <see cref="Stop"/>.</summary>
    public void RunWatchdog()
    {
        var verdict = WatchdogVerdict.Busy;
        while (!_stopping)
        {
            lock (_watchdogGate)
            {
                if (_stopping) return;
                if (verdict == WatchdogVerdict.Idle) ParkWatchdog();
                else Monitor.Wait(_watchdogGate, WatchdogTick);
            }
            verdict = CheckDispatches();
        }
    }

    /// <summary>Sleeps until a dispatch begins (called holding the watchdog gate).</summary>
    private void ParkWatchdog()
    {
        Interlocked.Exchange(ref _watchdogParked, 1); // a full fence before re-reading the count (pairs with BeginDispatch)
        if (Interlocked.Read(ref _dispatches) == _lastDispatches && !_stopping) Monitor.Wait(_watchdogGate);
        Interlocked.Exchange(ref _watchdogParked, 0);
    }

    private void UnparkWatchdog()
    {
        if (Interlocked.Exchange(ref _watchdogParked, 0) == 0) return;
        lock (_watchdogGate) Monitor.Pulse(_watchdogGate);
    }

    /// <summary>The session ends (unmounted or failed): every follower and the watchdog return.</summary>
    public void Stop()
    {
        _stopping = true;
        Reader[] idle;
        lock (_followers)
        {
            idle = _followers.ToArray();
            _followers.Clear();
        }
        foreach (var reader in idle) reader.Wake();
        lock (_watchdogGate) Monitor.PulseAll(_watchdogGate);
    }

    /// <summary>One reader thread's side of the hand-off (used by that thread only, and the watchdog).</summary>
    internal sealed class Reader(ReaderHandoff handoff)
    {
        private readonly ManualResetEventSlim _wake = new(false, spinCount: 1);
        internal long State = Idle;       // dispatch number × 4 + phase; the watchdog may CAS it to TakenOver
        internal long LastSeen = -1;      // watchdog thread only
        private bool _slow;

        /// <summary>Waits as a follower until this reader may lead (read the next request); after a
        /// slow handler it leads at once. False when the session is stopping: end the thread.</summary>
        public bool AwaitLeadership()
        {
            if (_slow)
            {
                _slow = false;
                Interlocked.Decrement(ref handoff._slow);
                if (handoff._stopping) return false;
                // Back from a slow handler: straight back to read(), like a plain thread pool, so
                // parallel slow requests (READs of several readers) find readers already waiting.
                Interlocked.Increment(ref handoff._leaders);
                return true;
            }
            while (true)
            {
                if (handoff._stopping) return false;
                if (handoff.TryJoinLeaders()) return true;
                lock (handoff._followers)
                {
                    if (handoff._stopping) return false;
                    _wake.Reset();
                    handoff._followers.Push(this);
                }
                // Re-check after becoming visible: a leader that left just before found no one to wake.
                Interlocked.MemoryBarrier();
                if (handoff.TryJoinLeaders())
                {
                    bool removed;
                    lock (handoff._followers) removed = RemoveFromFollowers();
                    if (!removed) _wake.Wait(); // popped meanwhile: its wake is on the way
                    return true;
                }
                _wake.Wait();
            }
        }

        private bool RemoveFromFollowers()
        {
            var stack = handoff._followers;
            if (!stack.Contains(this)) return false;
            var others = stack.Where(r => r != this).Reverse().ToArray();
            stack.Clear();
            foreach (var r in others) stack.Push(r);
            return true;
        }

        internal void Wake() => _wake.Set();

        /// <summary>The leader has read a request. Expected slow: it stops leading (another reader is
        /// released if it was the last leader) and returns false. Otherwise the dispatch is watched and
        /// it returns true: call <see cref="EndDispatch"/> when the handler returns.</summary>
        public bool BeginDispatch(bool expectSlow)
        {
            if (expectSlow)
            {
                _slow = true;
                handoff.LeaderTurnsSlow();
                return false;
            }
            long number = Interlocked.Increment(ref handoff._dispatches); // a full fence before reading the parked flag (pairs with ParkWatchdog)
            Volatile.Write(ref State, number * 4 + Dispatching);
            if (Volatile.Read(ref handoff._watchdogParked) != 0) handoff.UnparkWatchdog();
            return true;
        }

        /// <summary>After a watched dispatch: true when this reader still leads (read the next request);
        /// false when it should call <see cref="AwaitLeadership"/> (the watchdog found the dispatch slow,
        /// or enough other readers lead).</summary>
        public bool EndDispatch()
        {
            long state = Volatile.Read(ref State);
            if ((state & PhaseMask) == Dispatching &&
                Interlocked.CompareExchange(ref State, state - Dispatching + Idle, state) == state)
                return !handoff.TryLeaveLeaders();
            _slow = true; // taken over: the watchdog counted it as a slow handler
            Volatile.Write(ref State, Idle);
            return false;
        }
    }
}
