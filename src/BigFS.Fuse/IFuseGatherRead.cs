namespace BigFS.Fuse;

/// <summary>
/// Optional, for a filesystem that often has READ data in memory already (a block cache): the
/// reply is written with one writev straight from those buffers, without copying them into the
/// request buffer first. Called synchronously on the reader thread before
/// <see cref="IFuseFileSystem.ReadAsync"/>; answer false (quickly, without blocking) to take the
/// ordinary path.
/// </summary>
public interface IFuseGatherRead
{
    /// <param name="size">The most the kernel asked for; the segments may add up to less (end of file).</param>
    bool TryReadGather(FuseRequestContext ctx, ulong ino, ulong fh, long offset, int size, out FuseGatherData data);
}

/// <summary>A READ reply's bytes, in order; <paramref name="Owner"/> is disposed once the reply has been written.</summary>
public readonly record struct FuseGatherData(IReadOnlyList<ReadOnlyMemory<byte>> Segments, IDisposable? Owner);
