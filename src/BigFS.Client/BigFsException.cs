using BigFS.Core;

namespace BigFS.Client;

/// <summary>A failed filesystem operation, carrying the Linux errno a mount returns to the kernel.</summary>
public sealed class BigFsException : Exception
{
    public BigFsException(int errno, string message, Exception? inner = null) : base(message, inner) => Errno = errno;

    public int Errno { get; }

    /// <summary>Every copy of a chunk said it does not exist: the layout naming it may be stale (collected after another client's commit).</summary>
    internal bool ChunkGone { get; private init; }

    internal static BigFsException Io(string message, Exception? inner = null) => new(Core.Errno.EIO, message, inner);

    internal static BigFsException Gone(string chunkId, Exception? inner) =>
        new(Core.Errno.EIO, $"no copy of chunk {chunkId} exists", inner) { ChunkGone = true };
}
