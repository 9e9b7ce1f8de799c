using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BigFS.Storage;

/// <summary>
/// Files written with O_DIRECT: the data goes from the caller's aligned buffer to the disk,
/// not through the page cache. A chunk written this way is not copied into freshly allocated
/// page-cache pages (on this project's virtual machines the most expensive step of a large
/// upload, ×3 with three copies on one host) and does not sit in memory twice on the node.
/// Offsets, lengths and buffer addresses must be multiples of <see cref="AlignedChunkBuffer.Alignment"/>.
/// </summary>
internal static partial class DirectIo
{
    private const int O_WRONLY = 0x1, O_CREAT = 0x40, O_EXCL = 0x80, O_DIRECT = 0x4000, O_CLOEXEC = 0x80000;
    private const int EINVAL = 22, ENOSPC = 28, EOPNOTSUPP = 95;

    /// <summary>Whether files in <paramref name="directory"/> take O_DIRECT writes (not every filesystem does).</summary>
    public static bool IsSupported(string directory)
    {
        if (!OperatingSystem.IsLinux())
            return false;
        var probe = Path.Combine(directory, $".direct-probe-{Guid.NewGuid():n}");
        try
        {
            using var handle = TryCreate(probe, AlignedChunkBuffer.Alignment);
            if (handle is null)
                return false;
            var buffer = AlignedChunkBuffer.Rent(AlignedChunkBuffer.Alignment);
            try
            {
                buffer.Span(0, AlignedChunkBuffer.Alignment).Clear();
                RandomAccess.Write(handle, buffer.Span(0, AlignedChunkBuffer.Alignment), 0);
                return true;
            }
            finally
            {
                buffer.Release();
            }
        }
        catch (IOException)
        {
            return false;
        }
        finally
        {
            File.Delete(probe);
        }
    }

    /// <summary>
    /// Creates <paramref name="path"/> for O_DIRECT writes with <paramref name="size"/> bytes
    /// allocated (one extent, and ENOSPC now rather than halfway); null if the filesystem
    /// refuses O_DIRECT.
    /// </summary>
    public static SafeFileHandle? TryCreate(string path, long size)
    {
        var fd = Open(path, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0x1a4 /* 0644 */);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EINVAL)
                return null;
            throw new IOException($"open({path}, O_DIRECT) failed: errno {errno}", errno);
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Fallocate(fd, 0, 0, size) == 0)
            return handle;
        var error = Marshal.GetLastPInvokeError();
        if (error == EOPNOTSUPP)
            return handle;   // the filesystem allocates as the data comes
        handle.Dispose();
        File.Delete(path);
        throw new IOException(error == ENOSPC ? $"no space for {size} bytes at {path}" : $"posix_fallocate({path}) failed: errno {error}", error);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(int fd, int mode, long offset, long length);
}
