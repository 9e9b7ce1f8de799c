using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// Background activity bound to the node's lifetime: endless loops (heartbeats, scrub, ...)
/// and finite work (replica copies). A graceful stop ends the loops at once and gives the
/// finite work a grace period; everything is tracked so stopping can wait for it.
/// </summary>
public sealed class BackgroundWork(ILogger logger) : IDisposable
{
    private readonly CancellationTokenSource _loops = new();
    private readonly CancellationTokenSource _work = new();
    private readonly ConcurrentDictionary<Task, bool> _running = new(); // value: is a loop

    /// <summary>Finite work that should complete unless the node stops.</summary>
    public void Run(string what, Func<CancellationToken, Task> work) => Start(what, work, _work.Token, isLoop: false);

    /// <summary>A loop that runs until the node stops.</summary>
    public void RunLoop(string what, Func<CancellationToken, Task> loop) => Start(what, loop, _loops.Token, isLoop: true);

    private void Start(string what, Func<CancellationToken, Task> work, CancellationToken token, bool isLoop)
    {
        var task = Task.Run(async () =>
        {
            try { await work(token); }
            catch (OperationCanceledException) when (token.IsCancellationRequested) { }
            catch (Exception ex) { logger.LogWarning(ex, "Background work failed: {What}", what); }
        });
        _running.TryAdd(task, isLoop);
        task.ContinueWith(t => _running.TryRemove(t, out _), TaskScheduler.Default);
    }

    /// <summary>Ends the loops, waits up to <paramref name="grace"/> for finite work, then cancels it.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        _loops.Cancel();
        var work = Task.WhenAll(_running.Where(r => !r.Value).Select(r => r.Key));
        await Task.WhenAny(work, Task.Delay(grace));
        _work.Cancel();
        await Task.WhenAny(Task.WhenAll(_running.Keys), Task.Delay(TimeSpan.FromSeconds(5)));
    }

    public void Cancel()
    {
        _loops.Cancel();
        _work.Cancel();
    }

    public void Dispose()
    {
        _loops.Dispose();
        _work.Dispose();
    }
}
