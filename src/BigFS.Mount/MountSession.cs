using BigFS.Client;
using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// This mount's session with the metadata server. Files unlinked while open here are kept
/// while the session lives, so the lease is renewed well before it runs out.
/// </summary>
internal sealed class MountSession : IAsyncDisposable
{
    private readonly BigFsClient _client;
    private readonly Namespace.NamespaceClient _ns;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Task _renewal = Task.CompletedTask;

    /// <summary>
    /// The inodes open on this mount and their handle counts. A new session (the old one expired,
    /// or the metadata server restarted and forgot it) registers them again, so files open here
    /// keep their unlink-while-open protection and the chunks they are writing are not collected.
    /// </summary>
    public Func<List<(ulong Ino, int Handles)>>? OpenInodes { get; set; }

    /// <summary>The session id; the client sends it with every call.</summary>
    public string Id
    {
        get => _client.SessionId ?? "";
        private set => _client.SessionId = value;
    }

    private MountSession(BigFsClient client, ILogger logger)
    {
        _client = client;
        _ns = client.Namespace;
        _logger = logger;
    }

    public static async Task<MountSession> OpenAsync(BigFsClient client, string mountPoint, ILogger logger, CancellationToken ct)
    {
        var session = new MountSession(client, logger);
        var reply = await client.Namespace.OpenSessionAsync(new OpenSessionRequest { ClientName = Environment.MachineName, MountPoint = mountPoint }, cancellationToken: ct);
        if (reply.Errno != 0)
            throw new InvalidOperationException($"the metadata server refused a session (errno {reply.Errno})");
        session.Id = reply.SessionId;
        var every = TimeSpan.FromMilliseconds(Math.Max(500, reply.LeaseMs / 3));
        session._renewal = session.RenewLoop(mountPoint, every);
        return session;
    }

    /// <summary>
    /// Renews at once instead of at the next tick: the change feed came back, so the server may
    /// have restarted, and whatever this mount held there (opens, locks) is best taken back now.
    /// </summary>
    public void RenewSoon()
    {
        try { _renewNow.Release(); }
        catch (SemaphoreFullException) { }   // already asked
    }

    private readonly SemaphoreSlim _renewNow = new(0, 1);
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);

    private async Task RenewLoop(string mountPoint, TimeSpan every)
    {
        var wait = every;
        try
        {
            while (true)
            {
                await _renewNow.WaitAsync(wait, _stop.Token);
                wait = every;
                try
                {
                    var reply = await _ns.RenewSessionAsync(new SessionRequest { SessionId = Id }, deadline: DateTime.UtcNow + every, cancellationToken: _stop.Token);
                    if (reply.Errno != 0)
                    {
                        // Expired (e.g. the server was unreachable for a whole lease): start a new one.
                        var fresh = await _ns.OpenSessionAsync(new OpenSessionRequest { ClientName = Environment.MachineName, MountPoint = mountPoint }, cancellationToken: _stop.Token);
                        _logger.LogWarning("Session {Old} expired; continuing as {New}", Id, fresh.SessionId);
                        Id = fresh.SessionId;
                        await ReclaimAsync(fresh.SessionId);
                    }
                    else if (reply.SessionRecreated)
                    {
                        _logger.LogInformation("The metadata server restarted and forgot session {Session}; registering this mount's open files and locks again", Id);
                        await ReclaimAsync(Id);
                    }
                }
                catch (RpcException e) when (!_stop.IsCancellationRequested)
                {
                    _logger.LogWarning("Session renewal failed: {Status}", e.StatusCode);
                    wait = RetryAfterFailure;   // a restarting server: be among the first to reclaim
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Registers this mount's open files, then its locks, under <paramref name="sessionId"/>.</summary>
    private async Task ReclaimAsync(string sessionId)
    {
        await ReopenAsync(sessionId);
        if (ReclaimLocks is { } reclaimLocks)
            await reclaimLocks(sessionId, _stop.Token);
    }

    /// <summary>Takes back this mount's advisory locks under a new or re-created session (<see cref="BigFsFileSystem"/> knows them).</summary>
    public Func<string, CancellationToken, Task>? ReclaimLocks { get; set; }

    private async Task ReopenAsync(string sessionId)
    {
        if (OpenInodes?.Invoke() is not { Count: > 0 } open)
            return;
        var failed = 0;
        foreach (var (ino, handles) in open)
        {
            var reply = await _ns.OpenAsync(new OpenRequest { SessionId = sessionId, Ino = ino, Reclaim = true, Handles = (uint)handles }, cancellationToken: _stop.Token);
            if (reply.Errno != 0)
                failed++;
        }
        _logger.LogInformation("Registered {Count} open files under session {Session} ({Failed} no longer exist)", open.Count, sessionId, failed);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _renewal;
        try
        {
            await _ns.CloseSessionAsync(new SessionRequest { SessionId = Id }, deadline: DateTime.UtcNow.AddSeconds(5));
        }
        catch (RpcException e)
        {
            _logger.LogWarning("Closing session {Id} failed ({Status}); it will expire", Id, e.StatusCode);
        }
        _stop.Dispose();
    }
}
