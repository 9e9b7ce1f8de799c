using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// Keeps the metadata server's change feed connected for this mount's session and applies its
/// notices to the <see cref="LookupCache"/>. While the feed is down the cache is off, so a lost
/// notice can never leave a stale name behind.
/// </summary>
internal sealed class ChangeWatch : IAsyncDisposable
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly Namespace.NamespaceClient _ns;
    private readonly MountSession _session;
    private readonly LookupCache _cache;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private readonly Action<ChangeNotice>? _alsoTell;

    /// <param name="alsoTell">Called with each notice after the cache applied it (the kernel's caches).</param>
    public ChangeWatch(Namespace.NamespaceClient ns, MountSession session, LookupCache cache, ILogger logger, Action<ChangeNotice>? alsoTell = null)
    {
        _ns = ns;
        _session = session;
        _cache = cache;
        _logger = logger;
        _alsoTell = alsoTell;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var lost = false;   // said once per outage, not at every retry
        while (!ct.IsCancellationRequested)
        {
            var sessionId = _session.Id;
            var first = true;
            try
            {
                using var call = _ns.WatchChanges(new SessionRequest { SessionId = sessionId }, cancellationToken: ct);
                await foreach (var notice in call.ResponseStream.ReadAllAsync(ct))
                {
                    if (first)
                    {
                        _cache.Enable();   // the watch is in place: changes from now on will be told
                        first = false;
                        if (lost)
                        {
                            _logger.LogInformation("Change feed back; lookups are cached again");
                            _session.RenewSoon();   // the server may have restarted: take back opens and locks now
                        }
                        lost = false;
                        continue;
                    }
                    _cache.Apply(notice);
                    _alsoTell?.Invoke(notice);
                    if (_session.Id != sessionId)
                        break;   // a new session: watch under its id, or our own changes come back to us
                }
            }
            catch (Exception e) when (ct.IsCancellationRequested && e is RpcException or OperationCanceledException)
            {
                break;   // stopping
            }
            catch (Exception e)
            {
                var reason = e is RpcException rpc ? rpc.StatusCode.ToString() : e.Message;
                if (!lost)
                    _logger.LogWarning("Change feed lost ({Reason}); lookups go to the metadata server until it is back", reason);
                else
                    _logger.LogDebug("Change feed still down ({Reason})", reason);
                lost = true;
            }
            if (!first && !lost && !ct.IsCancellationRequested && _session.Id == sessionId)
            {
                _logger.LogWarning("Change feed ended by the metadata server; lookups go to it until the feed is back");
                lost = true;
            }
            _cache.Disable();
            try
            {
                await Task.Delay(RetryDelay, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        _cache.Disable();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        _stop.Dispose();
    }
}
