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

    private async Task RenewLoop(string mountPoint, TimeSpan every)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                try
                {
                    var reply = await _ns.RenewSessionAsync(new SessionRequest { SessionId = Id }, deadline: DateTime.UtcNow + every, cancellationToken: _stop.Token);
                    if (reply.Errno != 0)
                    {
                        // Expired (e.g. the server was unreachable for a whole lease): start a new one.
                        var fresh = await _ns.OpenSessionAsync(new OpenSessionRequest { ClientName = Environment.MachineName, MountPoint = mountPoint }, cancellationToken: _stop.Token);
                        _logger.LogWarning("Session {Old} expired; continuing as {New}", Id, fresh.SessionId);
                        Id = fresh.SessionId;
                        await ReopenAsync(fresh.SessionId);
                    }
                    else if (reply.SessionRecreated)
                    {
                        _logger.LogInformation("The metadata server restarted and forgot session {Session}; registering this mount's open files again", Id);
                        await ReopenAsync(Id);
                    }
                }
                catch (RpcException e) when (!_stop.IsCancellationRequested)
                {
                    _logger.LogWarning("Session renewal failed: {Status}", e.StatusCode);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task ReopenAsync(string sessionId)
    {
        if (OpenInodes?.Invoke() is not { Count: > 0 } open)
            return;
        var failed = 0;
        foreach (var (ino, handles) in open)
        {
            for (var i = 0; i < handles; i++)
            {
                var reply = await _ns.OpenAsync(new OpenRequest { SessionId = sessionId, Ino = ino, Reclaim = true }, cancellationToken: _stop.Token);
                if (reply.Errno != 0)
                {
                    failed++;
                    break;
                }
            }
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
