using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// The metadata server's fast listener: plain TCP, framed requests (<see cref="MetaFrameHeader"/>)
/// dispatched to the gRPC service's own handlers (<see cref="FastMetaDispatcher"/>). Each
/// connection has a thread that receives with blocking reads and runs the handlers' synchronous
/// part itself, so a request that completes synchronously (lookups, getattr) is answered by
/// the receiving thread with no thread hop; the others reply from whichever thread completes
/// them. Replies are single sends under a per-connection lock, in any order.
/// <para>
/// Bad input: an unknown method or an undecodable request gets an error reply and the
/// connection stays usable; a frame header that does not decode (magic, reserved bits, lengths
/// over the limits) gets an error reply and the connection is closed.
/// </para>
/// </summary>
public sealed class FastMetaListener : IAsyncDisposable
{
    /// <summary>Requests in flight per connection before its receiving thread waits (back-pressure).</summary>
    public const int MaxInFlightPerConnection = 1024;
    public const int MaxConnections = 1024;

    private readonly Socket _listener;
    private readonly FastMetaDispatcher _dispatcher;
    private readonly ILogger _logger;
    private readonly Lock _sync = new();
    private readonly HashSet<ServerConnection> _connections = [];
    private readonly Thread _acceptThread;
    private readonly TaskCompletionSource _acceptEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;

