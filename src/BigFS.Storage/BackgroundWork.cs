using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// Work bound to the node's lifetime. Finite jobs (a replica copy) are tracked so a graceful
/// stop can let them finish; service loops (heartbeats, scrub) simply end when stopping.
/// </summary>
public sealed class BackgroundWork(ILogger logger) : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _running = new();
    private readonly ConcurrentDictionary<Task, byte> _loops = new();

    public CancellationToken Stopping => _stopping.Token;

    /// <summary>A service loop: runs until the node stops; a graceful stop does not wait for it.</summary>
    public void RunLoop(string what, Func<CancellationToken, Task> loop) => Track(_loops, what, loop);

    /// <summary>A finite job a graceful stop waits for (up to its grace period).</summary>
    public void Run(string what, Func<CancellationToken, Task> work) => Track(_running, what, work);

    private void Track(ConcurrentDictionary<Task, byte> set, string what, Func<CancellationToken, Task> work)
    {
        var task = Task.Run(async () =>
        {
            try { await work(_stopping.Token); }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { }
            catch (Exception ex) { logger.LogWarning(ex, "Background work failed: {What}", what); }
        });
        set.TryAdd(task, 0);
        task.ContinueWith(t => set.TryRemove(t, out _), TaskScheduler.Default);
    }

    /// <summary>Waits up to <paramref name="grace"/> for finite jobs, then cancels everything and waits for it to end.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        var jobs = Task.WhenAll(_running.Keys);
        await Task.WhenAny(jobs, Task.Delay(grace));
        _stopping.Cancel();
        await Task.WhenAny(Task.WhenAll(_running.Keys.Concat(_loops.Keys)), Task.Delay(TimeSpan.FromSeconds(5)));
    }

    public void Cancel() => _stopping.Cancel();

    public void Dispose() => _stopping.Dispose();
}
