using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// A gRPC <see cref="CallInvoker"/> that sends the unary Namespace calls over the metadata
/// server's fast listener (one persistent connection, many calls in flight) and everything else
/// — streaming calls, or every call while the fast listener is unknown or unreachable — through
/// the gRPC invoker it wraps. Callers keep using the generated <c>Namespace.NamespaceClient</c>
/// and see the same replies and the same <see cref="RpcException"/> status codes either way.
/// <para>
/// The fast address comes from <paramref name="discover"/> (asked again after a failed
/// connect, so a restarted server on a new port is found); after a failed connect the calls of
/// the next second go through gRPC, then the fast path is tried again. Not after a go-away,
/// though: a server that said it is stopping is restarting, and its gRPC endpoint is stopping
/// too (a call there could fail after it ran). Until a fast connection is made again, calls
/// fail as never sent, and the caller's outage retry waits for the server.
/// </para>
/// </summary>
public sealed class FastMetaCallInvoker(
    CallInvoker fallback,
    Func<CancellationToken, Task<string?>> discover,
    Func<string?> session,
    ILogger? logger = null,
    bool inlineCompletions = false) : CallInvoker, IDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(1);
    private static readonly Task<Metadata> NoHeaders = Task.FromResult(Metadata.Empty);

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private volatile MetaConnection? _connection;
    private string? _address;
    private bool _addressKnown;
    private long _retryAtTicks;
    private bool _disposed;
    private volatile bool _serverRestarting;

    /// <summary>Calls that went over the fast transport, and over gRPC (for tests and diagnostics).</summary>
    public long FastCalls => Interlocked.Read(ref _fastCalls);
    public long FallbackCalls => Interlocked.Read(ref _fallbackCalls);
    private long _fastCalls, _fallbackCalls;

    /// <summary>The server's fast listener as this host dials it (from a ListWritableNodes reply): its Unix socket when this is its host, else TCP.</summary>
    public static string? AddressFrom(ListWritableNodesReply reply) =>
        MetaConnection.ChooseAddress(reply.MetadataFastAddress, reply.MetadataFastUnix);

    /// <summary>A discover function for the constructor: asks the server where its fast listener is, over <paramref name="grpc"/>.</summary>
    public static Func<CancellationToken, Task<string?>> DiscoverThrough(Namespace.NamespaceClient grpc) => async token =>
        AddressFrom(await grpc.ListWritableNodesAsync(new ListWritableNodesRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: token));

    /// <summary>The address of the live fast connection (host:port or unix:/path), or null when there is none.</summary>
    public string? ConnectedAddress => _connection is { IsAlive: true } live ? live.Address : null;

    /// <summary>Sets the fast address up front (e.g. from the reply that also told the chunk size); null or empty = none.</summary>
    public void UseAddress(string? address)
    {
        _address = string.IsNullOrEmpty(address) ? null : address;
        _addressKnown = true;
    }

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        if (MetaTrace.Enabled)
            return Traced(method, AsyncUnaryCallCore(method, host, options, request));
        return AsyncUnaryCallCore(method, host, options, request);
    }

    private AsyncUnaryCall<TResponse> AsyncUnaryCallCore<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        where TRequest : class where TResponse : class
    {
        if (!MetaMethodIds.TryGetId(method.FullName, out var id))
            return Fallback(method, host, options, request);
        var connection = _connection;
        if (connection is null || !connection.IsAlive)
        {
            if (connection is { ServerWentAway: true })
                _serverRestarting = true;
            if (Environment.TickCount64 < Volatile.Read(ref _retryAtTicks) || _disposed)
                return _serverRestarting && !_disposed ? Wrap(Task.FromException<TResponse>(Restarting())) : Fallback(method, host, options, request);
            return Wrap(ConnectThenCallAsync(id, method, host, options, request));
        }
        Interlocked.Increment(ref _fastCalls);
        return Wrap(connection.CallAsync(id, session(), ProtobufPayload.AsMessage(request), method.ResponseMarshaller,
            options.Deadline, options.CancellationToken));
    }

    private AsyncUnaryCall<TResponse> Fallback<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        where TRequest : class where TResponse : class
    {
        Interlocked.Increment(ref _fallbackCalls);
        return fallback.AsyncUnaryCall(method, host, options, request);
    }

    private AsyncUnaryCall<TResponse> Traced<TRequest, TResponse>(Method<TRequest, TResponse> method, AsyncUnaryCall<TResponse> call)
        where TRequest : class where TResponse : class
    {
        var start = MetaTrace.Now();
        var stage = $"client.{method.Name}.{(_connection is { IsAlive: true } ? "fast" : "grpc")}";
        call.ResponseAsync.ContinueWith(_ => MetaTrace.Record(stage, start), TaskContinuationOptions.ExecuteSynchronously);
        return call;
    }

    private static AsyncUnaryCall<TResponse> Wrap<TResponse>(Task<TResponse> reply) =>
        new(reply, NoHeaders, () => StatusOf(reply), () => Metadata.Empty, static () => { });

    private static Status StatusOf(Task task) => task.Exception?.InnerException is RpcException rpc ? rpc.Status
        : task.IsCompletedSuccessfully ? Status.DefaultSuccess : new Status(StatusCode.Unknown, "call not complete");

    private async Task<TResponse> ConnectThenCallAsync<TRequest, TResponse>(ushort id, Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        where TRequest : class where TResponse : class
    {
        MetaConnection? connection;
        try
        {
            connection = await ConnectAsync(options.CancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (options.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "call cancelled"));
        }
        if (connection is null)
        {
            if (_serverRestarting)
                throw Restarting();
            return await Fallback(method, host, options, request);
        }
        Interlocked.Increment(ref _fastCalls);
        return await connection.CallAsync(id, session(), ProtobufPayload.AsMessage(request), method.ResponseMarshaller,
            options.Deadline, options.CancellationToken).ConfigureAwait(false);
    }

    /// <summary>The live connection, a new one, or null (no fast listener, or it cannot be reached now: use gRPC).</summary>
    private async Task<MetaConnection?> ConnectAsync(CancellationToken ct)
    {
        await _connecting.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_connection is { IsAlive: true } live)
                return live;
            if (_disposed || Environment.TickCount64 < Volatile.Read(ref _retryAtTicks))
                return null;
            for (var attempt = 0; attempt < 2; attempt++)
            {
                try
                {
                    if (!_addressKnown)
                        UseAddress(await discover(ct).ConfigureAwait(false));
                    if (_address is null)
                    {
                        _serverRestarting = false;   // back without a fast listener: gRPC it is
                        return RetryLater();
                    }
                    var connection = await MetaConnection.ConnectAsync(_address, ConnectTimeout, inlineCompletions).ConfigureAwait(false);
                    _connection?.Retire();   // a draining one still owes replies
                    _connection = connection;
                    _serverRestarting = false;
                    return connection;
                }
                catch (Exception ex) when (ex is System.Net.Sockets.SocketException or RpcException or IOException)
                {
                    // The address may be stale (a restarted server on another port): ask again once.
                    _logger.LogDebug("Fast metadata connection to {Address} failed: {Error}", _address, ex.Message);
                    _addressKnown = false;
                }
            }
            // A failed send marks a connection dead before its receiving thread has read what
            // the server sent before closing. A go-away comes ahead of the close, so read to the
            // end first: "restarting" and "fall back to gRPC" must not depend on that race.
            if (_connection is { ServerWentAway: false } lost)
            {
                try { await lost.ReceiveEnded.WaitAsync(ConnectTimeout, ct).ConfigureAwait(false); }
                catch (TimeoutException) { }
            }
            if (_connection is { ServerWentAway: true })
                _serverRestarting = true;
            return RetryLater();
        }
        finally
        {
            _connecting.Release();
        }
    }

    private MetaConnection? RetryLater()
    {
        Volatile.Write(ref _retryAtTicks, Environment.TickCount64 + (long)RetryAfterFailure.TotalMilliseconds);
        return null;
    }

    private static RpcException Restarting() =>
        new(new Status(StatusCode.Unavailable, "the metadata server is restarting", new RequestNotSentException("the metadata server said it is stopping")));

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        fallback.BlockingUnaryCall(method, host, options, request);

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        fallback.AsyncServerStreamingCall(method, host, options, request);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        fallback.AsyncClientStreamingCall(method, host, options);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        fallback.AsyncDuplexStreamingCall(method, host, options);

    public void Dispose()
    {
        _disposed = true;
        _connection?.Dispose();
    }
}
