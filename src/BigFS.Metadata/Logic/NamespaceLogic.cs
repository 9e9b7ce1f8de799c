using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using Google.Protobuf;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Logic;

/// <summary>
/// POSIX namespace semantics over <see cref="MetadataState"/>. Every operation validates fully
/// before changing anything, so a failed call leaves no partial state; a successful mutation is
/// durable before its task completes. Errors are errno values in the reply, never exceptions.
/// </summary>
public sealed class NamespaceLogic(MetadataState state)
{
    public const int MaxXattrName = 255;
    public const int MaxXattrValue = 64 * 1024;
    public const int MaxSymlinkTarget = 4095;
    public const int MaxLinks = 65000;
    public const long MaxFileSize = 1L << 60;

    private const uint FattrMode = 1, FattrUid = 2, FattrGid = 4, FattrSize = 8, FattrAtime = 16, FattrMtime = 32,
        FattrAtimeNow = 128, FattrMtimeNow = 256, FattrCtime = 1024, FattrKillSuidGid = 2048;
    private const uint RenameNoReplace = 1, RenameExchange = 2;
    private const uint XattrCreate = 1, XattrReplace = 2;

    private readonly MetadataState _s = state;
    private readonly ReplyCache _replies = new(state);

    /// <summary>
    /// A namespace change, acknowledged once written (it survives a crash of this process) and
    /// durable with the next flush, at most a few ms later; fsync/fsyncdir (<see cref="SyncAsync"/>)
    /// wait for it, as on a local filesystem.
    /// </summary>
    private Task<T> MutateAsync<T>(Func<T> op) => _s.MutateAsync(op, Durability.Written);

    /// <summary>
    /// A change that runs once however often its request is sent (<see cref="ReplyCache"/>), when
    /// the request carries a replay slot; <paramref name="redoInMemory"/> as there.
    /// </summary>
    private Task<T> MutateOnceAsync<T>(IReplayableRequest r, Func<T> op, Durability durability = Durability.Written,
        Action<T>? redoInMemory = null) where T : class, IMessage<T>, IErrnoReply, new()
    {
        var session = ChangeOrigin.Session;
        return _s.MutateAsync(() => _replies.Run(session, r.Replay, op, redoInMemory), durability);
    }

    /// <summary>Starts telling a session about other sessions' changes (dispose to stop).</summary>
    public ChangeWatcher WatchChanges(string sessionId) => _s.Feed.Watch(sessionId);

    /// <summary>Makes every namespace change acknowledged so far durable (fsync, fsyncdir, sync).</summary>
    public async Task<StatusReply> SyncAsync()
    {
        await _s.SyncAsync().ConfigureAwait(false);
        return new StatusReply();
    }

    private T Read<T>(Func<T> op)
    {
        lock (_s.Sync)
            return op();
    }

    // ---- helpers (call under the lock) ----

    private int Dir(ulong ino, out InodeRecord dir, out DirectoryIndex index)
    {
        index = null!;
        if (!_s.Inodes.TryGetValue((long)ino, out dir!))
            return E.ENOENT;
        if (!_s.Directories.TryGetValue(dir.Id, out index!))
            return E.ENOTDIR;
        return 0;
    }

    private static int ValidName(ByteString name) => EntryName.Validate(name.Span);

    private void Touch(InodeRecord dir, long now)
    {
        dir.MtimeNs = now;
        dir.CtimeNs = now;
        _s.MarkInode(dir.Id);
    }

    /// <summary>nlink--; the inode goes when no name and no open remain (unlink-while-open keeps it).</summary>
    private void DropLink(long ino, long now)
    {
        var inode = _s.Inodes[ino];
        inode.Nlink = Math.Max(0, inode.Nlink - 1);
        inode.CtimeNs = now;
        _s.MarkInode(ino);
        if (inode.Nlink == 0 && !_s.IsOpen(ino))
            _s.DestroyInode(ino);
    }

    private bool IsAncestorOrSelf(long ancestor, long dir)
    {
        for (var d = dir; ; d = _s.Inodes[d].Parent)
        {
            if (d == ancestor) return true;
            if (d == MetadataState.RootIno) return false;
        }
    }

    private void Truncate(InodeRecord inode, long size, long now)
    {
        var map = _s.LayoutOf(inode.Id);
        var oldEnd = map.DataEnd;
        if (size < oldEnd)
        {
            var before = map.ChunkIds();
            map.Truncate(size);
            _s.MarkLayout(inode.Id, size, oldEnd);
            _s.UpdateChunkRefs(inode.Id, before, map.ChunkIds());
        }
        inode.Size = size;
        inode.Version++;
        inode.MtimeNs = now;
        inode.CtimeNs = now;
        _s.MarkInode(inode.Id);
    }

    private static void KillSuidGid(InodeRecord inode)
    {
        inode.Mode &= ~Attrs.SetUid;
        if ((inode.Mode & Attrs.GroupExec) != 0)
            inode.Mode &= ~Attrs.SetGid;
    }

    private static int FindXattr(InodeRecord inode, ByteString name) => FindXattr(inode, name.Span);

    private static int FindXattr(InodeRecord inode, ReadOnlySpan<byte> name)
    {
        for (var i = 0; i < inode.Xattrs.Count; i++)
            if (name.SequenceEqual(inode.Xattrs[i].Name))
                return i;
        return -1;
    }

    private static int ValidXattrName(ByteString name) => XattrName.Validate(name.Span);

    // ---- operations ----

    public EntryReply Lookup(LookupRequest r) => Read(() =>
    {
        var err = Dir(r.Parent, out _, out var index);
        if (err == 0) err = ValidName(r.Name);
        if (err != 0) return new EntryReply { Errno = err };
        var d = index.Find(r.Name.Span);
        return d is null ? new EntryReply { Errno = E.ENOENT } : new EntryReply { Attr = Attrs.Of(_s.Inodes[d.Child]) };
    });