    private FastMetaListener(Socket listener, FastMetaDispatcher dispatcher, ILogger logger)
    {
        _listener = listener;
        _dispatcher = dispatcher;
        _logger = logger;
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "bigfs-meta-fast-accept" };
        _acceptThread.Start();
    }

    /// <summary>The bound endpoint (port 0 in the listen address picks a free port).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public static FastMetaListener Start(string listen, FastMetaDispatcher dispatcher, ILogger logger)
    {
        var (host, port) = GrpcServerHost.ParseListen(listen);
        var address = host is "*" or "0.0.0.0" or "" ? IPAddress.Any
            : IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host.Trim('[', ']'));
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new FastMetaListener(socket, dispatcher, logger);
    }

    private void AcceptLoop()
    {
        try
        {
            AcceptConnections();
        }
        finally
        {
            _acceptEnded.TrySetResult();
        }
    }

    private void AcceptConnections()
    {
        while (!_stopping)
        {
            Socket client;
            try
            {
                client = _listener.Accept();   // blocking: accepted sockets stay in blocking mode
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                if (!_stopping)
                    _logger.LogError("Fast metadata listener stopped accepting: {Error}", ex.Message);
                return;
            }
            client.NoDelay = true;
            lock (_sync)
            {
                if (_stopping || _connections.Count >= MaxConnections)
                {
                    _logger.LogWarning("Fast metadata connection from {Peer} refused: {Count} connections open", client.RemoteEndPoint, _connections.Count);
                    client.Dispose();
                    continue;
                }
                var connection = new ServerConnection(this, client);
                _connections.Add(connection);
                connection.Start();
            }
        }
    }

    private void Forget(ServerConnection connection)
    {
        lock (_sync)
            _connections.Remove(connection);
    }

    /// <summary>Stops accepting, stops reading requests, lets replies in flight go out (up to <paramref name="grace"/>), then closes every connection.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        ServerConnection[] open;
        lock (_sync)
        {
            _stopping = true;
            open = [.. _connections];
        }
        _listener.Dispose();
        foreach (var c in open)
            c.StopReceiving();
        var deadline = Environment.TickCount64 + (long)grace.TotalMilliseconds;
        while (open.Any(c => c.InFlight > 0) && Environment.TickCount64 < deadline)
            await Task.Delay(5).ConfigureAwait(false);
        foreach (var c in open)
            c.Close();
        try
        {
            await _acceptEnded.Task.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("Fast metadata listener: the accepting thread did not end");
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync(TimeSpan.FromSeconds(5)));

    private sealed class ServerConnection : FastMetaDispatcher.IReplySink
    {
        private readonly FastMetaListener _owner;
        private readonly Socket _socket;
        private readonly Lock _sendLock = new();
        private readonly SemaphoreSlim _slots = new(MaxInFlightPerConnection, MaxInFlightPerConnection);
        private readonly CancellationTokenSource _closed = new();
        private readonly string _peer;
        private int _inFlight;
        private int _isClosed;
        // The last session seen and its bytes: mounts send the same one with every request.
        private byte[] _sessionBytes = [];
        private string? _session;

        public ServerConnection(FastMetaListener owner, Socket socket)
        {
            _owner = owner;
            _socket = socket;
            _peer = socket.RemoteEndPoint?.ToString() ?? "?";
        }

        public int InFlight => Volatile.Read(ref _inFlight);

        public void Start() => new Thread(ReceiveLoop) { IsBackground = true, Name = "bigfs-meta-fast-conn" }.Start();

        private void ReceiveLoop()
        {
            var reader = new SocketFrameReader(_socket);
            var raw = new byte[MetaFrameHeader.Size];
            var context = new FastMetaCallContext(_peer, _closed.Token);
            try
            {
                while (reader.TryReadExactly(raw))
                {
                    if (!MetaFrameHeader.TryDecode(raw, out var header, out var error))
                    {
                        _owner._logger.LogDebug("Fast metadata connection {Peer}: bad frame header ({Error}); closing", _peer, error);
                        SendError(BitConverter.ToUInt16(raw, 4), BitConverter.ToUInt64(raw, 8), StatusCode.InvalidArgument, "bad frame header: " + error);
                        break;
                    }
                    var length = header.SessionLength + header.PayloadLength;
                    var frame = ArrayPool<byte>.Shared.Rent(length);
                    try
                    {
                        if (!reader.TryReadExactly(frame.AsSpan(0, length)))
                            break;
                        if (!_owner._dispatcher.TryGet(header.Method, out var method))
                        {
                            SendError(header.Method, header.RequestId, StatusCode.Unimplemented, $"unknown method {header.Method}");
                            continue;
                        }
                        _slots.Wait(_closed.Token);
                        Interlocked.Increment(ref _inFlight);
                        if (MetaTrace.Enabled)
                            _started[header.RequestId] = MetaTrace.Now();
                        _owner._dispatcher.OnSession?.Invoke(SessionOf(frame.AsSpan(0, header.SessionLength)));
                        method.Invoke(header.Method, header.RequestId, frame.AsMemory(header.SessionLength, header.PayloadLength), context, this);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(frame);
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                _owner._logger.LogDebug("Fast metadata connection {Peer} ended: {Error}", _peer, ex.Message);
            }
            // Replies still in flight go out as their handlers complete; the last one closes.
            StopReceiving();
            if (InFlight == 0)
                Close();
        }

        private string? SessionOf(ReadOnlySpan<byte> bytes)
        {
            if (bytes.IsEmpty)
                return null;
            if (!bytes.SequenceEqual(_sessionBytes))
            {
                _sessionBytes = bytes.ToArray();
                _session = Encoding.ASCII.GetString(bytes);
            }
            return _session;
        }

        public void Reply(ushort method, ulong requestId, IMessage reply)
        {
            var length = reply.CalculateSize();
            if (length > MetaFrameHeader.MaxPayloadBytes)
            {
                Error(method, requestId, StatusCode.ResourceExhausted, $"reply of {length} bytes exceeds the fast transport's {MetaFrameHeader.MaxPayloadBytes}");
                return;
            }
            var frame = ArrayPool<byte>.Shared.Rent(MetaFrameHeader.Size + length);
            try
            {
                new MetaFrameHeader(method, StatusCode.OK, 0, requestId, length).Encode(frame);
                reply.WriteTo(frame.AsSpan(MetaFrameHeader.Size, length));
                Send(frame.AsSpan(0, MetaFrameHeader.Size + length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(frame);
                Done(requestId, method);
            }
        }

        public void Error(ushort method, ulong requestId, StatusCode status, string message)
        {
            SendError(method, requestId, status, message);
            Done(requestId, method);
        }

        /// <summary>An error reply (the text is the status detail).</summary>
        private void SendError(ushort method, ulong requestId, StatusCode status, string message)
        {
            var text = Encoding.UTF8.GetBytes(message.Length > 4096 ? message[..4096] : message);
            var frame = new byte[MetaFrameHeader.Size + text.Length];
            new MetaFrameHeader(method, status, 0, requestId, text.Length).Encode(frame);
            text.CopyTo(frame, MetaFrameHeader.Size);
            Send(frame);
        }

        /// <summary>Counted requests end here; an error for an uncounted one (bad header, unknown method) does not.</summary>
        private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, long> _started = new();

        private void Done(ulong requestId, ushort method)
        {
            if (MetaTrace.Enabled && _started.TryRemove(requestId, out var start))
                MetaTrace.Record($"server.fast.{method}", start);
            _slots.Release();
            if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _receivingStopped) == 1)
                Close();
        }

        private int _receivingStopped;

        private void Send(ReadOnlySpan<byte> frame)
        {
            try
            {
                lock (_sendLock)
                {
                    while (frame.Length > 0)
                        frame = frame[_socket.Send(frame)..];
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // The client went away: nobody to tell. Its receive side ends the connection.
            }
        }

        public void StopReceiving()
        {
            if (Interlocked.Exchange(ref _receivingStopped, 1) == 1)
                return;
            try { _socket.Shutdown(SocketShutdown.Receive); }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
        }

        public void Close()
        {
            if (Interlocked.Exchange(ref _isClosed, 1) == 1)
                return;
            _closed.Cancel();
            try { _socket.Shutdown(SocketShutdown.Both); }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { }
            _socket.Dispose();
            _owner.Forget(this);
        }
    }
}
