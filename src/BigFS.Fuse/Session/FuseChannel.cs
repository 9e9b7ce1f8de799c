using System.Runtime.InteropServices;
using BigFS.Fuse.Native;

namespace BigFS.Fuse.Session;

/// <summary>The /dev/fuse file descriptor: blocking reads of whole requests, atomic writev of whole replies.</summary>
internal sealed unsafe class FuseChannel(int fd) : IDisposable
{
    private int _fd = fd;

    public int Fd => _fd;

    /// <summary>Reads one request; returns its length, or -errno.</summary>
    public int Read(byte[] pinnedBuffer)
    {
        fixed (byte* p = pinnedBuffer)
        {
            nint n = LibC.Read(_fd, p, (nuint)pinnedBuffer.Length);
            return n >= 0 ? (int)n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Writes one message from a header and an optional payload; 0 or an errno
    /// (ENOENT: the request was interrupted and is gone; ENODEV: unmounted).</summary>
    public int Send(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        fixed (byte* h = header)
        fixed (byte* d = payload)
        {
            var iov = stackalloc LibC.IoVec[2];
            iov[0] = new LibC.IoVec { Base = h, Length = (nuint)header.Length };
            iov[1] = new LibC.IoVec { Base = d, Length = (nuint)payload.Length };
            int count = payload.Length > 0 ? 2 : 1;
            while (true)
            {
                nint n = LibC.Writev(_fd, iov, count);
                if (n >= 0) return 0;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != LibC.EINTR) return errno;
            }
        }
    }

    /// <summary>Writes one message from a header and the first <paramref name="count"/> segments, <paramref name="total"/> bytes of them, pinned for the call.</summary>
    public int SendGather(ReadOnlySpan<byte> header, IReadOnlyList<ReadOnlyMemory<byte>> segments, int count, int total)
    {
        var pins = System.Buffers.ArrayPool<System.Buffers.MemoryHandle>.Shared.Rent(count);
        var iov = stackalloc LibC.IoVec[count + 1];
        try
        {
            int left = total;
            for (int i = 0; i < count; i++)
            {
                pins[i] = segments[i].Pin();
                int length = Math.Min(segments[i].Length, left);
                iov[i + 1] = new LibC.IoVec { Base = pins[i].Pointer, Length = (nuint)length };
                left -= length;
            }
            fixed (byte* h = header)
            {
                iov[0] = new LibC.IoVec { Base = h, Length = (nuint)header.Length };
                while (true)
                {
                    nint n = LibC.Writev(_fd, iov, count + 1);
                    if (n >= 0) return 0;
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != LibC.EINTR) return errno;
                }
            }
        }
        finally
        {
            for (int i = 0; i < count; i++)
                pins[i].Dispose();
            System.Buffers.ArrayPool<System.Buffers.MemoryHandle>.Shared.Return(pins, clearArray: true);
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.Close(fd);
    }
}
