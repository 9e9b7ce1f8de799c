using System.Text;
using BigFS.Client;
using BigFS.Core;
using BigFS.Fuse;
using BigFS.Fuse.Protocol;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// The POSIX filesystem the kernel sees, over the cluster: namespace calls go to the metadata
/// server (lookups answered from <see cref="LookupCache"/> when it knows), file data through
/// the client library's per-inode handles. Permission checks are the
/// kernel's (default_permissions); locks are the kernel's too (local to this mount).
/// </summary>
internal sealed partial class BigFsFileSystem(BigFsClient client, MountSession session, LookupCache cache, BigFsMountOptions options, ILogger logger) : IFuseFileSystem, IFuseGatherRead
{
    private readonly Namespace.NamespaceClient _ns = client.Namespace;
    private readonly OpenFileTable _open = new();
    private readonly RemovedDirectories _removedDirectories = new();
    private PageCacheFiller? _pageCacheFiller;
    private IFuseNotifier? _notifier;

    internal OpenFileTable OpenFiles => _open;

    /// <summary>Pushes the neighbours of small reads into the kernel's page cache (null: off).</summary>
    internal PageCacheFiller? PageCache => _pageCacheFiller;

    /// <summary>Drops the kernel's pages of files other mounts changed (null until the kernel connected).</summary>
    internal PageInvalidator? Invalidator { get; private set; }

    public void Init(FuseConnectionInfo connection)
    {
        _notifier = connection.Notifier;
        Invalidator = new PageInvalidator(connection.Notifier, logger);
        client.OwnDataChange = _open.LearnOwnChange;
        if (options.FillPageCache)
        {
            _pageCacheFiller = new PageCacheFiller(_open.Find, logger);
            _pageCacheFiller.Attach(connection.Notifier);
        }
    }

    /// <summary>A name's bytes on the wire: exactly the bytes the kernel gave (<see cref="FileNameEncoding"/>).</summary>
    private static ByteString Name(string name) => UnsafeByteOperations.UnsafeWrap(FileNameEncoding.GetBytes(name));

    private static string NameOf(ByteString bytes) => FileNameEncoding.GetString(bytes.Span);

    private FuseEntry Entry(InodeAttr attr) =>
        new(attr.Ino, Attr(attr)) { Generation = attr.Generation };

    /// <summary>Attributes as this mount sees them: an open file's size includes writes not yet committed.</summary>
    private FuseAttr Attr(InodeAttr attr)
    {
        var open = attr.Type == InodeType.File ? _open.Find(attr.Ino) : null;
        return Attributes.ToFuse(attr, open is null ? null : Math.Max(open.File.Size, 0));
    }

    /// <summary>Runs a cluster call, turning transport and client failures into errno values.</summary>
    private async ValueTask<FuseResult<T>> Call<T>(Func<ValueTask<FuseResult<T>>> body, string op)
    {
        var start = MetaTrace.Enabled ? MetaTrace.Now() : 0;
        try
        {
            return await body();
        }
        catch (BigFsException e)
        {
            return new FuseError(e.Errno);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            return new FuseError(LinuxErrno.EINTR);
        }
        catch (RpcException e)
        {
            logger.LogWarning("{Op} failed (EIO): metadata call {Status}: {Detail}", op, e.StatusCode, e.Status.Detail);
            return new FuseError(LinuxErrno.EIO);
        }
        catch (OperationCanceledException)
        {
            return new FuseError(LinuxErrno.EINTR);
        }
        finally
        {
            if (MetaTrace.Enabled)
                MetaTrace.Record("mount." + op, start);
        }
    }

    private async ValueTask<int> Call(Func<ValueTask<int>> body, string op)
    {
        var r = await Call<int>(async () => await body() is var errno && errno == 0 ? 0 : new FuseError(errno), op);
        return r.Errno;
    }

    /// <summary>
    /// The errno of a call addressed to an inode, not a name: "no such inode" becomes ESTALE, as
    /// NFS answers for a handle whose file is gone. The kernel reached the inode through a name it
    /// still has cached, which another mount has since removed or replaced (an editor's save:
    /// write a temporary file, rename it over). For ESTALE the VFS walks the path once more with
    /// fresh lookups and finds what the name is now; ENOENT would fail a name that exists. The
    /// inode's attributes go from this mount's cache, so that lookup is not answered from here.
    /// </summary>
    private int InodeErrno(ulong ino, int errno)
    {
        if (errno != LinuxErrno.ENOENT)
            return errno;
        cache.ForgetAttr(ino);
        return LinuxErrno.ESTALE;
    }

