using BigFS.Fuse;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// Drops the kernel's cached pages of inodes, on one thread of its own. The kernel answers such a
/// notice only once it holds the lock of every page, and the pages of a READ in flight stay
/// locked until this daemon replies to it; sent from the thread pool, a burst of notices could
/// hold every worker that such replies wait for. Requests for an inode already queued are merged.
/// </summary>
internal sealed class PageInvalidator : IDisposable
{
    private readonly IFuseNotifier _notifier;
    private readonly ILogger _logger;
    private readonly HashSet<ulong> _queued = [];
    private readonly Queue<ulong> _order = new();
    private readonly SemaphoreSlim _ready = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;

    public PageInvalidator(IFuseNotifier notifier, ILogger logger)
    {
        _notifier = notifier;
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = "page-invalidator" };
        _thread.Start();
    }

    /// <summary>The inode's pages (and attributes) go soon; the call itself never waits for the kernel.</summary>
    public void Invalidate(ulong ino)
    {
        lock (_queued)
        {
            if (!_queued.Add(ino))
                return;
            _order.Enqueue(ino);
        }
        _ready.Release();
    }

    private void Run()
    {
        try
        {
            while (true)
            {
                _ready.Wait(_stop.Token);
                ulong ino;
                lock (_queued)
                {
                    ino = _order.Dequeue();
                    _queued.Remove(ino);
                }
                // Fails harmlessly for an inode the kernel has forgotten.
                if (_notifier.InvalidateInode(ino, offset: 0) is var result and not 0)
                    _logger.LogDebug("Dropping the pages of inode {Ino} answered {Result}", ino, result);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(5));
    }
}
