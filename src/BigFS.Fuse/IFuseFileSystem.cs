namespace BigFS.Fuse;

/// <summary>
/// An inode-based, asynchronous filesystem served over FUSE. Every method has a default that
/// answers ENOSYS, so a filesystem implements only what it supports. Node ids are the
/// filesystem's inode numbers; 1 is the root. Errors are positive errno values
/// (<see cref="LinuxErrno"/>): return <c>new FuseError(errno)</c> for results, or the errno for
/// plain statuses (0 = success).
/// <para>
/// Threading: methods are called on the session's reader threads and may run concurrently for
/// any inodes. They must not block: do I/O asynchronously and return an incomplete ValueTask; the
/// reply is sent from whatever thread completes it. Names, symlink targets and xattr names are
/// the kernel's bytes decoded by <see cref="FileNameEncoding"/>: valid UTF-8 reads as text, and
/// any other byte sequence survives the round trip too, as on a local filesystem.
/// </para>
/// </summary>
public interface IFuseFileSystem
{
    private static ValueTask<FuseResult<T>> NoSys<T>() => ValueTask.FromResult(FuseResult<T>.Fail(LinuxErrno.ENOSYS));
    private static ValueTask<int> NoSys() => ValueTask.FromResult(LinuxErrno.ENOSYS);

