using System.Net.Sockets;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// Buffered blocking reads from a socket on a dedicated thread: small frames that arrive
/// together cost one receive. The socket must be in blocking mode (never used asynchronously),
/// so a waiting read is a plain recv(2) that the kernel wakes directly — no event-loop thread
/// in between.
/// </summary>
internal sealed class SocketFrameReader(Socket socket, int bufferBytes = 64 * 1024)
{
    private readonly byte[] _buffer = new byte[bufferBytes];
    private int _start, _end;

    /// <summary>Fills <paramref name="destination"/>; false when the peer closed the connection first (a clean end only between frames).</summary>
    public bool TryReadExactly(Span<byte> destination)
    {
        while (destination.Length > 0)
        {
            if (_start == _end)
            {
                // Large remainders go straight to the destination; small ones through the buffer.
                if (destination.Length >= _buffer.Length)
                {
                    var direct = socket.Receive(destination);
                    if (direct == 0) return false;
                    destination = destination[direct..];
                    continue;
                }
                _start = 0;
                _end = socket.Receive(_buffer);
                if (_end == 0) return false;
            }
            var n = Math.Min(destination.Length, _end - _start);
            _buffer.AsSpan(_start, n).CopyTo(destination);
            _start += n;
            destination = destination[n..];
        }
        return true;
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes; false when the peer closed first.</summary>
    public bool TrySkip(long count)
    {
        Span<byte> sink = stackalloc byte[4096];
        while (count > 0)
        {
            var n = (int)Math.Min(count, sink.Length);
            if (!TryReadExactly(sink[..n])) return false;
            count -= n;
        }
        return true;
    }
}
