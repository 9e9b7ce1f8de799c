using System.Net.Sockets;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Protocol;

/// <summary>
/// Rides out a metadata server that is briefly unreachable (a restart, an upgrade): a unary
/// call that failed with Unavailable is tried again, with back-off, until
/// <paramref name="window"/> after the outage began (and never past the call's own deadline or
/// cancellation) — like an NFS hard mount, a restart shows as a pause, not as EIO in every
/// program using the mount. Once an outage has lasted the whole window, calls fail at their
/// first attempt until one gets through: a longer one is an error at once, not a wait of a
/// window per system call.
/// <para>
/// Only calls that are safe to repeat are repeated: any call the server cannot have received
/// (<see cref="NeverSent"/>: the connection was refused or already gone before sending, or a
/// stopping server said it would not run it), calls whose repetition ends in the same state
/// (<see cref="IsRepeatable"/>) whatever happened to them, and changes that carry a
/// <see cref="ReplaySlot"/> (<see cref="ReplaySlotInterceptor"/>), which the server answers from
/// its reply cache if it ran them already. Any other change that was in flight when the
/// connection broke may have been applied (a repeated unlink would answer ENOENT), so it fails:
/// a server that crashes, unlike one that stops, can leave such calls.
/// </para>
/// </summary>
/// <remarks>A client interceptor (<c>invoker.Intercept(...)</c>): only unary calls are touched, the rest pass through.</remarks>
public sealed class OutageRetryInterceptor(TimeSpan window, ILogger? logger = null) : Interceptor
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(2);
    private static readonly Task<Metadata> NoHeaders = Task.FromResult(Metadata.Empty);

    /// <summary>
    /// Methods that read, or set state to given values (SetAttr: a mode, an owner, a size, times;
    /// ConfirmReplica: a copy AVAILABLE; AbandonChunks: chunks garbage; CloseSession: no session;
    /// RegisterChunk: a node registering a chunk it registered already gets its pending replicas
    /// back; Lock: an owner's lock or unlock of a range), so repeating one after an unknown
    /// outcome ends the same way.
    /// </summary>
    private static readonly HashSet<string> RepeatableMethods = new(StringComparer.Ordinal)
    {
        "Lookup", "GetAttr", "ReadLink", "ReadDirectory", "StatFs", "GetXattr", "ListXattr", "GetLayout",
        "ListWritableNodes", "Sync", "RenewSession", "Heartbeat", "GetClusterStatus", "SetAttr", "ConfirmReplica",
        "AbandonChunks", "CloseSession", "RegisterChunk", "Lock", "TryLock", "TestLock",
    };

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private int _waiting;
    private readonly OutageClock _outage = new();

    /// <summary>True when running <paramref name="method"/> twice leaves the server as running it once.</summary>
    public static bool IsRepeatable(string method) => RepeatableMethods.Contains(method);

    /// <summary>True when a repeat of <paramref name="request"/> is answered from the server's reply cache if the first one ran.</summary>
    public static bool CarriesReplaySlot(object request) => request is IReplayableRequest { Replay: not null };

    /// <summary>
    /// True when the failure proves the request never reached the server: the connection was
    /// refused, or the call was turned away before being sent (<see cref="RequestNotSentException"/>).
    /// </summary>
    public static bool NeverSent(RpcException error)
    {
        for (Exception? e = error.Status.DebugException; e is not null; e = e.InnerException)
        {
            if (e is RequestNotSentException)
                return true;
            if (e is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.AddressNotAvailable })
                return true;
        }
        return false;
    }

    /// <summary>
    /// True when the call failed for want of a working connection to the server: Unavailable, or
    /// a connection that broke under it in a way grpc-dotnet reports as Internal with the HTTP
    /// failure attached — a keepalive ping the server never answered (a network cut) is one; the
    /// gRPC spec calls that Unavailable. An Internal status from the server itself carries no
    /// local exception.
    /// </summary>
    public static bool IsTransportFailure(RpcException error)
    {
        if (error.StatusCode == StatusCode.Unavailable)
            return true;
        if (error.StatusCode != StatusCode.Internal)
            return false;
        for (Exception? e = error.Status.DebugException; e is not null; e = e.InnerException)
            if (e is HttpRequestException)
                return true;
        return false;
    }

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        var call = continuation(request, context);
        if (window <= TimeSpan.Zero)
            return call;
        if (call.ResponseAsync.IsCompletedSuccessfully)
        {
            _outage.End();
            return call;
        }
        var reply = RetryThroughOutageAsync(call.ResponseAsync, request, context, continuation);
        return new AsyncUnaryCall<TResponse>(reply, NoHeaders, () => StatusOf(reply), () => Metadata.Empty, static () => { });
    }

    private async Task<TResponse> RetryThroughOutageAsync<TRequest, TResponse>(Task<TResponse> first, TRequest request,
        ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        where TRequest : class where TResponse : class
    {
        var options = context.Options;
        var attempt = first;
        DateTime? giveUpAt = null;
        var delay = FirstDelay;
        var waited = false;
        var lastAttempt = false;
        try
        {
            while (true)
            {
                try
                {
                    var reply = await attempt.ConfigureAwait(false);
                    _outage.End();
                    return reply;
                }
                catch (RpcException e) when (IsTransportFailure(e) && (NeverSent(e) || IsRepeatable(context.Method.Name) || CarriesReplaySlot(request)))
                {
                    var now = DateTime.UtcNow;
                    giveUpAt ??= _outage.Start(now) + window;
                    // The last attempt is made at the window's end (once), none past the call's deadline.
                    if (lastAttempt || now >= giveUpAt || options.Deadline is { } deadline && now + delay >= deadline.ToUniversalTime()
                        || options.CancellationToken.IsCancellationRequested)
                        throw;
                    var wait = delay;
                    if (giveUpAt.Value - now <= delay)
                    {
                        wait = giveUpAt.Value - now;
                        lastAttempt = true;
                    }
                    if (!waited)
                    {
                        waited = true;
                        if (Interlocked.Increment(ref _waiting) == 1)
                            _logger.LogWarning("Metadata server unreachable ({Detail}); calls wait for it for up to {Window}s", e.Status.Detail, window.TotalSeconds);
                    }
                    await Task.Delay(wait, options.CancellationToken).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
                    attempt = continuation(request, context).ResponseAsync;
                }
            }
        }
        catch (OperationCanceledException) when (options.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "call cancelled while the metadata server was unreachable"));
        }
        finally
        {
            if (waited && Interlocked.Decrement(ref _waiting) == 0)
                _logger.LogInformation("Metadata server calls are going through again");
        }
    }

    private static Status StatusOf(Task task) => task.Exception?.InnerException is RpcException rpc ? rpc.Status
        : task.IsCompletedSuccessfully ? Status.DefaultSuccess : new Status(StatusCode.Unknown, "call not complete");
}

/// <summary>A call turned away before anything was sent (its connection was already closed): safe to repeat.</summary>
public sealed class RequestNotSentException(string message) : Exception(message);
