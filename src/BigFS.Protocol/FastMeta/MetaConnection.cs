using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// One client connection to a metadata server's fast listener: any number of requests in
/// flight, replies matched by request id. Requests are sent by the calling thread (one send per
/// frame); a dedicated thread receives replies with blocking reads, parses them and completes
/// the callers. When the connection breaks, every call in flight fails with Unavailable (it
/// may or may not have been applied, as with gRPC) and the connection is dead for good. A
/// server that stops gracefully says which calls it will still answer (a go-away frame): the
/// later ones fail as never sent (<see cref="RequestNotSentException"/>), so callers may repeat
/// them, and no new call starts on the connection.
/// </summary>
public sealed class MetaConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly Lock _sendLock = new();
    private readonly Lock _pendingLock = new();
    private readonly Dictionary<ulong, PendingCall> _pending = [];
    private readonly bool _inlineCompletions;
    private ulong _nextRequestId;
    private volatile bool _closed;
    private volatile bool _draining;
    private bool _retired;
    private string _closeReason = "";

    private MetaConnection(Socket socket, string address, bool inlineCompletions)
    {
        _socket = socket;
        Address = address;
        _inlineCompletions = inlineCompletions;
        new Thread(ReceiveLoop) { IsBackground = true, Name = "bigfs-meta-client" }.Start();
    }

    public string Address { get; }

    /// <summary>Open and taking calls (not closed, and the server has not said it is going away).</summary>
    public bool IsAlive => !_closed && !_draining;

    /// <summary>The server said it is stopping (a go-away): it is expected back, not gone.</summary>
    public bool ServerWentAway { get; private set; }

    /// <summary>Completes when the receiving thread has read everything the server sent (or the connection was closed here).</summary>
    public Task ReceiveEnded => _receiveEnded.Task;
    private readonly TaskCompletionSource _receiveEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Connects with a blocking connect on a pool thread (an asynchronous connect would put the
    /// socket in non-blocking mode, and every later blocking receive would then wait through
    /// the runtime's event loop: one more thread hop per reply). <paramref name="address"/> is
    /// host:port, <c>unix:/path</c>, or several of them separated by ';' — tried in order.
    /// </summary>
    /// <param name="inlineCompletions">Run callers' continuations on the receiving thread (no hop; they must never block).</param>
    public static async Task<MetaConnection> ConnectAsync(string address, TimeSpan timeout, bool inlineCompletions = false)
    {
        Exception? last = null;
        foreach (var alternative in address.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                return new MetaConnection(await ConnectOneAsync(alternative, timeout), alternative, inlineCompletions);
            }
            catch (Exception ex) when (ex is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                last = ex;
            }
        }
        throw last as SocketException ?? new SocketException((int)SocketError.AddressNotAvailable);
    }

    private static async Task<Socket> ConnectOneAsync(string address, TimeSpan timeout)
    {
        EndPoint endpoint;
        Socket socket;
        if (address.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            endpoint = new UnixDomainSocketEndPoint(address[UnixPrefix.Length..]);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        }
        else
        {
            var (host, port) = GrpcServerHost.ParseListen(address);
            endpoint = IPAddress.TryParse(host.Trim('[', ']'), out var ip)
                ? new IPEndPoint(ip, port)
                : new IPEndPoint((await Dns.GetHostAddressesAsync(host)).First(), port);
            socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            DeadPeerDetection.Configure(socket);
        }
        var connect = Task.Run(() => socket.Connect(endpoint));
        if (await Task.WhenAny(connect, Task.Delay(timeout)) != connect)
        {
            socket.Dispose();   // ends the connect attempt
            _ = connect.ContinueWith(t => t.Exception, TaskScheduler.Default);
            throw new SocketException((int)SocketError.TimedOut);
        }
        try
        {
            await connect;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return socket;
    }

    public const string UnixPrefix = "unix:";

    /// <summary>
    /// What a client dials for a server advertising <paramref name="tcpAddress"/> and
    /// <paramref name="unixPath"/>: the Unix socket first when that path exists here (this host
    /// is the server's), then TCP.
    /// </summary>
    public static string? ChooseAddress(string? tcpAddress, string? unixPath)
    {
        var tcp = string.IsNullOrEmpty(tcpAddress) ? null : tcpAddress;
        if (string.IsNullOrEmpty(unixPath) || !File.Exists(unixPath))
            return tcp;
        return tcp is null ? UnixPrefix + unixPath : UnixPrefix + unixPath + ";" + tcp;
    }

    /// <summary>Sends one request; the task completes with the reply or faults with an <see cref="RpcException"/>.</summary>
    public Task<TResponse> CallAsync<TResponse>(ushort method, string? session, IMessage request, Marshaller<TResponse> replies,
        DateTime? deadline, CancellationToken ct)
    {
        var sessionLength = session is null ? 0 : Encoding.ASCII.GetByteCount(session);
        if (sessionLength > MetaFrameHeader.MaxSessionBytes)
            return Task.FromException<TResponse>(new RpcException(new Status(StatusCode.InvalidArgument, "session id too long")));
        var payloadLength = request.CalculateSize();
        if (payloadLength > MetaFrameHeader.MaxPayloadBytes)
            return Task.FromException<TResponse>(new RpcException(new Status(StatusCode.ResourceExhausted,
                $"request of {payloadLength} bytes exceeds the fast transport's {MetaFrameHeader.MaxPayloadBytes}")));

        var call = new PendingCall<TResponse>(replies, _inlineCompletions);
        ulong id = 0;
        var frameLength = MetaFrameHeader.Size + sessionLength + payloadLength;
        var frame = ArrayPool<byte>.Shared.Rent(frameLength);
        try
        {
            if (session is not null)
                Encoding.ASCII.GetBytes(session, frame.AsSpan(MetaFrameHeader.Size, sessionLength));
            request.WriteTo(frame.AsSpan(MetaFrameHeader.Size + sessionLength, payloadLength));
            // Ids are taken in sending order, so a go-away's "last accepted id" splits the calls exactly.
            lock (_sendLock)
            {
                lock (_pendingLock)
                {
                    if (_closed || _draining)
                        return Task.FromException<TResponse>(Unavailable(sent: false));
                    id = ++_nextRequestId;
                    _pending.Add(id, call);
                }
                new MetaFrameHeader(method, StatusCode.OK, sessionLength, id, payloadLength).Encode(frame);
                SendAll(frame.AsSpan(0, frameLength));
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return Task.FromException<TResponse>(SendFailed(id, ex));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }

        if (ct.CanBeCanceled || deadline is not null)
            call.Watch(this, id, deadline, ct);
        return call.Task;
    }

    private void SendAll(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
            data = data[_socket.Send(data)..];
    }

    internal void Abandon(ulong id, PendingCall call, Status status)
    {
        lock (_pendingLock)
        {
            if (!_pending.Remove(id))
                return;
        }
        call.Fail(new RpcException(status));
    }

    private void ReceiveLoop()
    {
        var reader = new SocketFrameReader(_socket);
        var raw = new byte[MetaFrameHeader.Size];
        var reason = "closed by the server";
        try
        {
            while (reader.TryReadExactly(raw))
            {
                if (!MetaFrameHeader.TryDecode(raw, out var header, out var error) || header.SessionLength != 0)
                {
                    reason = "bad reply frame: " + (error ?? "a reply carries no session");
                    break;
                }
                if (header.Method == MetaFrameHeader.GoAwayMethod)
                {
                    GoAway(lastAccepted: header.RequestId);
                    if (!reader.TryReadExactly(new byte[header.PayloadLength]))
                        break;
                    continue;
                }
                var payload = ArrayPool<byte>.Shared.Rent(header.PayloadLength);
                try
                {
                    if (!reader.TryReadExactly(payload.AsSpan(0, header.PayloadLength)))
                        break;
                    PendingCall? call;
                    bool lastOfRetired;
                    lock (_pendingLock)
                    {
                        _pending.Remove(header.RequestId, out call);
                        lastOfRetired = _retired && _pending.Count == 0;
                    }
                    // Unknown ids are calls given up on (cancelled, timed out): their reply is dropped.
                    call?.Complete(header.Status, payload.AsMemory(0, header.PayloadLength));
                    if (lastOfRetired)
                    {
                        reason = "retired";
                        break;
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(payload);
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            reason = ex.Message;
        }
        Close(reason);
        _receiveEnded.TrySetResult();
    }

    /// <summary>
    /// A frame not wholly written cannot have run (the server acts on whole frames only), so its
    /// call fails as never sent. Typically the server closed after a go-away this connection has
    /// not read yet: no new call starts here, and the receiving thread still reads what the
    /// server sent before closing (that go-away, the last replies), then closes.
    /// </summary>
    private RpcException SendFailed(ulong id, Exception error)
    {
        lock (_pendingLock)
        {
            _pending.Remove(id);
            _draining = true;
            if (_closeReason.Length == 0)
                _closeReason = "send failed: " + error.Message;
        }
        try { _socket.Shutdown(SocketShutdown.Send); }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        return Unavailable(sent: false);
    }

    /// <summary>The server processes no call after <paramref name="lastAccepted"/>: those fail as never sent, and no new one starts here.</summary>
    private void GoAway(ulong lastAccepted)
    {
        List<PendingCall> refused = [];
        lock (_pendingLock)
        {
            _draining = true;
            ServerWentAway = true;
            _closeReason = "the server is stopping";
            foreach (var id in _pending.Keys.Where(id => id > lastAccepted).ToList())
            {
                _pending.Remove(id, out var call);
                refused.Add(call!);
            }
        }
        var error = Unavailable(sent: false);
        foreach (var call in refused)
            call.Fail(error);
    }

    /// <summary>The error of a call on a lost connection; one never sent says so (<see cref="RequestNotSentException"/>), so it may be repeated.</summary>
    private RpcException Unavailable(bool sent = true)
    {
        var detail = $"metadata connection to {Address} lost: {_closeReason}";
        return new(new Status(StatusCode.Unavailable, detail, sent ? null : new RequestNotSentException(detail)));
    }

    private void Close(string reason)
    {
        List<PendingCall> failed;
        lock (_pendingLock)
        {
            if (_closed)
                return;
            if (_closeReason.Length == 0)   // a go-away or failed send said why first
                _closeReason = reason;
            _closed = true;
            failed = [.. _pending.Values];
            _pending.Clear();
        }
        try { _socket.Shutdown(SocketShutdown.Both); }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
        var error = Unavailable();
        foreach (var call in failed)
            call.Fail(error);
    }

    /// <summary>
    /// Replaced by a new connection: takes no new call, and closes once every call already sent
    /// has its reply — at once if none is waiting. A connection the server is draining still
    /// owes the replies of the calls it accepted; closing it now would make them ambiguous.
    /// </summary>
    public void Retire()
    {
        lock (_pendingLock)
        {
            _retired = true;
            _draining = true;
            if (_pending.Count > 0)
                return;
        }
        Close("retired");
    }

    public void Dispose() => Close("closed by the client");

    /// <summary>A request waiting for its reply.</summary>
    internal abstract class PendingCall
    {
        public abstract void Complete(StatusCode status, ReadOnlyMemory<byte> payload);
        public abstract void Fail(Exception error);
    }

    private sealed class PendingCall<T>(Marshaller<T> replies, bool inline) : PendingCall
    {
        private readonly TaskCompletionSource<T> _done = new(inline ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CallWatch _watch = new();

        public Task<T> Task => _done.Task;

        public void Watch(MetaConnection connection, ulong id, DateTime? deadline, CancellationToken ct) =>
            _watch.Start(deadline, ct, status => connection.Abandon(id, this, status));

        public override void Complete(StatusCode status, ReadOnlyMemory<byte> payload)
        {
            Release();
            if (status != StatusCode.OK)
            {
                _done.TrySetException(new RpcException(new Status(status, Encoding.UTF8.GetString(payload.Span))));
                return;
            }
            T reply;
            try
            {
                reply = ProtobufPayload.Parse(replies, payload);
            }
            catch (Exception ex)
            {
                _done.TrySetException(new RpcException(new Status(StatusCode.Internal, "undecodable reply: " + ex.Message)));
                return;
            }
            _done.TrySetResult(reply);
        }

        public override void Fail(Exception error)
        {
            Release();
            _done.TrySetException(error);
        }

        private void Release() => _watch.Release();
    }
}
