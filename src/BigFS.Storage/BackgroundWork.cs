using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>Fire-and-forget work bound to the node's lifetime: tracked so a graceful stop can wait for it.</summary>
public sealed class BackgroundWork(ILogger logger) : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, byte> _running = new();

    public CancellationToken Stopping => _stopping.Token;

    public void Run(string what, Func<CancellationToken, Task> work)
    {
        var task = Task.Run(async () =>
        {
            try { await work(_stopping.Token); }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { }
            catch (Exception ex) { logger.LogWarning(ex, "Background work failed: {What}", what); }
        });
        _running.TryAdd(task, 0);
        task.ContinueWith(t => _running.TryRemove(t, out _), TaskScheduler.Default);
    }

    /// <summary>Waits up to <paramref name="grace"/> for running work, then cancels what is left.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        var all = Task.WhenAll(_running.Keys);
        await Task.WhenAny(all, Task.Delay(grace));
        _stopping.Cancel();
        await Task.WhenAny(Task.WhenAll(_running.Keys), Task.Delay(TimeSpan.FromSeconds(5)));
    }

    public void Cancel() => _stopping.Cancel();

    public void Dispose() => _stopping.Dispose();
}
