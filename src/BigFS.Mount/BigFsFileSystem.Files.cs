using BigFS.Client;
using BigFS.Fuse;
using BigFS.Fuse.Protocol;
using BigFS.Protocol;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>File data: open/create, read, write, flush/fsync (the commit point), release.</summary>
internal sealed partial class BigFsFileSystem
{
    private const int O_ACCMODE = 3, O_EXCL = 0x80, O_TRUNC = 0x200, O_APPEND = 0x400;
    private const int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;
    private const int SEEK_DATA = 3, SEEK_HOLE = 4;

    public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) => Call<FuseOpenResult>(async () =>
    {
        if (options.ReadOnly && (flags & O_ACCMODE) != 0) return new FuseError(LinuxErrno.EROFS);
        var generation = cache.Generation;
        var reply = await _ns.OpenAsync(new OpenRequest { SessionId = session.Id, Ino = ino }, cancellationToken: ctx.CancellationToken);
        if (reply.Errno != 0) return new FuseError(InodeErrno(ino, reply.Errno));
        cache.LearnAttr(generation, reply.Attr);   // open is where close-to-open refreshes what we know
        return await OpenHandle(ctx, reply.Attr, (flags & O_TRUNC) != 0, flags, revalidateKernel: true);
    }, "open");

    public ValueTask<FuseResult<FuseCreateResult>> CreateAsync(FuseRequestContext ctx, ulong parent, string name, int flags, uint mode) => Call<FuseCreateResult>(async () =>
    {
        if (options.ReadOnly) return new FuseError(LinuxErrno.EROFS);
        // One round trip: the server registers this session's open along with the create.
        var generation = cache.BeginChange();
        cache.ForgetAttr(parent);
        var created = await _ns.CreateNodeAsync(new CreateNodeRequest
        {
            Parent = parent, Name = Name(name), Type = InodeType.File, Mode = mode & 0xfff, Uid = ctx.Uid, Gid = ctx.Gid, Exclusive = (flags & O_EXCL) != 0,
            OpenSessionId = session.Id, Umask = ctx.Umask,
        }, cancellationToken: ctx.CancellationToken);
        if (created.Errno != 0) return new FuseError(created.Errno);
        cache.LearnNewEntry(generation, parent, name, created.Attr);
        cache.LearnAttr(generation, created.ParentAttr);
        if (created.Created && !created.HasXattrs)
            cache.LearnNoXattrs(generation, created.Attr.Ino);
        var handle = await OpenHandle(ctx, created.Attr, truncate: !created.Created && (flags & O_TRUNC) != 0, flags);
        return new FuseCreateResult(Entry(created.Attr), handle);
    }, "create");

    /// <summary>
    /// O_TMPFILE: the server creates the file with no name and holds it while this session has it
    /// open; linkat may name it (the kernel refuses that for O_EXCL), else it goes at the last release.
    /// </summary>
    public ValueTask<FuseResult<FuseCreateResult>> TmpFileAsync(FuseRequestContext ctx, ulong parent, int flags, uint mode) => Call<FuseCreateResult>(async () =>
    {
        if (options.ReadOnly) return new FuseError(LinuxErrno.EROFS);
        var generation = cache.BeginChange();
        var created = await _ns.CreateNodeAsync(new CreateNodeRequest
        {
            Parent = parent, Unnamed = true, Type = InodeType.File, Mode = mode & 0xfff, Uid = ctx.Uid, Gid = ctx.Gid,
            OpenSessionId = session.Id, Umask = ctx.Umask,
        }, cancellationToken: ctx.CancellationToken);
        if (created.Errno != 0) return new FuseError(created.Errno);
        cache.LearnAttr(generation, created.Attr);
        if (!created.HasXattrs)
            cache.LearnNoXattrs(generation, created.Attr.Ino);
        var handle = await OpenHandle(ctx, created.Attr, truncate: false, flags);
        return new FuseCreateResult(Entry(created.Attr), handle);
    }, "tmpfile");

    private static bool Writable(int flags) => (flags & O_ACCMODE) != 0;

    /// <param name="revalidateKernel">
    /// An open of an existing file: the kernel may still hold attributes from before another
    /// mount's change (a stat while that mount was writing), and it never reads past the size it
    /// holds. Once they are dropped, the next read asks for them again and gets the fresh ones.
    /// Done before the open is answered, and only when they changed, so an unchanged file costs nothing.
    /// </param>
    private async ValueTask<FuseOpenResult> OpenHandle(FuseRequestContext ctx, InodeAttr attr, bool truncate, int flags, bool revalidateKernel = false)
    {
        var writable = Writable(flags);
        var (open, fh, keepCache, attributesChanged) = _open.Open(attr, () => client.OpenFile(attr.Ino, (long)attr.Size), writable);
        if (truncate)
        {
            try
            {
                await ChangeWithoutAttrs(attr.Ino, () => open.File.TruncateAsync(0, ctx.CancellationToken));
                await DropCapability(attr.Ino, ctx.CancellationToken);
                // An O_TRUNC by a process without CAP_FSETID drops the set-id bits; with atomic
                // O_TRUNC the kernel never sends that change: the filesystem must. With
                // HANDLE_KILLPRIV_V2 the kernel says who lacks it; without, root is taken to hold it.
                if ((ctx.KillSuidGid || ctx.Uid != 0) && Attributes.HasSetIdBitsToDrop(attr.Mode))
                    await DropSetIdBits(attr.Ino, ctx.CancellationToken);
            }
            catch
            {
                await ReleaseHandle(attr.Ino, writable);
                throw;
            }
            keepCache = false;
        }
        // A drop of another version's pages still under way (the change feed's) would make the
        // kernel discard the attributes its first read fetches: that read would stop at the old size.
        if (!keepCache)
            await _open.InvalidationsDoneAsync(attr.Ino);
        if (revalidateKernel && (!keepCache || attributesChanged))
            _notifier?.InvalidateInode(attr.Ino, offset: -1);
        // O_APPEND writes bypass the kernel's page cache: it would place them at the size it has
        // cached, which may predate another mount's commit (see WriteAsync).
        var direct = (flags & O_APPEND) != 0 ? FuseOpenFlags.DirectIo : FuseOpenFlags.None;
        return new FuseOpenResult(fh, (keepCache ? FuseOpenFlags.KeepCache : FuseOpenFlags.None) | direct);
    }

    public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer) => Call<ReadOnlyMemory<byte>>(async () =>
    {
        if (_open.Find(ino) is not { } open) return new FuseError(LinuxErrno.EBADF);
        if (_locks.IsLost(fh)) return new FuseError(LinuxErrno.EIO);
        var n = await open.File.ReadAsync(offset, buffer, ctx.CancellationToken);
        _pageCacheFiller?.OfferAfterRead(ino, open, offset, n);
        return (ReadOnlyMemory<byte>)buffer[..n];
    }, "read");

    /// <summary>A READ whose blocks are all cached is answered from the cached blocks themselves (one writev, no copy).</summary>
    public bool TryReadGather(FuseRequestContext ctx, ulong ino, ulong fh, long offset, int size, out FuseGatherData data)
    {
        data = default;
        if (_locks.IsLost(fh) || _open.Find(ino) is not { } open || open.File.TryReadLeased(offset, size) is not { } read)
            return false;
        _pageCacheFiller?.OfferAfterRead(ino, open, offset, read.Length);
        data = new FuseGatherData(read.Segments, read);
        return true;
    }

    public ValueTask<FuseResult<int>> WriteAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, ReadOnlyMemory<byte> data, FuseWriteFlags flags, int openFlags) => Call<int>(async () =>
    {
        if (_open.Find(ino) is not { } open) return new FuseError(LinuxErrno.EBADF);
        if (_locks.IsLost(fh)) return new FuseError(LinuxErrno.EIO);   // see HeldLocks.Lost
        // The kernel puts an O_APPEND write at the size it holds, cached for up to the attribute
        // timeout: after another mount's append and close, that is short of the end, and the
        // write would land over the other mount's data. The end is where this mount knows it
        // (refreshed by the open: close-to-open). The kernel serializes writes to an inode.
        // Page writeback (FUSE_WRITE_CACHE, from a shared mapping) has its own offsets.
        if ((openFlags & O_APPEND) != 0 && (flags & FuseWriteFlags.Cache) == 0)
            offset = open.File.Size;
        if ((flags & FuseWriteFlags.KillSuidGid) != 0)
            await DropSetIdBits(ino, ctx.CancellationToken);
        await DropCapability(ino, ctx.CancellationToken);
        // Not ctx's token: once accepted, a write must not be half-applied by an interrupt.
        await open.File.WriteAsync(offset, data, CancellationToken.None);
        return data.Length;
    }, "write");

    /// <summary>
    /// A write by a process without CAP_FSETID drops the file's set-user-id bit (and set-group-id
    /// when group-executable, the kernel's FUSE rule), so nobody can change a privileged program
    /// and keep its privilege. With HANDLE_KILLPRIV_V2 the kernel asks the filesystem to, with
    /// FUSE_WRITE_KILL_SUIDGID on every such write, so the common case, no set-id bit in the
    /// attributes this mount knows, costs nothing.
    /// </summary>
    private async ValueTask DropSetIdBits(ulong ino, CancellationToken ct)
    {
        if (!cache.TryGetAttr(ino, out var known))
        {
            // Not known here now: ask (and remember for the next writes) rather than change the inode.
            var current = await FetchAttrAsync(ino, ct);
            if (current.Errno != 0)
                return;
            known = current.Attr;
        }
        if (!Attributes.HasSetIdBitsToDrop(known!.Mode))
            return;
        var generation = cache.BeginChange();
        var reply = await _ns.SetAttrAsync(new SetAttrRequest { Ino = ino, Valid = (uint)FuseSetAttrValid.KillSuidGid }, cancellationToken: ct);
        if (reply.Errno != 0)
            return;
        cache.LearnAttr(generation, reply.Attr);
        _notifier?.InvalidateInode(ino, offset: -1);   // the kernel's mode would still grant the bits on exec
    }

    private const string CapabilityXattr = "security.capability";

    /// <summary>
    /// A write, truncate or chown takes a file's capabilities away (security.capability), whoever
    /// the caller, as on a local filesystem: with HANDLE_KILLPRIV_V2 the kernel leaves that to
    /// the filesystem and no longer asks for the attribute before every write. Known absent in
    /// the lookup cache (kept coherent by the change feed), as it nearly always is, it costs no call.
    /// </summary>
    private async ValueTask DropCapability(ulong ino, CancellationToken ct)
    {
        if (cache.IsXattrAbsent(ino, CapabilityXattr))
            return;
        var generation = cache.Generation;
        var reply = await _ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = ino, Name = Name(CapabilityXattr) }, cancellationToken: ct);
        if (reply.Errno == LinuxErrno.ENODATA)
        {
            cache.LearnXattrAbsent(generation, ino, CapabilityXattr);
            return;
        }
        if (reply.Errno != 0)
            throw new BigFsException(reply.Errno, $"removing the capabilities of inode {ino} failed: errno {reply.Errno}");
        ForgetAttr(ino);   // ctime
        cache.ForgetXattrs(ino);
        _notifier?.InvalidateInode(ino, offset: -1);
    }

    /// <summary>close(2): commit, so the next open anywhere sees the data (close-to-open), and report failures here.</summary>
    public async ValueTask<int> FlushAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong lockOwner)
    {
        var errno = await Commit(ino, "flush");
        _locks.Flushed(fh, lockOwner);
        await ReleaseLocksOf(ino, lockOwner, flock: false);   // after the commit: the next holder sees the data
        return errno != 0 ? errno : _locks.IsLost(fh) ? LinuxErrno.EIO : 0;   // close tells the process its lock was lost
    }

    public ValueTask<int> FsyncAsync(FuseRequestContext ctx, ulong ino, ulong fh, bool dataOnly) => Call(async () =>
    {
        if (_open.Find(ino) is { } open)
        {
            if (await UncommittedDropsPages(ino, open.File.SyncAsync(CancellationToken.None)))
                ForgetAttr(ino);
        }
        else
            await client.SyncMetadataAsync(CancellationToken.None);
        return _locks.IsLost(fh) ? LinuxErrno.EIO : 0;
    }, "fsync");

    private ValueTask<int> Commit(ulong ino, string op) => Call(async () =>
    {
        if (_open.Find(ino) is { } open)
            await CommitOpenFile(ino, open, CancellationToken.None);
        return 0;
    }, op);

    /// <summary>
    /// Commits what this mount buffered for an open file. A commit that changed the file makes
    /// what the lookup cache holds of it stale (size and times): a lookup answered from there
    /// after the kernel forgot the inode would give it the size from before the commit.
    /// </summary>
    private async Task CommitOpenFile(ulong ino, OpenFileTable.OpenFile open, CancellationToken ct)
    {
        if (await UncommittedDropsPages(ino, open.File.FlushAsync(ct)))
            ForgetAttr(ino);
    }

    /// <summary>
    /// A commit of data written here, which on failure leaves the kernel's pages holding bytes the
    /// cluster does not have: they go (reads come back here, to what is still buffered), and the
    /// next open does not keep them. With FUSE_AUTO_INVAL_DATA off nothing else would drop them.
    /// </summary>
    private async Task<bool> UncommittedDropsPages(ulong ino, Task<bool> commit)
    {
        try
        {
            return await commit;
        }
        catch
        {
            _open.Forget(ino);
            if (Invalidator is { } invalidator)
                await invalidator.InvalidateAsync(ino);
            throw;
        }
    }

    public async ValueTask<int> ReleaseAsync(FuseRequestContext ctx, ulong ino, ulong fh, int flags, FuseReleaseFlags releaseFlags, ulong lockOwner)
    {
        await ReleaseLocksOfHandle(ino, fh);
        await ReleaseHandle(ino, Writable(flags));
        return 0;
    }

    /// <summary>One kernel release per open: the metadata server counts opens (unlink-while-open) the same way.</summary>
    private async Task ReleaseHandle(ulong ino, bool writable)
    {
        if (_open.Release(ino, writable) is { } last)
        {
            try
            {
                await CommitOpenFile(ino, last, CancellationToken.None);
            }
            catch (Exception e) when (e is BigFsException or Grpc.Core.RpcException)
            {
                // FLUSH already reported this to close(2); nobody is left to tell.
                logger.LogError("Inode {Ino}: data not committed at release: {Reason}", ino, e.Message);
            }
            await last.File.DiscardAsync();   // that was the last try: the data is given up, never committed later
        }
        try
        {
            await _ns.ReleaseAsync(new ReleaseRequest { SessionId = session.Id, Ino = ino });
        }
        catch (Grpc.Core.RpcException e)
        {
            logger.LogWarning("Inode {Ino}: release not recorded ({Status}); the session's expiry will", ino, e.StatusCode);
        }
    }

    public ValueTask<int> FallocateAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, long length, int mode) => Call(async () =>
    {
        if (mode == FALLOC_FL_KEEP_SIZE) return 0;           // space is not reserved ahead in BigFS
        if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0) return LinuxErrno.EOPNOTSUPP;
        if (_open.Find(ino) is not { } open) return LinuxErrno.EBADF;
        if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) != 0)
        {
            // Zeros need no space here: both leave a hole (the kernel drops its cached pages of the range).
            await ChangeWithoutAttrs(ino, () => open.File.PunchHoleAsync(offset, length, keepSize: (mode & FALLOC_FL_KEEP_SIZE) != 0, ctx.CancellationToken));
            return 0;
        }
        if (offset + length > open.File.Size)
        {
            // Space is not set aside, but a range the whole cluster could not hold even once is ENOSPC now, not a promise broken at the first write.
            var free = await _ns.StatFsAsync(new StatFsRequest(), cancellationToken: ctx.CancellationToken);
            if (free.Errno == 0 && (ulong)(offset + length - Math.Max(offset, open.File.Size)) > free.FreeBytes)
                return LinuxErrno.ENOSPC;
            await ChangeWithoutAttrs(ino, () => open.File.TruncateAsync(offset + length, ctx.CancellationToken));
        }
        return 0;
    }, "fallocate");

    /// <summary>
    /// A change to an open file's data whose reply carries no attributes (truncate, hole punch, a
    /// copy into it). Its cached attributes go before it runs, and again once it is done: a GETATTR
    /// the server answered just before the change landed may have put the old ones back, and a
    /// file then closed with nothing left to commit would keep them (see <see cref="CommitOpenFile"/>).
    /// </summary>
    private async Task<T> ChangeWithoutAttrs<T>(ulong ino, Func<Task<T>> change)
    {
        ForgetAttr(ino);
        try
        {
            return await change();
        }
        finally
        {
            ForgetAttr(ino);
        }
    }

    private Task ChangeWithoutAttrs(ulong ino, Func<Task> change) =>
        ChangeWithoutAttrs(ino, async () => { await change(); return true; });

    /// <summary>
    /// copy_file_range (coreutils' cp and install use it when both files are on this mount): the
    /// metadata server makes the destination range share the source's chunks, so a copy of any
    /// size is one metadata call and no data crosses the network. What this mount buffered for
    /// either file is committed first; the kernel drops its pages of the destination range after.
    /// </summary>
    public ValueTask<FuseResult<long>> CopyFileRangeAsync(FuseRequestContext ctx, ulong inoIn, ulong fhIn, long offsetIn,
        ulong inoOut, ulong fhOut, long offsetOut, long length, ulong flags) => Call<long>(async () =>
    {
        if (flags != 0) return new FuseError(LinuxErrno.EINVAL);
        if (options.ReadOnly) return new FuseError(LinuxErrno.EROFS);
        if (_open.Find(inoOut) is not { } target) return new FuseError(LinuxErrno.EBADF);
        if (_locks.IsLost(fhOut)) return new FuseError(LinuxErrno.EIO);   // see HeldLocks.Lost
        if (_open.Find(inoIn) is { } source)
            await CommitOpenFile(inoIn, source, ctx.CancellationToken);
        // A copy changes the target as a write does; the kernel passes no KILL_SUIDGID flag with
        // it, so set-id bits go unless the caller is root (assumed to hold CAP_FSETID).
        if (ctx.Uid != 0)
            await DropSetIdBits(inoOut, ctx.CancellationToken);
        await DropCapability(inoOut, ctx.CancellationToken);
        return await ChangeWithoutAttrs(inoOut, () => target.File.CopyFromAsync(inoIn, offsetIn, offsetOut, length, ctx.CancellationToken));
    }, "copy_file_range");

    public ValueTask<FuseResult<long>> LseekAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, int whence) => Call<long>(async () =>
    {
        if (whence is not (SEEK_DATA or SEEK_HOLE)) return new FuseError(LinuxErrno.EINVAL);
        if (_open.Find(ino) is { } open)
            await CommitOpenFile(ino, open, ctx.CancellationToken);   // holes are a property of committed layout
        var layout = await _ns.GetLayoutAsync(new GetLayoutRequest { Ino = ino }, cancellationToken: ctx.CancellationToken);
        if (layout.Errno != 0) return new FuseError(layout.Errno);
        var size = (long)layout.Attr.Size;
        if (offset >= size) return new FuseError(LinuxErrno.ENXIO);
        var extents = layout.Extents.Select(e => ((long)e.FileOffset, (long)(e.FileOffset + e.Length))).Where(e => e.Item2 > offset).ToList();
        if (whence == SEEK_DATA)
        {
            if (extents.Count == 0 || extents[0].Item1 >= size) return new FuseError(LinuxErrno.ENXIO);
            return Math.Max(offset, extents[0].Item1);
        }
        var at = offset;
        foreach (var (start, end) in extents)
        {
            if (start > at) break;
            at = Math.Max(at, end);
        }
        return Math.Min(at, size);
    }, "lseek");
}
