using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Protocol.FastMeta;

public sealed partial class FastMetaListener
{
    /// <summary>
    /// One accepted connection: its thread reads frames and starts their handlers; replies are
    /// sent by whichever thread completes a handler. The socket closes once receiving has
    /// stopped and the last reply in flight is out.
    /// </summary>
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
                        lock (_acceptLock)
                        {
                            if (_draining)
                            {
                                // After the go-away: the client knows this one was not processed.
                                _slots.Release();
                                continue;
                            }
                            _lastAccepted = header.RequestId;
                            Interlocked.Increment(ref _inFlight);
                        }
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

        /// <summary>
        /// Starts a graceful end: no request read from now on is processed, and the client is
        /// told so with a go-away frame naming the last request accepted (its requests are sent
        /// in id order): it repeats any later one elsewhere, since none of them ran. Requests in
        /// flight complete and are answered; the caller closes the connection after them.
        /// </summary>
        public void BeginDrain()
        {
            ulong last;
            lock (_acceptLock)
            {
                if (_draining)
                    return;
                _draining = true;
                last = _lastAccepted;
            }
            var frame = new byte[MetaFrameHeader.Size];
            new MetaFrameHeader(MetaFrameHeader.GoAwayMethod, StatusCode.OK, 0, last, 0).Encode(frame);
            Send(frame);
        }

        private readonly Lock _acceptLock = new();
        private bool _draining;
        private ulong _lastAccepted;

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