    private static FuseResult<FuseEntry> EntryOrError(EntryReply reply, Func<InodeAttr, FuseEntry> entry) =>
        reply.Errno != 0 ? new FuseError(reply.Errno) : entry(reply.Attr);

    // ---- names ----

    public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name)
    {
        switch (cache.TryLookup(parent, name, out var cached))
        {
            case CachedLookup.Found:
                return ValueTask.FromResult<FuseResult<FuseEntry>>(Entry(cached!));
            case CachedLookup.Absent:
                return ValueTask.FromResult<FuseResult<FuseEntry>>(new FuseError(LinuxErrno.ENOENT));
        }
        return Call(async () =>
        {
            var generation = cache.Generation;
            var reply = await _ns.LookupAsync(new LookupRequest { Parent = parent, Name = Name(name) }, cancellationToken: ctx.CancellationToken);
            if (reply.Errno == 0)
                cache.LearnLookup(generation, parent, name, reply.Attr);
            return EntryOrError(reply, Entry);
        }, "lookup");
    }

    public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh)
    {
        if (cache.TryGetAttr(ino, out var cached))
            return ValueTask.FromResult<FuseResult<FuseAttr>>(Attr(cached!));
        return Call<FuseAttr>(async () =>
        {
            var reply = await FetchAttrAsync(ino, ctx.CancellationToken);
            if (reply.Errno == LinuxErrno.ENOENT && _removedDirectories.Find(ino) is { } removed)
                return Attr(removed);   // a process still inside a directory this mount removed
            if (reply.Errno != 0) return new FuseError(InodeErrno(ino, reply.Errno));
            return Attr(reply.Attr);
        }, "getattr");
    }

    /// <summary>The inode's attributes from the metadata server, remembered in the lookup cache when found.</summary>
    private async Task<AttrReply> FetchAttrAsync(ulong ino, CancellationToken ct)
    {
        var generation = cache.Generation;
        var reply = await _ns.GetAttrAsync(new InodeRequest { Ino = ino }, cancellationToken: ct);
        if (reply.Errno == 0)
            cache.LearnAttr(generation, reply.Attr);
        return reply;
    }

    public ValueTask<FuseResult<FuseAttr>> SetAttrAsync(FuseRequestContext ctx, ulong ino, FuseSetAttr attr) => Call<FuseAttr>(async () =>
    {
        ForgetAttr(ino);
        if (!attr.Has(FuseSetAttrValid.Size))
            StartUploadIfOpen(ino);
        if ((attr.Valid & (FuseSetAttrValid.Size | FuseSetAttrValid.Uid | FuseSetAttrValid.Gid)) != 0)
            await DropCapability(ino, ctx.CancellationToken);
        var request = new SetAttrRequest { Ino = ino, Valid = (uint)(attr.Valid & ~(FuseSetAttrValid.Fh | FuseSetAttrValid.LockOwner)) };
        if (attr.Has(FuseSetAttrValid.Mode)) request.Mode = attr.Mode;
        if (attr.Has(FuseSetAttrValid.Uid)) request.Uid = attr.Uid;
        if (attr.Has(FuseSetAttrValid.Gid)) request.Gid = attr.Gid;
        if (attr.Has(FuseSetAttrValid.Atime)) request.AtimeNs = Attributes.ToNanoseconds(attr.Atime);
        if (attr.Has(FuseSetAttrValid.Mtime)) request.MtimeNs = Attributes.ToNanoseconds(attr.Mtime);
        if (attr.Has(FuseSetAttrValid.Ctime)) request.CtimeNs = Attributes.ToNanoseconds(attr.Ctime);
        if (attr.Has(FuseSetAttrValid.Size))
        {
            request.Size = attr.Size;
            if (_open.Find(ino) is { } open)
            {
                // The open handle truncates through the metadata server and keeps its buffers consistent.
                await open.File.TruncateAsync((long)attr.Size, ctx.CancellationToken);
                request.Valid &= ~(uint)FuseSetAttrValid.Size;
                if (request.Valid == 0)
                {
                    var now = await _ns.GetAttrAsync(new InodeRequest { Ino = ino }, cancellationToken: ctx.CancellationToken);
                    return now.Errno != 0 ? new FuseError(InodeErrno(ino, now.Errno)) : Attr(now.Attr);
                }
            }
        }
        var generation = cache.BeginChange();
        var reply = await _ns.SetAttrAsync(request, cancellationToken: ctx.CancellationToken);
        if (reply.Errno != 0) return new FuseError(InodeErrno(ino, reply.Errno));
        cache.LearnAttr(generation, reply.Attr);
        if ((request.Valid & (uint)FuseSetAttrValid.Size) != 0)
            _open.LearnOwnChange(ino, reply.Attr.Version);   // the kernel truncated its pages itself
        return Attr(reply.Attr);
    }, "setattr");

    public ValueTask<FuseResult<string>> ReadLinkAsync(FuseRequestContext ctx, ulong ino) => Call<string>(async () =>
    {
        var reply = await _ns.ReadLinkAsync(new InodeRequest { Ino = ino }, cancellationToken: ctx.CancellationToken);
        return reply.Errno != 0 ? new FuseError(InodeErrno(ino, reply.Errno)) : NameOf(reply.Target);
    }, "readlink");

    public ValueTask<FuseResult<FuseEntry>> SymlinkAsync(FuseRequestContext ctx, ulong parent, string name, string target) =>
        CreateNode(ctx, parent, name, InodeType.Symlink, 0x1ff, 0, target);

    public ValueTask<FuseResult<FuseEntry>> MkNodAsync(FuseRequestContext ctx, ulong parent, string name, uint mode, uint rdev) =>
        CreateNode(ctx, parent, name, Attributes.TypeOf(mode), mode & 0xfff, rdev, null);

    public ValueTask<FuseResult<FuseEntry>> MkDirAsync(FuseRequestContext ctx, ulong parent, string name, uint mode) =>
        CreateNode(ctx, parent, name, InodeType.Directory, mode & 0xfff, 0, null);

    private ValueTask<FuseResult<FuseEntry>> CreateNode(FuseRequestContext ctx, ulong parent, string name, InodeType type, uint mode, uint rdev, string? target) => Call(async () =>
    {
        if (options.ReadOnly) return new FuseError(LinuxErrno.EROFS);
        var request = new CreateNodeRequest
        {
            Parent = parent, Name = Name(name), Type = type, Mode = mode, Uid = ctx.Uid, Gid = ctx.Gid, Rdev = rdev, Exclusive = true,
            Umask = ctx.Umask,
        };
        if (target is not null) request.SymlinkTarget = Name(target);
        var generation = cache.BeginChange();
        cache.ForgetAttr(parent);   // its mtime (and link count, for a directory) changes
        var reply = await _ns.CreateNodeAsync(request, cancellationToken: ctx.CancellationToken);
        if (reply.Errno == 0)
        {
            cache.LearnNewEntry(generation, parent, name, reply.Attr, isNewDirectory: type == InodeType.Directory);
            cache.LearnAttr(generation, reply.ParentAttr);
            if (!reply.HasXattrs)
                cache.LearnNoXattrs(generation, reply.Attr.Ino);   // exclusive: a new inode
        }
        return EntryOrError(reply, Entry);
    }, "create");

    public ValueTask<int> UnlinkAsync(FuseRequestContext ctx, ulong parent, string name) => Call(async () =>
    {
        var generation = BeforeEntryChange(parent, name);
        var reply = await _ns.UnlinkAsync(new RemoveRequest { Parent = parent, Name = Name(name) }, cancellationToken: ctx.CancellationToken);
        AfterRemoval(generation, parent, name, reply);
        return reply.Errno;
    }, "unlink");

    public ValueTask<int> RmDirAsync(FuseRequestContext ctx, ulong parent, string name) => Call(async () =>
    {
        var generation = BeforeEntryChange(parent, name);
        var reply = await _ns.RemoveDirectoryAsync(new RemoveRequest { Parent = parent, Name = Name(name) }, cancellationToken: ctx.CancellationToken);
        AfterRemoval(generation, parent, name, reply);
        // From the reply, not the lookup cache: a change racing the mkdir may have kept it out of the cache.
        if (reply.Errno == 0 && reply.Attr is { } removed)
            _removedDirectories.Remember(removed);
        return reply.Errno;
    }, "rmdir");

    public ValueTask<int> RenameAsync(FuseRequestContext ctx, ulong parent, string name, ulong newParent, string newName, uint flags) => Call(async () =>
    {
        if ((flags & ~3u) != 0) return LinuxErrno.EINVAL;   // RENAME_WHITEOUT is for overlayfs only
        BeforeEntryChange(parent, name);
        var generation = BeforeEntryChange(newParent, newName);
        var reply = await _ns.RenameAsync(new RenameRequest { Parent = parent, Name = Name(name), NewParent = newParent, NewName = Name(newName), Flags = flags },
            cancellationToken: ctx.CancellationToken);
        if (reply.Errno == 0)
        {
            if (reply.SourceRemoved)
                cache.LearnRemoved(parent, name);
            if (reply.Attr is { } moved)
                cache.LearnNewEntry(generation, newParent, newName, moved);
            cache.LearnAttr(generation, reply.ParentAttr);
            cache.LearnAttr(generation, reply.NewParentAttr);
        }
        return reply.Errno;
    }, "rename");

    /// <summary>
    /// The change feed says other mounts changed these inodes and names: the kernel drops its
    /// attributes of those inodes (a stat, a permission check or a read past the old end asks
    /// again) and its entries for those names, present or negative (the next lookup asks again),
    /// now instead of at the attribute and entry timeouts. What it does not hold answers ENOENT,
    /// which costs one system call. A file open here also adopts another mount's commit at once,
    /// its pages going with it (the kernel keeps them across attribute changes: see BigFsMount).
    /// </summary>
    internal void OnOtherSessionsChange(ChangeNotice notice)
    {
        if (_notifier is not { } notifier)
            return;
        // A file open here is revalidated instead, which invalidates what the kernel holds only
        // if it changed since the kernel was last told: an invalidation that arrives after a
        // lock or open already refreshed it would make the kernel discard the attributes the
        // next read fetches (see OpenFile.Told).
        foreach (var ino in notice.Inodes)
        {
            if (!_open.BeginInvalidationUnlessOpen(ino))
                continue;
            try
            {
                notifier.InvalidateInode(ino, offset: -1);
            }
            finally
            {
                _open.InvalidationDone(ino);
            }
        }
        foreach (var changed in notice.Names)
            notifier.InvalidateEntry(changed.Parent, NameOf(changed.Name));
        foreach (var ino in notice.Reset ? _open.Snapshot().Select(f => f.Ino) : notice.Inodes.Where(i => _open.Find(i) is not null))
            _ = RevalidateInBackgroundAsync(ino);
    }

    private async Task RevalidateInBackgroundAsync(ulong ino)
    {
        try
        {
            await RevalidateOpenFileAsync(ino);
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or BigFsException)
        {
            // Its next open revalidates it anyway (close-to-open).
            logger.LogDebug("Revalidating open inode {Ino} after another mount's change failed: {Error}", ino, e.Message);
        }
    }

    /// <summary>
    /// A writer setting an open file's attributes is usually done writing it: its buffered data
    /// starts uploading now rather than at close (see <see cref="BigFsFile.StartUpload"/>).
    /// </summary>
    private void StartUploadIfOpen(ulong ino) => _open.Find(ino)?.File.StartUpload();

    /// <summary>An unlink or rmdir answered: only a success makes the name absent (a failed one may leave it, e.g. ENOTEMPTY).</summary>
    private void AfterRemoval(long generation, ulong parent, string name, StatusReply reply)
    {
        if (reply.Errno == 0)
            cache.LearnRemoved(parent, name);
        cache.LearnAttr(generation, reply.ParentAttr);
    }

    /// <summary>Before this mount removes or replaces a name: forget it, and the directory's attributes.</summary>
    private long BeforeEntryChange(ulong parent, string name)
    {
        var generation = cache.BeginChange();
        cache.ForgetEntry(parent, name);
        cache.ForgetAttr(parent);
        return generation;
    }

    public ValueTask<FuseResult<FuseEntry>> LinkAsync(FuseRequestContext ctx, ulong ino, ulong newParent, string newName) => Call(async () =>
    {
        var generation = cache.BeginChange();
        cache.ForgetAttr(newParent);
        cache.ForgetAttr(ino);
        var reply = await _ns.LinkAsync(new LinkRequest { Ino = ino, NewParent = newParent, NewName = Name(newName) }, cancellationToken: ctx.CancellationToken);
        if (reply.Errno == 0)
        {
            cache.LearnNewEntry(generation, newParent, newName, reply.Attr);
            cache.LearnAttr(generation, reply.ParentAttr);
        }
        return EntryOrError(reply, Entry);
    }, "link");

    public ValueTask<FuseResult<FuseStatFs>> StatFsAsync(FuseRequestContext ctx, ulong ino) => Call<FuseStatFs>(async () =>
    {
        var s = await _ns.StatFsAsync(new StatFsRequest(), cancellationToken: ctx.CancellationToken);
        if (s.Errno != 0) return new FuseError(s.Errno);
        var bsize = s.BlockSize == 0 ? 4096u : s.BlockSize;
        return new FuseStatFs(s.CapacityBytes / bsize, s.FreeBytes / bsize, s.FreeBytes / bsize, s.Inodes + s.FreeInodes, s.FreeInodes, bsize, s.MaxNameLength == 0 ? 255 : s.MaxNameLength);
    }, "statfs");

    public ValueTask<int> AccessAsync(FuseRequestContext ctx, ulong ino, int mask) => ValueTask.FromResult(0);   // the kernel checks (default_permissions)

    public void Forget(ulong ino)
    {
        _open.Forget(ino);
        _removedDirectories.Forget(ino);
    }

    // ---- extended attributes ----

    /// <summary>Before this mount changes an inode in a way whose reply carries no attributes.</summary>
    private void ForgetAttr(ulong ino)
    {
        cache.BeginChange();
        cache.ForgetAttr(ino);
    }

    public ValueTask<int> SetXattrAsync(FuseRequestContext ctx, ulong ino, string name, ReadOnlyMemory<byte> value, int flags) => Call(async () =>
    {
        ForgetAttr(ino);   // ctime changes
        StartUploadIfOpen(ino);
        cache.ForgetXattrs(ino);
        try
        {
            var errno = InodeErrno(ino, (await _ns.SetXattrAsync(new SetXattrRequest { Ino = ino, Name = Name(name), Value = ByteString.CopyFrom(value.Span), Flags = (uint)flags },
                cancellationToken: ctx.CancellationToken)).Errno);
            // An access ACL sets the mode's permission bits, and the kernel, which checks them,
            // only drops its cached ctime after a setxattr. (Attributes only: no inode lock needed.)
            if (errno == 0 && name == "system.posix_acl_access")
                _notifier?.InvalidateInode(ino, offset: -1);
            return errno;
        }
        finally
        {
            cache.ForgetXattrs(ino);   // a getxattr the server answered before this change must not stay cached
        }
    }, "setxattr");

    /// <summary>
    /// The kernel asks for security.capability before a write whenever the file's attributes were
    /// refreshed since its last check (SB_NOSEC with HANDLE_KILLPRIV_V2), and the ACL names on
    /// permission checks: "no such attribute" is answered from the cache (kept coherent by the
    /// change feed) instead of a round trip each time.
    /// </summary>
    public ValueTask<FuseResult<ReadOnlyMemory<byte>>> GetXattrAsync(FuseRequestContext ctx, ulong ino, string name) => Call<ReadOnlyMemory<byte>>(async () =>
    {
        var wireName = Name(name);
        if (XattrName.Validate(wireName.Span) is var invalid && invalid != 0)
            return new FuseError(invalid);
        if (cache.IsXattrAbsent(ino, name))
            return new FuseError(LinuxErrno.ENODATA);
        var generation = cache.Generation;
        var reply = await _ns.GetXattrAsync(new GetXattrRequest { Ino = ino, Name = wireName }, cancellationToken: ctx.CancellationToken);
        if (reply.Errno == LinuxErrno.ENODATA)
            cache.LearnXattrAbsent(generation, ino, name);
        return reply.Errno != 0 ? new FuseError(InodeErrno(ino, reply.Errno)) : reply.Value.Memory;
    }, "getxattr");

    public ValueTask<FuseResult<IReadOnlyList<string>>> ListXattrAsync(FuseRequestContext ctx, ulong ino) => Call<IReadOnlyList<string>>(async () =>
    {
        var reply = await _ns.ListXattrAsync(new InodeRequest { Ino = ino }, cancellationToken: ctx.CancellationToken);
        return reply.Errno != 0 ? new FuseError(InodeErrno(ino, reply.Errno)) : reply.Names.Select(NameOf).ToList();
    }, "listxattr");

    public ValueTask<int> RemoveXattrAsync(FuseRequestContext ctx, ulong ino, string name) => Call(async () =>
    {
        ForgetAttr(ino);
        cache.ForgetXattrs(ino);
        try
        {
            return InodeErrno(ino, (await _ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = ino, Name = Name(name) }, cancellationToken: ctx.CancellationToken)).Errno);
        }
        finally
        {
            cache.ForgetXattrs(ino);
        }
    }, "removexattr");
}
