using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;

namespace BigFS.Protocol.Bulk;

/// <summary>
/// One client TCP connection to a node's bulk listener, one request at a time. Data is sent
/// from and received into the caller's buffers directly (no intermediate copies). Any failure
/// leaves the connection in an unknown state: the owner disposes it.
/// </summary>
public sealed class BulkConnection : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _header = new byte[BulkFrameHeader.Size];
    private ulong _nextRequestId;

    private BulkConnection(Socket socket) => _socket = socket;

    public static async Task<BulkConnection> ConnectAsync(string address, CancellationToken ct)
    {
        var (host, port) = GrpcServerHost.ParseListen(address);
        var ips = IPAddress.TryParse(host.Trim('[', ']'), out var ip) ? [ip] : await Dns.GetHostAddressesAsync(host, ct);
        SocketException? last = null;
        foreach (var candidate in ips)   // a name may resolve to ::1 and 127.0.0.1, the node listening on one of them
        {
            var socket = new Socket(candidate.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                DeadPeerDetection.Configure(socket);
                await DeadPeerDetection.ConnectAsync(socket, new IPEndPoint(candidate, port), ct);
                return new BulkConnection(socket);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>
    /// An idle connection is never readable unless the node closed it (the protocol has no
    /// unsolicited frames), so this catches connections a restarted or stopped node dropped.
    /// </summary>
    public bool IsReusable
    {
        get
        {
            try { return _socket.Connected && !_socket.Poll(0, SelectMode.SelectRead); }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException) { return false; }
        }
    }

    public ulong NextRequestId() => ++_nextRequestId;

    /// <summary>Sends a frame header and its meta bytes (the data, if any, follows with <see cref="SendAsync(ReadOnlyMemory{byte}, CancellationToken)"/>).</summary>
    public async ValueTask SendHeaderAsync(BulkFrameHeader header, ReadOnlyMemory<byte> meta, CancellationToken ct)
    {
        var buffer = new byte[BulkFrameHeader.Size + meta.Length];
        header.Encode(buffer);
        meta.CopyTo(buffer.AsMemory(BulkFrameHeader.Size));
        await SendAsync(buffer, ct);
    }

    public async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            var n = await _socket.SendAsync(data, SocketFlags.None, ct);
            data = data[n..];
        }
    }

    /// <summary>Gathered send of several buffers in one syscall where the kernel takes them all.</summary>
    public async ValueTask SendAsync(IList<ArraySegment<byte>> segments, CancellationToken ct)
    {
        long total = 0;
        foreach (var s in segments)
            total += s.Count;
        int sent;
        using (ct.Register(static s => ((Socket)s!).Dispose(), _socket))
            sent = await _socket.SendAsync(segments, SocketFlags.None);
        ct.ThrowIfCancellationRequested();
        if (sent == total)
            return;
        // Partial send: the rest, buffer by buffer.
        foreach (var s in segments)
        {
            if (sent >= s.Count)
            {
                sent -= s.Count;
                continue;
            }
            await SendAsync(s.AsMemory(sent), ct);
            sent = 0;
        }
    }

    public async ValueTask ReceiveExactlyAsync(Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
                throw new EndOfStreamException("the node closed the bulk connection");
            buffer = buffer[n..];
        }
    }

    /// <summary>
    /// Receives a reply header and checks it answers <paramref name="op"/>/<paramref name="requestId"/>.
    /// An error reply is read completely and thrown as the RpcException a gRPC call would have thrown.
    /// </summary>
    public async ValueTask<BulkFrameHeader> ReceiveReplyAsync(BulkOp op, ulong requestId, CancellationToken ct)
    {
        await ReceiveExactlyAsync(_header, ct);
        if (!BulkFrameHeader.TryDecode(_header, out var reply, out var error))
            throw new BulkProtocolException("bad reply header: " + error);
        if (reply.Op != op || reply.RequestId != requestId)
            throw new BulkProtocolException($"reply for {reply.Op} #{reply.RequestId}, expected {op} #{requestId}");
        if (reply.Status == StatusCode.OK)
            return reply;
        var text = new byte[reply.MetaLength];
        await ReceiveExactlyAsync(text, ct);
        throw new RpcException(new Status(reply.Status, Encoding.UTF8.GetString(text)));
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>The peer broke the bulk protocol (garbled or mismatched reply).</summary>
public sealed class BulkProtocolException(string message) : IOException(message);