    public AttrReply GetAttr(InodeRequest r) => Read(() =>
        _s.Inodes.TryGetValue((long)r.Ino, out var i) ? new AttrReply { Attr = Attrs.Of(i) } : new AttrReply { Errno = E.ENOENT });

    public Task<AttrReply> SetAttrAsync(SetAttrRequest r) => MutateAsync(() =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode))
            return new AttrReply { Errno = E.ENOENT };
        var v = r.Valid;
        var isDir = inode.Type == (int)InodeType.Directory;
        if ((v & FattrSize) != 0)
        {
            if (isDir) return new AttrReply { Errno = E.EISDIR };
            if (inode.Type != (int)InodeType.File) return new AttrReply { Errno = E.EINVAL };
            if (r.Size > MaxFileSize) return new AttrReply { Errno = E.EFBIG };
        }
        var now = _s.NowNs;
        if ((v & FattrSize) != 0)
            Truncate(inode, (long)r.Size, now);
        if ((v & FattrMode) != 0)
        {
            inode.Mode = (int)r.Mode & Attrs.PermissionMask;
            KeepAccessAclInStep(inode);
        }
        if ((v & FattrUid) != 0) inode.Uid = r.Uid;
        if ((v & FattrGid) != 0) inode.Gid = r.Gid;
        // chown (and KILL_SUIDGID on write/truncate) of a non-directory drops set-id bits,
        // unless the same call sets the mode explicitly.
        if ((v & (FattrUid | FattrGid | FattrKillSuidGid)) != 0 && (v & FattrMode) == 0 && !isDir)
            KillSuidGid(inode);
        if ((v & FattrAtimeNow) != 0) inode.AtimeNs = now;
        else if ((v & FattrAtime) != 0) inode.AtimeNs = r.AtimeNs;
        if ((v & FattrMtimeNow) != 0) inode.MtimeNs = now;
        else if ((v & FattrMtime) != 0) inode.MtimeNs = r.MtimeNs;
        inode.CtimeNs = (v & FattrCtime) != 0 ? r.CtimeNs : now;
        _s.MarkInode(inode.Id);
        return new AttrReply { Attr = Attrs.Of(inode) };
    });

    public Task<EntryReply> CreateNodeAsync(CreateNodeRequest r) => MutateOnceAsync(r, () =>
    {
        var err = Dir(r.Parent, out var parent, out var index);
        if (err == 0) err = r.Unnamed ? UnnamedRequestError(r) : ValidName(r.Name);
        if (err == 0 && r.Type is < InodeType.File or > InodeType.BlockDevice) err = E.EINVAL;
        if (err == 0 && r.Goal > MetadataServerOptions.MaxGoal) err = E.EINVAL;
        if (err == 0 && r.OpenSessionId.Length > 0 && (r.Type != InodeType.File || r.OpenSessionId.Length > MaxSessionId)) err = E.EINVAL;
        if (err != 0) return new EntryReply { Errno = err };
        var existing = r.Unnamed ? null : index.Find(r.Name.Span);
        if (existing is not null)
        {
            var other = _s.Inodes[existing.Child];
            if (r.Type == InodeType.File && !r.Exclusive)
            {
                if (other.Type == (int)InodeType.Directory)
                    return new EntryReply { Errno = E.EISDIR };
                if (r.OpenSessionId.Length > 0)
                    RegisterOpen(other, r.OpenSessionId);
                return new EntryReply { Attr = Attrs.Of(other), Created = false, ParentAttr = Attrs.Of(parent) };
            }
            return new EntryReply { Errno = E.EEXIST };
        }
        if (r.Type == InodeType.Symlink)
        {
            if (r.SymlinkTarget.Length == 0) return new EntryReply { Errno = E.ENOENT };
            if (r.SymlinkTarget.Length > MaxSymlinkTarget) return new EntryReply { Errno = E.ENAMETOOLONG };
        }
        var isDir = r.Type == InodeType.Directory;
        if (isDir && parent.Nlink >= MaxLinks) return new EntryReply { Errno = E.EMLINK };

        var now = _s.NowNs;
        var mode = r.Type == InodeType.Symlink ? 0x1FF : (int)r.Mode & Attrs.PermissionMask;
        var inherited = r.Type == InodeType.Symlink ? [] : InheritAcls(parent, isDir, ref mode, (int)r.Umask);
        long gid = r.Gid;
        if ((parent.Mode & Attrs.SetGid) != 0)
        {
            // BSD group semantics under a setgid directory; subdirectories inherit the bit.
            gid = parent.Gid;
            if (isDir) mode |= Attrs.SetGid;
        }
        var inode = new InodeRecord
        {
            Id = _s.AllocateInode(), Type = (int)r.Type, Mode = mode, Uid = r.Uid, Gid = gid,
            Nlink = isDir ? 2 : r.Unnamed ? 0 : 1, AtimeNs = now, MtimeNs = now, CtimeNs = now,
            Goal = r.Goal != 0 ? (int)r.Goal : parent.Goal > 0 ? parent.Goal : _s.Options.DefaultGoal,
            Rdev = r.Type is InodeType.CharDevice or InodeType.BlockDevice ? (long)r.Rdev : 0,
            Parent = isDir ? parent.Id : 0, Unnamed = r.Unnamed,
        };
        if (r.Type == InodeType.Symlink)
        {
            inode.SymlinkTarget = r.SymlinkTarget.ToByteArray();
            inode.Size = inode.SymlinkTarget.Length;
        }
        inode.Xattrs.AddRange(inherited);
        _s.Inodes[inode.Id] = inode;
        if (isDir)
        {
            _s.Directories[inode.Id] = new DirectoryIndex();
            parent.Nlink++;
        }
        _s.MarkInode(inode.Id);
        if (!r.Unnamed)
        {
            _s.AddDirent(parent.Id, r.Name.Span, inode.Id);
            Touch(parent, now);
        }
        if (r.OpenSessionId.Length > 0)
            RegisterOpen(inode, r.OpenSessionId);
        return new EntryReply { Attr = Attrs.Of(inode), Created = true, ParentAttr = Attrs.Of(parent), HasXattrs = inherited.Count > 0 };
    }, redoInMemory: reply => RedoOpen(reply.Errno, reply.Attr, r.OpenSessionId));

    /// <summary>An unnamed create (O_TMPFILE) is a regular file, has no name, and is held open by its creator.</summary>
    private static int UnnamedRequestError(CreateNodeRequest r) =>
        r.Type != InodeType.File || r.Name.Length != 0 || r.OpenSessionId.Length == 0 ? E.EINVAL : 0;

    /// <summary>
    /// POSIX.1e creation under <paramref name="parent"/>: with a default ACL there, the new node's
    /// access ACL comes from it (limited by the create mode, and stored only when the mode cannot
    /// express it) and a new directory inherits it as its own default; the umask is not applied.
    /// Without one, the umask is. Returns the ACL xattrs the node starts with.
    /// </summary>
    private static List<XattrEntry> InheritAcls(InodeRecord parent, bool isDir, ref int mode, int umask)
    {
        var at = FindXattr(parent, PosixAcl.DefaultXattrName);
        if (at < 0 || !PosixAcl.TryParse(parent.Xattrs[at].Value, out var defaults))
        {
            mode &= ~(umask & 0x1FF);
            return [];
        }
        var access = defaults!.ForNewNode(mode);
        mode = (mode & ~0x1FF) | access.PermissionBits;
        var acls = new List<XattrEntry>(2);
        if (!access.IsEquivalentToMode)
            acls.Add(new XattrEntry { Name = PosixAcl.AccessXattrName.ToArray(), Value = access.ToBytes() });
        if (isDir)
            acls.Add(new XattrEntry { Name = PosixAcl.DefaultXattrName.ToArray(), Value = defaults.ToBytes() });
        return acls;
    }

    public ReadLinkReply ReadLink(InodeRequest r) => Read(() =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var i)) return new ReadLinkReply { Errno = E.ENOENT };
        if (i.Type != (int)InodeType.Symlink) return new ReadLinkReply { Errno = E.EINVAL };
        return new ReadLinkReply { Target = ByteString.CopyFrom(i.SymlinkTarget ?? []) };
    });

    public Task<EntryReply> LinkAsync(LinkRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new EntryReply { Errno = E.ENOENT };
        if (inode.Type == (int)InodeType.Directory) return new EntryReply { Errno = E.EPERM };
        var err = Dir(r.NewParent, out var parent, out var index);
        if (err == 0) err = ValidName(r.NewName);
        if (err != 0) return new EntryReply { Errno = err };
        if (index.Find(r.NewName.Span) is not null) return new EntryReply { Errno = E.EEXIST };
        // An unlinked file stays unlinked (linkat answers ENOENT, as the kernel does for its own
        // view); only a file created unnamed may get its first name, once.
        if (inode.Nlink == 0 && !(inode.Unnamed && _s.IsOpen(inode.Id))) return new EntryReply { Errno = E.ENOENT };
        if (inode.Nlink >= MaxLinks) return new EntryReply { Errno = E.EMLINK };
        var now = _s.NowNs;
        _s.AddDirent(parent.Id, r.NewName.Span, inode.Id);
        inode.Unnamed = false;
        inode.Nlink++;
        inode.CtimeNs = now;
        _s.MarkInode(inode.Id);
        Touch(parent, now);
        return new EntryReply { Attr = Attrs.Of(inode), ParentAttr = Attrs.Of(parent) };
    });

    public Task<StatusReply> UnlinkAsync(RemoveRequest r) => MutateOnceAsync(r, () =>
    {
        var err = Dir(r.Parent, out var parent, out var index);
        if (err == 0) err = ValidName(r.Name);
        if (err != 0) return new StatusReply { Errno = err };
        var d = index.Find(r.Name.Span);
        if (d is null) return new StatusReply { Errno = E.ENOENT };
        if (_s.Directories.ContainsKey(d.Child)) return new StatusReply { Errno = E.EISDIR };
        var now = _s.NowNs;
        _s.RemoveDirent(d);
        DropLink(d.Child, now);
        Touch(parent, now);
        return new StatusReply { ParentAttr = Attrs.Of(parent) };
    });

    public Task<StatusReply> RemoveDirectoryAsync(RemoveRequest r) => MutateOnceAsync(r, () =>
    {
        var err = Dir(r.Parent, out var parent, out var index);
        if (err == 0) err = ValidName(r.Name);
        if (err != 0) return new StatusReply { Errno = err };
        var d = index.Find(r.Name.Span);
        if (d is null) return new StatusReply { Errno = E.ENOENT };
        if (!_s.Directories.TryGetValue(d.Child, out var victim)) return new StatusReply { Errno = E.ENOTDIR };
        if (victim.Count > 0) return new StatusReply { Errno = E.ENOTEMPTY };
        var now = _s.NowNs;
        var removed = Attrs.Of(_s.Inodes[d.Child]);   // what a process still inside it sees (the mount keeps it)
        removed.Nlink = 0;
        _s.RemoveDirent(d);
        parent.Nlink--;
        _s.DestroyInode(d.Child);
        Touch(parent, now);
        return new StatusReply { Attr = removed, ParentAttr = Attrs.Of(parent) };
    });

    public Task<StatusReply> RenameAsync(RenameRequest r) => MutateOnceAsync(r, () =>
    {
        var reply = new StatusReply { Errno = Rename(r) };
        if (reply.Errno != 0)
            return reply;
        // The moved inode as it is now (its ctime changed), so a mount can keep it cached under the new name.
        if ((r.Flags & RenameExchange) == 0
            && _s.Directories.TryGetValue((long)r.NewParent, out var dir) && dir.Find(r.NewName.Span) is { } moved)
            reply.Attr = Attrs.Of(_s.Inodes[moved.Child]);
        if (_s.Inodes.TryGetValue((long)r.Parent, out var oldParent))
            reply.ParentAttr = Attrs.Of(oldParent);
        reply.SourceRemoved = _s.Directories.TryGetValue((long)r.Parent, out var oldDir) && oldDir.Find(r.Name.Span) is null;
        if (_s.Inodes.TryGetValue((long)r.NewParent, out var newParent))
            reply.NewParentAttr = Attrs.Of(newParent);
        return reply;
    });

    private int Rename(RenameRequest r)
    {
        if ((r.Flags & ~(RenameNoReplace | RenameExchange)) != 0 || r.Flags == (RenameNoReplace | RenameExchange))
            return E.EINVAL;
        var err = Dir(r.Parent, out var oldParent, out var oldIndex);
        if (err == 0) err = Dir(r.NewParent, out _, out _);
        if (err == 0) err = ValidName(r.Name);
        if (err == 0) err = ValidName(r.NewName);
        if (err != 0) return err;
        var newParent = _s.Inodes[(long)r.NewParent];
        var newIndex = _s.Directories[newParent.Id];
        var src = oldIndex.Find(r.Name.Span);
        if (src is null) return E.ENOENT;
        var srcInode = _s.Inodes[src.Child];
        var srcIsDir = srcInode.Type == (int)InodeType.Directory;
        var dst = newIndex.Find(r.NewName.Span);
        var now = _s.NowNs;

        if ((r.Flags & RenameExchange) != 0)
        {
            if (dst is null) return E.ENOENT;
            if (dst.Child == src.Child) return 0;
            var dstInode = _s.Inodes[dst.Child];
            var dstIsDir = dstInode.Type == (int)InodeType.Directory;
            if (srcIsDir && IsAncestorOrSelf(srcInode.Id, newParent.Id)) return E.EINVAL;
            if (dstIsDir && IsAncestorOrSelf(dstInode.Id, oldParent.Id)) return E.EINVAL;
            (src.Child, dst.Child) = (dst.Child, src.Child);
            _s.MarkDirent(src);
            _s.MarkDirent(dst);
            if (oldParent.Id != newParent.Id)
            {
                if (srcIsDir) { srcInode.Parent = newParent.Id; newParent.Nlink++; oldParent.Nlink--; }
                if (dstIsDir) { dstInode.Parent = oldParent.Id; oldParent.Nlink++; newParent.Nlink--; }
            }
            srcInode.CtimeNs = now;
            dstInode.CtimeNs = now;
            _s.MarkInode(srcInode.Id);
            _s.MarkInode(dstInode.Id);
            Touch(oldParent, now);
            Touch(newParent, now);
            return 0;
        }

        InodeRecord? victim = null;
        if (dst is not null)
        {
            if ((r.Flags & RenameNoReplace) != 0) return E.EEXIST;
            if (dst.Child == src.Child) return 0;   // both names are links to one inode: nothing to do
            victim = _s.Inodes[dst.Child];
            var victimIsDir = victim.Type == (int)InodeType.Directory;
            if (srcIsDir && !victimIsDir) return E.ENOTDIR;
            if (!srcIsDir && victimIsDir) return E.EISDIR;
            if (victimIsDir && _s.Directories[victim.Id].Count > 0) return E.ENOTEMPTY;
        }
        if (srcIsDir && IsAncestorOrSelf(srcInode.Id, newParent.Id)) return E.EINVAL;
        if (srcIsDir && oldParent.Id != newParent.Id && victim is null && newParent.Nlink >= MaxLinks) return E.EMLINK;

        if (dst is not null)
        {
            _s.RemoveDirent(dst);
            if (victim!.Type == (int)InodeType.Directory)
            {
                newParent.Nlink--;
                _s.DestroyInode(victim.Id);
            }
            else
            {
                DropLink(victim.Id, now);
            }
        }
        _s.RemoveDirent(src);
        _s.AddDirent(newParent.Id, r.NewName.Span, srcInode.Id);
        if (srcIsDir && oldParent.Id != newParent.Id)
        {
            oldParent.Nlink--;
            newParent.Nlink++;
            srcInode.Parent = newParent.Id;
        }
        srcInode.CtimeNs = now;
        _s.MarkInode(srcInode.Id);
        Touch(oldParent, now);
        Touch(newParent, now);
        return 0;
    }

    public ReadDirectoryReply ReadDirectory(ReadDirectoryRequest r) => Read(() =>
    {
        var err = Dir(r.Ino, out _, out var index);
        if (err != 0) return new ReadDirectoryReply { Errno = err };
        var max = r.MaxEntries == 0 ? 1024 : (int)Math.Min(r.MaxEntries, 4096);
        var reply = new ReadDirectoryReply { End = true };
        foreach (var d in index.After((long)Math.Min(r.Cookie, long.MaxValue)))
        {
            if (reply.Entries.Count == max)
            {
                reply.End = false;
                break;
            }
            reply.Entries.Add(new DirectoryEntry
            {
                Name = ByteString.CopyFrom(d.Name), Attr = Attrs.Of(_s.Inodes[d.Child]), Cookie = (ulong)d.Cookie,
            });
        }
        return reply;
    });

    public StatFsReply StatFs() => Read(() =>
    {
        long capacity = 0, used = 0;
        foreach (var n in _s.Nodes.Values)
        {
            if (_s.LivenessOf(n) != NodeLiveness.Active) continue;
            capacity += n.CapacityBytes;
            used += Math.Min(n.UsedBytes, n.CapacityBytes);
        }
        const ulong inodeSpace = 1UL << 40;
        return new StatFsReply
        {
            CapacityBytes = (ulong)capacity, UsedBytes = (ulong)used, FreeBytes = (ulong)(capacity - used),
            Inodes = (ulong)_s.Inodes.Count, FreeInodes = inodeSpace - (ulong)_s.Inodes.Count,
            BlockSize = 4096, MaxNameLength = EntryName.MaxLength,
        };
    });

    public XattrReply GetXattr(GetXattrRequest r) => Read(() =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new XattrReply { Errno = E.ENOENT };
        var err = ValidXattrName(r.Name);
        if (err != 0) return new XattrReply { Errno = err };
        var at = FindXattr(inode, r.Name);
        return at < 0 ? new XattrReply { Errno = E.ENODATA } : new XattrReply { Value = ByteString.CopyFrom(inode.Xattrs[at].Value) };
    });

    public Task<StatusReply> SetXattrAsync(SetXattrRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new StatusReply { Errno = E.ENOENT };
        if ((r.Flags & ~(XattrCreate | XattrReplace)) != 0 || r.Flags == (XattrCreate | XattrReplace))
            return new StatusReply { Errno = E.EINVAL };
        var err = ValidXattrName(r.Name);
        if (err != 0) return new StatusReply { Errno = err };
        if (r.Value.Length > MaxXattrValue) return new StatusReply { Errno = E.E2BIG };
        if (PosixAcl.KindOf(r.Name.Span) is { } acl)
            return new StatusReply { Errno = SetAcl(inode, acl, r.Name, r.Value.Span) };
        var at = FindXattr(inode, r.Name);
        if (at >= 0 && (r.Flags & XattrCreate) != 0) return new StatusReply { Errno = E.EEXIST };
        if (at < 0 && (r.Flags & XattrReplace) != 0) return new StatusReply { Errno = E.ENODATA };
        var entry = new XattrEntry { Name = r.Name.ToByteArray(), Value = r.Value.ToByteArray() };
        if (at >= 0) inode.Xattrs[at] = entry;
        else inode.Xattrs.Add(entry);
        inode.CtimeNs = _s.NowNs;
        _s.MarkInode(inode.Id);
        return new StatusReply();
    });

    /// <summary>
    /// Sets an ACL as the kernel's POSIX ACL handler does: validated; an access ACL sets the
    /// mode's permission bits and is stored only when the mode cannot express it; a default
    /// ACL only on a directory. Returns the errno.
    /// </summary>
    private int SetAcl(InodeRecord inode, string kind, ByteString name, ReadOnlySpan<byte> value)
    {
        if (inode.Type == (int)InodeType.Symlink) return E.EOPNOTSUPP;
        if (kind == PosixAcl.DefaultXattr && inode.Type != (int)InodeType.Directory) return E.EACCES;
        if (!PosixAcl.TryParse(value, out var acl)) return E.EINVAL;
        var at = FindXattr(inode, name);
        var store = kind == PosixAcl.DefaultXattr || !acl!.IsEquivalentToMode;
        if (kind == PosixAcl.AccessXattr)
            inode.Mode = (inode.Mode & ~0x1FF) | acl!.PermissionBits;
        if (store)
        {
            var entry = new XattrEntry { Name = name.ToByteArray(), Value = acl!.ToBytes() };
            if (at >= 0) inode.Xattrs[at] = entry;
            else inode.Xattrs.Add(entry);
        }
        else if (at >= 0)
        {
            inode.Xattrs.RemoveAt(at);
        }
        inode.CtimeNs = _s.NowNs;
        _s.MarkInode(inode.Id);
        return 0;
    }

    /// <summary>After a chmod: a stored access ACL takes the new permission bits (owner, group class, other).</summary>
    private static void KeepAccessAclInStep(InodeRecord inode)
    {
        for (var i = 0; i < inode.Xattrs.Count; i++)
        {
            var x = inode.Xattrs[i];
            if (PosixAcl.KindOf(x.Name) == PosixAcl.AccessXattr && PosixAcl.TryParse(x.Value, out var acl))
            {
                inode.Xattrs[i] = new XattrEntry { Name = x.Name, Value = acl!.WithPermissionBits(inode.Mode) };
                return;
            }
        }
    }

    public ListXattrReply ListXattr(InodeRequest r) => Read(() =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new ListXattrReply { Errno = E.ENOENT };
        var reply = new ListXattrReply();
        foreach (var x in inode.Xattrs)
            reply.Names.Add(ByteString.CopyFrom(x.Name));
        return reply;
    });

    public Task<StatusReply> RemoveXattrAsync(RemoveXattrRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new StatusReply { Errno = E.ENOENT };
        var err = ValidXattrName(r.Name);
        if (err != 0) return new StatusReply { Errno = err };
        var at = FindXattr(inode, r.Name);
        // Removing an ACL that is not there is not an error (setfacl -b on a plain file).
        if (at < 0) return new StatusReply { Errno = PosixAcl.KindOf(r.Name.Span) is null ? E.ENODATA : 0 };
        inode.Xattrs.RemoveAt(at);
        inode.CtimeNs = _s.NowNs;
        _s.MarkInode(inode.Id);
        return new StatusReply();
    });

    public LayoutReply GetLayout(GetLayoutRequest r) => Read(() =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new LayoutReply { Errno = E.ENOENT };
        var reply = new LayoutReply { Attr = Attrs.Of(inode) };
        if (inode.Type != (int)InodeType.File || !_s.Layouts.TryGetValue(inode.Id, out var map))
            return reply;
        var start = (long)Math.Min(r.Offset, (ulong)MaxFileSize);
        var end = r.Length == 0 ? Math.Max(inode.Size, start) : Math.Min(start + (long)Math.Min(r.Length, (ulong)MaxFileSize), MaxFileSize);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in map.Find(start, end))
        {
            reply.Extents.Add(new Extent
                { FileOffset = (ulong)e.FileOffset, Length = (ulong)e.Length, ChunkId = e.ChunkId, ChunkOffset = (ulong)e.ChunkOffset });
            if (seen.Add(e.ChunkId))
                reply.Chunks.Add(LocationOf(e.ChunkId, r.AllCopies));
        }
        return reply;
    });

    /// <summary>Copies a reader may use: AVAILABLE ones and the primary, live nodes first (or every copy, for admins).</summary>
    private ChunkLocation LocationOf(string chunkId, bool allCopies = false)
    {
        var location = new ChunkLocation { ChunkId = chunkId };
        if (!_s.Chunks.TryGetValue(chunkId, out var chunk))
            return location;
        location.Size = (ulong)chunk.Size;
        location.Checksum = unchecked((ulong)chunk.Checksum);
        var copies = chunk.Copies
            .Where(c => allCopies || c.Status == CopyState.Available || (c.Primary && c.Status != CopyState.Deleting))
            .Select(c => (Copy: c, Node: _s.Nodes.GetValueOrDefault(c.NodeId)))
            .OrderBy(x => x.Node is null ? 4 : (int)_s.LivenessOf(x.Node));
        foreach (var (c, node) in copies)
            location.Copies.Add(new ChunkCopy
            {
                NodeId = c.NodeId, Address = node?.Address ?? "", DataAddress = node?.DataAddress ?? "",
                Status = (CopyStatus)c.Status, Primary = c.Primary,
            });
        return location;
    }

    /// <summary>Uploaded chunks a writer will never commit: uncommitted ones become garbage now (committed ones are not touched).</summary>
    public Task<StatusReply> AbandonChunksAsync(AbandonChunksRequest r) => _s.MutateAsync(() =>
    {
        foreach (var id in r.ChunkIds)
        {
            if (!ChunkId.IsValid(id)) return new StatusReply { Errno = E.EINVAL };
            if (_s.Chunks.TryGetValue(id, out var chunk) && chunk.State == ChunkState.Uncommitted)
            {
                chunk.State = ChunkState.Garbage;
                _s.MarkChunk(id);
            }
        }
        return new StatusReply();
    }, Storage.Durability.Written);

    /// <summary>An extent without a chunk punches a hole: its range reads as zeros and holds no data.</summary>
    private static bool IsHole(Extent e) => e.ChunkId.Length == 0 && e.ChunkOffset == 0;

    public Task<AttrReply> CommitWriteAsync(CommitWriteRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode)) return new AttrReply { Errno = E.ENOENT };
        if (inode.Type == (int)InodeType.Directory) return new AttrReply { Errno = E.EISDIR };
        if (inode.Type != (int)InodeType.File) return new AttrReply { Errno = E.EINVAL };
        if (r.IfVersion != 0 && (ulong)inode.Version != r.IfVersion) return new AttrReply { Errno = E.ESTALE, Attr = Attrs.Of(inode) };
        if (r.SetSize && r.Size > MaxFileSize) return new AttrReply { Errno = E.EFBIG };
        foreach (var e in r.Extents)
        {
            if (e.Length == 0) return new AttrReply { Errno = E.EINVAL };
            if (e.FileOffset > MaxFileSize || e.Length > MaxFileSize || e.FileOffset + e.Length > MaxFileSize)
                return new AttrReply { Errno = E.EFBIG };
            if (IsHole(e))
                continue;
            if (!ChunkId.IsValid(e.ChunkId)) return new AttrReply { Errno = E.EINVAL };
            if (!_s.Chunks.TryGetValue(e.ChunkId, out var chunk) || chunk.State == ChunkState.Garbage)
                return new AttrReply { Errno = E.EIO };
            if (e.ChunkOffset > (ulong)chunk.Size || e.Length > (ulong)chunk.Size - e.ChunkOffset)
                return new AttrReply { Errno = E.EINVAL };
        }
        var now = _s.NowNs;
        var map = _s.LayoutOf(inode.Id);
        var before = map.ChunkIds();
        var oldEnd = map.DataEnd;
        long lo = long.MaxValue, hi = 0;
        foreach (var e in r.Extents)
        {
            var extent = new FileExtent((long)e.FileOffset, (long)e.Length, e.ChunkId, (long)e.ChunkOffset);
            if (IsHole(e))
                map.Clear(extent.FileOffset, extent.End);
            else
                map.Write(extent);
            lo = Math.Min(lo, extent.FileOffset);
            hi = Math.Max(hi, extent.End);
        }
        long size;
        if (r.SetSize)
        {
            size = (long)r.Size;
            if (size < map.DataEnd)
            {
                lo = Math.Min(lo, size);
                map.Truncate(size);
            }
        }
        else
        {
            size = Math.Max(inode.Size, hi);
        }
        hi = Math.Max(hi, oldEnd);
        if (lo < hi)
            _s.MarkLayout(inode.Id, lo, hi);
        _s.UpdateChunkRefs(inode.Id, before, map.ChunkIds());
        inode.Size = size;
        inode.Version++;
        inode.MtimeNs = r.MtimeNs != 0 ? r.MtimeNs : now;
        inode.CtimeNs = now;
        _s.MarkInode(inode.Id);
        return new AttrReply { Attr = Attrs.Of(inode) };
    }, r.Lazy ? Durability.Written : Durability.Durable);

    /// <summary>
    /// copy_file_range as a metadata change: the destination range comes to reference the
    /// source's chunks (and its holes), so no byte is read or written. The source's layout is
    /// read and the destination's spliced under one lock, so a concurrent overwrite of the source
    /// is either wholly before or wholly after the copy.
    /// </summary>
    public Task<CopyRangeReply> CopyRangeAsync(CopyRangeRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Inodes.TryGetValue((long)r.InoIn, out var source) || !_s.Inodes.TryGetValue((long)r.InoOut, out var target))
            return new CopyRangeReply { Errno = E.ENOENT };
        if (source.Type == (int)InodeType.Directory || target.Type == (int)InodeType.Directory) return new CopyRangeReply { Errno = E.EISDIR };
        if (source.Type != (int)InodeType.File || target.Type != (int)InodeType.File) return new CopyRangeReply { Errno = E.EINVAL };
        if (r.OffsetIn > MaxFileSize || r.OffsetOut > MaxFileSize || r.Length > MaxFileSize)
            return new CopyRangeReply { Errno = E.EFBIG };
        var from = (long)r.OffsetIn;
        var length = Math.Min((long)r.Length, Math.Max(0, source.Size - from));
        var to = (long)r.OffsetOut;
        if (length == 0)
            return new CopyRangeReply { Attr = Attrs.Of(target) };
        if (to + length > MaxFileSize) return new CopyRangeReply { Errno = E.EFBIG };
        if (source.Id == target.Id && from < to + length && to < from + length)
            return new CopyRangeReply { Errno = E.EINVAL };   // as the kernel refuses overlapping ranges of one file

        // Taken before the destination changes: the source may be the same file.
        var copied = _s.Layouts.TryGetValue(source.Id, out var sourceMap) ? sourceMap.Find(from, from + length) : [];
        var map = _s.LayoutOf(target.Id);
        var before = map.ChunkIds();
        map.Clear(to, to + length);   // the source's holes stay holes
        foreach (var e in copied)
        {
            map.Write(e with { FileOffset = e.FileOffset - from + to });
            // A shared chunk is kept as safe as the safest file holding it: re-replication raises its copies.
            if (_s.Chunks.TryGetValue(e.ChunkId, out var chunk) && chunk.Goal < target.Goal)
            {
                chunk.Goal = target.Goal;
                _s.MarkChunk(chunk.Id);
            }
        }
        _s.MarkLayout(target.Id, to, to + length);   // regions hold their extents clipped: only these change
        _s.UpdateChunkRefs(target.Id, before, map.ChunkIds());
        var now = _s.NowNs;
        target.Size = Math.Max(target.Size, to + length);
        target.Version++;
        target.MtimeNs = now;
        target.CtimeNs = now;
        _s.MarkInode(target.Id);
        return new CopyRangeReply { Attr = Attrs.Of(target), Copied = (ulong)length };
    });

    // ---- sessions ----

    public SessionReply OpenSession(OpenSessionRequest r) => Read(() =>
    {
        var session = new SessionRecord
            { Id = Guid.NewGuid().ToString("N"), ClientName = r.ClientName, ExpiresMs = _s.NowMs + LeaseMs, Confirmed = true };
        _s.Sessions[session.Id] = session;
        return new SessionReply { SessionId = session.Id, LeaseMs = (uint)LeaseMs, ChunkSize = (uint)_s.Options.ChunkSize };
    });

    private long LeaseMs => (long)_s.Options.SessionLease.TotalMilliseconds;

    /// <summary>
    /// The first lease after a start: live sessions register their opens again, so a file with no
    /// name may still be held by one. After it, such files nobody took back are reclaimed.
    /// </summary>
    private bool InReclaimGrace => _s.NowMs - _s.StartedMs <= LeaseMs;

    /// <summary>Sessions live in memory: after a server restart a renewal re-creates the session.</summary>
    private SessionRecord Session(string id) => Session(id, out _);

    private SessionRecord Session(string id, out bool created)
    {
        created = !_s.Sessions.TryGetValue(id, out var session);
        if (created)
            _s.Sessions[id] = session = new SessionRecord { Id = id };
        session!.ExpiresMs = _s.NowMs + LeaseMs;
        return session;
    }

    public StatusReply RenewSession(SessionRequest r) => Read(() =>
    {
        if (string.IsNullOrEmpty(r.SessionId) || r.SessionId.Length > 128) return new StatusReply { Errno = E.EINVAL };
        var session = Session(r.SessionId);
        // Re-created by this renewal, or by another call since the start (an open, a lock):
        // either way the mount must register what it held.
        var recreated = !session.Confirmed;
        session.Confirmed = true;
        return new StatusReply { SessionRecreated = recreated };
    });

    public Task<StatusReply> CloseSessionAsync(SessionRequest r) => MutateAsync(() =>
    {
        if (_s.Sessions.Remove(r.SessionId, out var session))
            ReleaseAll(session);
        _replies.Forget(s => s == r.SessionId);
        return new StatusReply();
    });

    /// <summary>Drops every open of a closed or expired session (under the lock).</summary>
    public void ReleaseAll(SessionRecord session)
    {
        foreach (var (ino, count) in session.Opens)
            ReleaseOpens(ino, count);
        session.Opens.Clear();
        _s.Locks.ReleaseSession(session.Id);
    }

    private void ReleaseOpens(long ino, int count)
    {
        if (!_s.OpenCounts.TryGetValue(ino, out var open))
            return;
        if (open > count)
        {
            _s.OpenCounts[ino] = open - count;
            return;
        }
        _s.OpenCounts.Remove(ino);
        if (_s.Inodes.TryGetValue(ino, out var inode) && inode.Nlink == 0)
            _s.DestroyInode(ino);
    }

    public Task<AttrReply> OpenAsync(OpenRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Inodes.TryGetValue((long)r.Ino, out var inode) || inode.Nlink == 0 && !_s.IsOpen(inode.Id) && !(r.Reclaim && InReclaimGrace))
            return new AttrReply { Errno = E.ENOENT };
        if (r.Truncate && inode.Type == (int)InodeType.Directory) return new AttrReply { Errno = E.EISDIR };
        if (r.SessionId.Length > MaxSessionId) return new AttrReply { Errno = E.EINVAL };
        if (r.Truncate && inode.Type == (int)InodeType.File)
            Truncate(inode, 0, _s.NowNs);
        if (r.Reclaim && r.SessionId.Length > 0)
            ReclaimOpens(inode, r.SessionId, (int)Math.Max(1, r.Handles));
        else if (r.SessionId.Length > 0)
            RegisterOpen(inode, r.SessionId);
        return new AttrReply { Attr = Attrs.Of(inode) };
    }, redoInMemory: reply => RedoOpen(reply.Errno, reply.Attr, r.SessionId));

    /// <summary>
    /// A mount registering again, after a restart, the <paramref name="handles"/> it has open:
    /// the session's count becomes that (opens it made since the restart are among them).
    /// </summary>
    private void ReclaimOpens(InodeRecord inode, string sessionId, int handles)
    {
        var session = Session(sessionId);
        var had = session.Opens.GetValueOrDefault(inode.Id);
        if (handles <= had) return;
        session.Opens[inode.Id] = handles;
        _s.OpenCounts[inode.Id] = _s.OpenCounts.GetValueOrDefault(inode.Id) + handles - had;
    }

    /// <summary>Registers again an open a restart lost, for a call answered from the reply cache.</summary>
    private void RedoOpen(int errno, InodeAttr? attr, string sessionId)
    {
        if (errno == 0 && attr is not null && sessionId.Length is > 0 and <= MaxSessionId
            && _s.Inodes.TryGetValue((long)attr.Ino, out var inode))
            RegisterOpen(inode, sessionId);
    }

    private const int MaxSessionId = 128;

    /// <summary>Counts one open of the inode by the session (memory only: opens are not persisted).</summary>
    private void RegisterOpen(InodeRecord inode, string sessionId)
    {
        var session = Session(sessionId);
        session.Opens[inode.Id] = session.Opens.GetValueOrDefault(inode.Id) + 1;
        _s.OpenCounts[inode.Id] = _s.OpenCounts.GetValueOrDefault(inode.Id) + 1;
    }

    public Task<StatusReply> ReleaseAsync(ReleaseRequest r) => MutateOnceAsync(r, () =>
    {
        if (!_s.Sessions.TryGetValue(r.SessionId, out var session)) return new StatusReply { Errno = E.ENOENT };
        var ino = (long)r.Ino;
        if (!session.Opens.TryGetValue(ino, out var count)) return new StatusReply { Errno = E.EBADF };
        if (count > 1) session.Opens[ino] = count - 1;
        else session.Opens.Remove(ino);
        ReleaseOpens(ino, 1);
        return new StatusReply();
    });

    // ---- advisory locks (LockManager: memory only, no journal) ----

    /// <summary>fcntl F_SETLK/F_SETLKW and flock for one lock owner of a session; a cancelled wait answers EINTR.</summary>
    public async Task<StatusReply> LockAsync(LockRequest r, CancellationToken ct)
    {
        if (r.SessionId.Length is 0 or > MaxSessionId || r.Start > long.MaxValue || r.End > long.MaxValue || !Enum.IsDefined(r.Type))
            return new StatusReply { Errno = E.EINVAL };
        var type = LockTypeOf(r.Type);
        // The session is renewed by its locks, as by its opens; an unknown one is re-created
        // (after a restart) and its mount will be asked to reclaim at its next renewal.
        var exists = Read(() =>
        {
            if (!_s.Inodes.ContainsKey((long)r.Ino)) return false;
            Session(r.SessionId);
            return true;
        });
        if (!exists) return new StatusReply { Errno = type is null ? 0 : E.ENOENT };
        var owner = new LockOwner(r.SessionId, r.Owner);
        int errno;
        try
        {
            errno = await _s.Locks.SetAsync((long)r.Ino, r.Flock, owner, (long)r.Start, (long)r.End, type, r.Pid, r.Wait, r.Reclaim, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new StatusReply { Errno = E.EINTR };
        }
        // A session that expired while this waited has lost its locks: this one must not outlive it.
        if (errno == 0 && type is not null && !Read(() => _s.Sessions.ContainsKey(r.SessionId)))
        {
            _s.Locks.ReleaseSession(r.SessionId);
            return new StatusReply { Errno = E.ENOLCK };
        }
        return new StatusReply { Errno = errno };
    }

    /// <summary>fcntl F_GETLK: the first record lock of another owner that conflicts, if any.</summary>
    public TestLockReply TestLock(LockRequest r)
    {
        if (r.SessionId.Length > MaxSessionId || r.Start > long.MaxValue || r.End > long.MaxValue || LockTypeOf(r.Type) is not { } type)
            return new TestLockReply { Errno = E.EINVAL };
        if (!Read(() => _s.Inodes.ContainsKey((long)r.Ino))) return new TestLockReply { Errno = E.ENOENT };
        if (_s.Locks.Test((long)r.Ino, new LockOwner(r.SessionId, r.Owner), (long)r.Start, (long)r.End, type) is not { } held)
            return new TestLockReply { Type = LockType.LockUnlock };
        return new TestLockReply
        {
            Type = held.Type == RangeLockType.Write ? LockType.LockWrite : LockType.LockRead,
            Start = (ulong)held.Start, End = (ulong)held.End,
            Pid = held.Owner.Session == r.SessionId ? held.Pid : 0,   // a pid means nothing on another machine
        };
    }

    private static RangeLockType? LockTypeOf(LockType type) => type switch
    {
        LockType.LockRead => RangeLockType.Read,
        LockType.LockWrite => RangeLockType.Write,
        _ => null,
    };

    /// <summary>Expired sessions release their opens; orphans left by a restart (inodes, cached replies) go after one lease.</summary>
    public Task ExpireSessionsAsync() => MutateAsync(() =>
    {
        var now = _s.NowMs;
        foreach (var session in _s.Sessions.Values.Where(s => s.ExpiresMs < now).ToList())
        {
            _s.Sessions.Remove(session.Id);
            ReleaseAll(session);
        }
        // Sessions live in memory: after a start, one lease tells the live ones from the gone.
        if (!InReclaimGrace)
        {
            _replies.Forget(s => !_s.Sessions.ContainsKey(s));
            foreach (var orphan in _s.Inodes.Values.Where(i => i.Nlink == 0 && !_s.IsOpen(i.Id)).Select(i => i.Id).ToList())
                _s.DestroyInode(orphan);
        }
        return 0;
    });
}
