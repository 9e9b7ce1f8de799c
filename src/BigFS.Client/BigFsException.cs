using BigFS.Core;

namespace BigFS.Client;

/// <summary>A failed filesystem operation, carrying the Linux errno a mount returns to the kernel.</summary>
public sealed class BigFsException : Exception
{
    public BigFsException(int errno, string message, Exception? inner = null) : base(message, inner) => Errno = errno;

    public int Errno { get; }

    internal static BigFsException Io(string message, Exception? inner = null) => new(Core.Errno.EIO, message, inner);
}
