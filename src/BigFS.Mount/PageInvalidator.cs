using BigFS.Fuse;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// Drops the kernel's cached pages of inodes, on one thread of its own. The kernel answers such a
/// notice only once it holds the lock of every page, and the pages of a READ in flight stay
/// locked until this daemon replies to it; sent from the thread pool, a burst of notices could
/// hold every worker that such replies wait for. Requests for an inode already queued (not yet
/// sent) are merged: that notice goes after all of them.
/// </summary>
internal sealed class PageInvalidator : IDisposable
{
    private readonly IFuseNotifier _notifier;
    private readonly ILogger _logger;
    private readonly Dictionary<ulong, TaskCompletionSource> _queued = [];
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

    /// <summary>The inode's pages (and attributes) go soon; completes once the kernel has dropped them.</summary>
    public Task InvalidateAsync(ulong ino)
    {
        lock (_queued)
        {
            if (_queued.TryGetValue(ino, out var pending))
                return pending.Task;
            pending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _queued.Add(ino, pending);
            _order.Enqueue(ino);
            _ready.Release();
            return pending.Task;
        }
    }

    private void Run()
    {
        try
        {
            while (true)
            {
                _ready.Wait(_stop.Token);
                ulong ino;
                TaskCompletionSource done;
                lock (_queued)
                {
                    ino = _order.Dequeue();
                    _queued.Remove(ino, out done!);
                }
                try
                {
                    // Fails harmlessly for an inode the kernel has forgotten, or once unmounted.
                    if (_notifier.InvalidateInode(ino, offset: 0) is var result and not 0)
                        _logger.LogDebug("Dropping the pages of inode {Ino} answered {Result}", ino, result);
                }
                catch (Exception e)
                {
                    _logger.LogWarning(e, "Dropping the pages of inode {Ino} failed", ino);
                }
                done.SetResult();
            }
        }
        catch (OperationCanceledException)
        {
            lock (_queued)
                foreach (var pending in _queued.Values)
                    pending.TrySetCanceled();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join(TimeSpan.FromSeconds(5));
    }
}
