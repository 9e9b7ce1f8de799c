using BigFS.Fuse;

namespace BigFS.Fuse.MemoryFs;

/// <summary>
/// The benchmark subject, equivalent to libfuse's example/null.c: the mount point itself is a 4 GiB
/// regular file that reads as zeros and swallows writes.
/// </summary>
public sealed class NullFileSystem(uint uid, uint gid) : IFuseFileSystem
{
    private const ulong FileSize = 1UL << 32;

    private FuseAttr Attr()
    {
        var now = FuseTime.Now;
        return new FuseAttr { Ino = 1, Mode = ModeBits.S_IFREG | 0x1A4 /* 0644 */, Nlink = 1, Uid = uid, Gid = gid, Size = FileSize, Blocks = 0, Atime = now, Mtime = now, Ctime = now };
    }

    public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) =>
        new(ino == 1 ? Attr() : new FuseError(LinuxErrno.ENOENT));

    public ValueTask<FuseResult<FuseAttr>> SetAttrAsync(FuseRequestContext ctx, ulong ino, FuseSetAttr attr) =>
        new(ino == 1 ? Attr() : new FuseError(LinuxErrno.ENOENT));

    public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) =>
        new(ino == 1 ? new FuseOpenResult(0) : new FuseError(LinuxErrno.ENOENT));

    private long _reads, _readBytes;

    /// <summary>READ requests served and their average size (to check the kernel's request size).</summary>
    public (long Count, long AverageBytes) ReadStats => (_reads, _reads == 0 ? 0 : _readBytes / _reads);

    public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
    {
        Interlocked.Increment(ref _reads);
        Interlocked.Add(ref _readBytes, buffer.Length);
        if ((ulong)offset >= FileSize) return new(ReadOnlyMemory<byte>.Empty);
        buffer.Span.Clear(); // null.c memsets its buffer too
        return new((ReadOnlyMemory<byte>)buffer);
    }

    public ValueTask<FuseResult<int>> WriteAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, ReadOnlyMemory<byte> data, FuseWriteFlags flags, int openFlags) =>
        new(data.Length);
}
