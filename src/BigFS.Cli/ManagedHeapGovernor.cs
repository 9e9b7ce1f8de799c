namespace BigFS.Cli;

/// <summary>
/// Keeps a daemon's managed heap near a soft size. The mount's data is bounded by its write
/// buffer and chunk cache, but between full collections the GC let garbage (released pages,
/// fetched blocks) pile up to 650–840 MiB of RSS under fio. A hard heap limit throws
/// OutOfMemoryException at the first burst of legitimately live buffers, so instead, twice a
/// second, a heap past the soft size gets a full compacting collection that also returns the
/// freed memory to the system. It never fails an allocation.
/// </summary>
internal sealed class ManagedHeapGovernor : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    private readonly long _softBytes;
    private readonly Timer _timer;
    private int _running;

    public ManagedHeapGovernor(long softBytes)
    {
        _softBytes = softBytes;
        _timer = new Timer(_ => Check(), null, Interval, Interval);
    }

    /// <summary>Full collections this governor asked for.</summary>
    public int Collections { get; private set; }

    private void Check()
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
            return;
        try
        {
            if (GC.GetGCMemoryInfo().HeapSizeBytes <= _softBytes)
                return;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            Collections++;
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    public void Dispose() => _timer.Dispose();
}
