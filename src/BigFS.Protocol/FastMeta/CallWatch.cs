using Grpc.Core;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// Abandons a call in flight at its deadline or when its token is cancelled. It is set up
/// after the request is sent, so the reply may end the call first: <see cref="Start"/> and
/// <see cref="Release"/> may run in either order, on different threads, and whichever comes
/// second undoes the watch.
/// </summary>
public sealed class CallWatch
{
    private readonly Lock _lock = new();
    private bool _released;
    private CancellationTokenRegistration _cancel;
    private CancellationTokenSource? _timer;

    /// <summary>Calls <paramref name="abandon"/> (at most once per cause) at the deadline or on cancellation, unless released first.</summary>
    public void Start(DateTime? deadline, CancellationToken ct, Action<Status> abandon)
    {
        lock (_lock)
        {
            if (_released)
                return;   // the usual case for a quick reply
        }
        CancellationTokenSource? timer = null;
        if (deadline is { } at)
        {
            var left = at.ToUniversalTime() - DateTime.UtcNow;
            timer = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            timer.Token.Register(() => abandon(new Status(StatusCode.DeadlineExceeded, "deadline exceeded")));
        }
        var cancel = ct.CanBeCanceled
            ? ct.Register(() => abandon(new Status(StatusCode.Cancelled, "call cancelled")))
            : default;
        lock (_lock)
        {
            if (!_released)
            {
                (_timer, _cancel) = (timer, cancel);
                return;
            }
        }
        cancel.Dispose();
        timer?.Dispose();
    }

    /// <summary>The call ended: the watch goes (now, or when <see cref="Start"/> comes later).</summary>
    public void Release()
    {
        CancellationTokenRegistration cancel;
        CancellationTokenSource? timer;
        lock (_lock)
        {
            if (_released)
                return;
            _released = true;
            (cancel, timer) = (_cancel, _timer);
        }
        // Outside the lock: disposing a registration waits for a callback in progress, which may release too.
        cancel.Dispose();
        timer?.Dispose();
    }
}