    /// <summary>Called once INIT is negotiated, before any other request.</summary>
    void Init(FuseConnectionInfo connection) { }
    /// <summary>The kernel is tearing the connection down (unmount).</summary>
    void Destroy() { }
    /// <summary>The kernel dropped its last reference (lookup count reached 0) to <paramref name="ino"/>.</summary>
    void Forget(ulong ino) { }

    ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name) => NoSys<FuseEntry>();
    /// <param name="fh">The handle when the caller has the file open (fstat), else null.</param>
    ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) => NoSys<FuseAttr>();
    ValueTask<FuseResult<FuseAttr>> SetAttrAsync(FuseRequestContext ctx, ulong ino, FuseSetAttr attr) => NoSys<FuseAttr>();
    ValueTask<FuseResult<string>> ReadLinkAsync(FuseRequestContext ctx, ulong ino) => NoSys<string>();
    ValueTask<FuseResult<FuseEntry>> SymlinkAsync(FuseRequestContext ctx, ulong parent, string name, string target) => NoSys<FuseEntry>();
    /// <param name="mode">Type and permission bits, already masked by the caller's umask unless <see cref="FuseRequestContext.Umask"/> is set.</param>
    ValueTask<FuseResult<FuseEntry>> MkNodAsync(FuseRequestContext ctx, ulong parent, string name, uint mode, uint rdev) => NoSys<FuseEntry>();
    ValueTask<FuseResult<FuseEntry>> MkDirAsync(FuseRequestContext ctx, ulong parent, string name, uint mode) => NoSys<FuseEntry>();
    ValueTask<int> UnlinkAsync(FuseRequestContext ctx, ulong parent, string name) => NoSys();
    ValueTask<int> RmDirAsync(FuseRequestContext ctx, ulong parent, string name) => NoSys();
    /// <param name="flags">RENAME_NOREPLACE (1), RENAME_EXCHANGE (2), RENAME_WHITEOUT (4); 0 for plain rename.</param>
    ValueTask<int> RenameAsync(FuseRequestContext ctx, ulong parent, string name, ulong newParent, string newName, uint flags) => NoSys();
    ValueTask<FuseResult<FuseEntry>> LinkAsync(FuseRequestContext ctx, ulong ino, ulong newParent, string newName) => NoSys<FuseEntry>();

    /// <param name="flags">open(2) flags; O_TRUNC must be honoured here (atomic O_TRUNC is negotiated).</param>
    ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) => NoSys<FuseOpenResult>();
    /// <param name="flags">open(2) flags including O_EXCL/O_TRUNC.</param>
    ValueTask<FuseResult<FuseCreateResult>> CreateAsync(FuseRequestContext ctx, ulong parent, string name, int flags, uint mode) => NoSys<FuseCreateResult>();
    /// <summary>
    /// open(O_TMPFILE): an open regular file in <paramref name="parent"/> with no name and no link
    /// (the entry's nlink 0). Unless opened O_EXCL, a later <see cref="LinkAsync"/> may name it;
    /// otherwise it goes at its last release. ENOSYS makes the kernel answer EOPNOTSUPP from then on.
    /// </summary>
    ValueTask<FuseResult<FuseCreateResult>> TmpFileAsync(FuseRequestContext ctx, ulong parent, int flags, uint mode) => NoSys<FuseCreateResult>();
    /// <summary>
    /// Reads up to buffer.Length bytes at offset. Either fill <paramref name="buffer"/> (session memory,
    /// valid until the task completes) and return a slice of it, or return memory of your own that
    /// stays unchanged until the task's continuation has written the reply. Short reads mean EOF.
    /// </summary>
    ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer) => NoSys<ReadOnlyMemory<byte>>();
    /// <summary>Writes data at offset; returns the bytes written. <paramref name="data"/> points into the
    /// session's request buffer and is valid only until the returned task completes: copy what you keep.
    /// <paramref name="openFlags"/> are the descriptor's flags as they are now (O_APPEND, O_SYNC, …).</summary>
    ValueTask<FuseResult<int>> WriteAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, ReadOnlyMemory<byte> data, FuseWriteFlags flags, int openFlags) => NoSys<int>();
    /// <summary>Called on every close(2) of a file descriptor; report deferred write errors here.</summary>
    ValueTask<int> FlushAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong lockOwner) => NoSys();
    /// <summary>The last reference to the open file is gone. The result is not reported to anyone.</summary>
    ValueTask<int> ReleaseAsync(FuseRequestContext ctx, ulong ino, ulong fh, int flags, FuseReleaseFlags releaseFlags, ulong lockOwner) => NoSys();
    ValueTask<int> FsyncAsync(FuseRequestContext ctx, ulong ino, ulong fh, bool dataOnly) => NoSys();
    /// <param name="mode">fallocate(2) mode bits (FALLOC_FL_KEEP_SIZE = 1, PUNCH_HOLE = 2, ...).</param>
    ValueTask<int> FallocateAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, long length, int mode) => NoSys();
    /// <param name="whence">SEEK_DATA (3) or SEEK_HOLE (4); the kernel handles the others.</param>
    ValueTask<FuseResult<long>> LseekAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, int whence) => NoSys<long>();
    ValueTask<FuseResult<long>> CopyFileRangeAsync(FuseRequestContext ctx, ulong inoIn, ulong fhIn, long offsetIn,
        ulong inoOut, ulong fhOut, long offsetOut, long length, ulong flags) => NoSys<long>();

    ValueTask<FuseResult<FuseOpenResult>> OpenDirAsync(FuseRequestContext ctx, ulong ino, int flags) => NoSys<FuseOpenResult>();
    /// <summary>Lists entries after <paramref name="offset"/> (0 = from the start) into <paramref name="list"/>.</summary>
    ValueTask<int> ReadDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, FuseDirList list) => NoSys();
    ValueTask<int> ReleaseDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, int flags) => NoSys();
    ValueTask<int> FsyncDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, bool dataOnly) => NoSys();

    ValueTask<FuseResult<FuseStatFs>> StatFsAsync(FuseRequestContext ctx, ulong ino) => NoSys<FuseStatFs>();
    /// <param name="mask">R_OK (4), W_OK (2), X_OK (1) or F_OK (0).</param>
    ValueTask<int> AccessAsync(FuseRequestContext ctx, ulong ino, int mask) => NoSys();

    /// <param name="flags">XATTR_CREATE (1) or XATTR_REPLACE (2).</param>
    ValueTask<int> SetXattrAsync(FuseRequestContext ctx, ulong ino, string name, ReadOnlyMemory<byte> value, int flags) => NoSys();
    /// <summary>The whole value; the session answers size probes and ERANGE. ENODATA when absent.</summary>
    ValueTask<FuseResult<ReadOnlyMemory<byte>>> GetXattrAsync(FuseRequestContext ctx, ulong ino, string name) => NoSys<ReadOnlyMemory<byte>>();
    ValueTask<FuseResult<IReadOnlyList<string>>> ListXattrAsync(FuseRequestContext ctx, ulong ino) => NoSys<IReadOnlyList<string>>();
    ValueTask<int> RemoveXattrAsync(FuseRequestContext ctx, ulong ino, string name) => NoSys();

    /// <summary>F_GETLK: the first conflicting lock, or one with Type = Unlock if none.</summary>
    ValueTask<FuseResult<FuseFileLock>> GetLkAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong owner, FuseFileLock lk) => NoSys<FuseFileLock>();
    /// <summary>F_SETLK / F_SETLKW (<paramref name="wait"/>) or flock(2) (<paramref name="isFlock"/>, whole file).
    /// A waiting call ends with EINTR when ctx.CancellationToken fires.</summary>
    ValueTask<int> SetLkAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong owner, FuseFileLock lk, bool wait, bool isFlock) => NoSys();
}

[Flags]
public enum FuseWriteFlags : uint { None = 0, Cache = 1, LockOwner = 2, KillSuidGid = 4 }

[Flags]
public enum FuseReleaseFlags : uint { None = 0, Flush = 1, FlockUnlock = 2 }

/// <summary>What INIT settled on, and the way to send cache invalidations to the kernel.</summary>
public sealed record FuseConnectionInfo(uint ProtocolMajor, uint ProtocolMinor, uint MaxWrite, uint MaxReadahead, Protocol.FuseInitFlags Flags, IFuseNotifier Notifier);
