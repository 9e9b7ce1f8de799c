using System.Text;
using BigFS.Fuse;

namespace BigFS.Fuse.MemoryFs;

/// <summary>
/// A complete in-memory filesystem with POSIX semantics on <see cref="IFuseFileSystem"/>: the
/// reference implementation and the mount tests' subject. One lock guards everything (correct
/// first); every method completes synchronously except a waiting F_SETLKW.
/// </summary>
public sealed class MemoryFileSystem : IFuseFileSystem
{
    private const int O_ACCMODE = 3, O_RDONLY = 0, O_TRUNC = 0x200, O_EXCL = 0x80;
    private const uint RenameNoReplace = 1, RenameExchange = 2;
    private const int XattrCreate = 1, XattrReplace = 2;
    private const int FallocKeepSize = 1, FallocPunchHole = 2;
    private const int MaxName = 255;

    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, MemoryNode> _nodes = [];
    private readonly HashSet<ulong> _forgotten = [];
    private readonly Dictionary<ulong, OpenFile> _handles = [];
    private ulong _nextIno = 2, _nextFh = 1;

    private sealed record OpenFile(MemoryNode Node, int Flags, List<(string Name, MemoryNode Node)>? Listing);

    public MemoryFileSystem(uint rootUid = 0, uint rootGid = 0, uint rootMode = 0x1ED /* 0755 */)
    {
        var root = new MemoryNode(1, ModeBits.S_IFDIR | rootMode, rootUid, rootGid);
        root.Parent = root;
        _nodes[1] = root;
    }

    /// <summary>Inodes still held in memory (for tests of FORGET and unlink-while-open).</summary>
    public int NodeCount { get { lock (_lock) return _nodes.Count; } }

    private static FuseError Err(int errno) => new(errno);

    private FuseEntry Entry(MemoryNode n) => new(n.Ino, n.Attr());

    private bool TryGet(ulong ino, out MemoryNode node)
    {
        if (_nodes.TryGetValue(ino, out node!)) return true;
        return false;
    }

    private int Dir(ulong ino, out MemoryNode dir)
    {
        if (!TryGet(ino, out dir)) return LinuxErrno.ENOENT;
        return dir.IsDir ? 0 : LinuxErrno.ENOTDIR;
    }

    private static int CheckName(string name) =>
        Encoding.UTF8.GetByteCount(name) > MaxName ? LinuxErrno.ENAMETOOLONG : name is "." or ".." ? LinuxErrno.EEXIST : 0;

    private static void Touch(MemoryNode n, bool data = true)
    {
        var now = FuseTime.Now;
        if (data) n.Mtime = now;
        n.Ctime = now;
    }

    /// <summary>Drops a node once nothing refers to it: no names, no open files, no kernel references.</summary>
    private void MaybeDrop(MemoryNode n)
    {
        if (n.Ino != 1 && n.Nlink == 0 && n.OpenCount == 0 && _forgotten.Remove(n.Ino)) _nodes.Remove(n.Ino);
    }

    public void Forget(ulong ino)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(ino, out var n)) return;
            _forgotten.Add(ino);
            MaybeDrop(n);
            if (_nodes.ContainsKey(ino) && n.Nlink > 0) _forgotten.Remove(ino);
        }
    }

    private MemoryNode NewNode(FuseRequestContext ctx, MemoryNode parent, uint mode)
    {
        uint gid = ctx.Gid;
        // BSD group semantics for setgid directories: inherit the group; subdirectories stay setgid.
        if ((parent.Mode & ModeBits.S_ISGID) != 0)
        {
            gid = parent.Gid;
            if (ModeBits.IsDir(mode)) mode |= ModeBits.S_ISGID;
        }
        var n = new MemoryNode(_nextIno++, mode, ctx.Uid, gid);
        _nodes[n.Ino] = n;
        return n;
    }

    private FuseResult<FuseEntry> AddChild(FuseRequestContext ctx, ulong parent, string name, uint mode, Action<MemoryNode>? init = null)
    {
        lock (_lock)
        {
            int err = Dir(parent, out var dir);
            if (err == 0) err = CheckName(name);
            if (err != 0) return Err(err);
            if (dir.Children!.ContainsKey(name)) return Err(LinuxErrno.EEXIST);
            var n = NewNode(ctx, dir, mode);
            init?.Invoke(n);
            dir.Children[name] = n;
            if (n.IsDir) { n.Parent = dir; dir.Nlink++; }
            Touch(dir);
            return Entry(n);
        }
    }

    public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name)
    {
        lock (_lock)
        {
            int err = Dir(parent, out var dir);
            if (err != 0) return new(Err(err));
            if (Encoding.UTF8.GetByteCount(name) > MaxName) return new(Err(LinuxErrno.ENAMETOOLONG));
            var n = name switch { "." => dir, ".." => dir.Parent!, _ => dir.Children!.GetValueOrDefault(name) };
            if (n is null) return new(Err(LinuxErrno.ENOENT));
            _forgotten.Remove(n.Ino);
            return new(Entry(n));
        }
    }

    public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh)
    {
        lock (_lock)
            return new(TryGet(ino, out var n) ? n.Attr() : Err(LinuxErrno.ENOENT));
    }

    public ValueTask<FuseResult<FuseAttr>> SetAttrAsync(FuseRequestContext ctx, ulong ino, FuseSetAttr a)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            var now = FuseTime.Now;
            if (a.Has(Protocol.FuseSetAttrValid.Size))
            {
                if (n.IsDir) return new(Err(LinuxErrno.EISDIR));
                if (!ModeBits.IsRegular(n.Mode)) return new(Err(LinuxErrno.EINVAL));
                if (a.Size > int.MaxValue) return new(Err(LinuxErrno.EFBIG));
                n.SetSize((long)a.Size);
                n.Mtime = now;
            }
            bool owner = a.Has(Protocol.FuseSetAttrValid.Uid) || a.Has(Protocol.FuseSetAttrValid.Gid);
            if (a.Has(Protocol.FuseSetAttrValid.Uid)) n.Uid = a.Uid;
            if (a.Has(Protocol.FuseSetAttrValid.Gid)) n.Gid = a.Gid;
            if (a.Has(Protocol.FuseSetAttrValid.Mode))
                n.Mode = (n.Mode & ModeBits.S_IFMT) | (a.Mode & ~ModeBits.S_IFMT);
            else if (owner && !n.IsDir)
            {
                // chown clears set-user-ID, and set-group-ID when the group may execute.
                n.Mode &= ~ModeBits.S_ISUID;
                if ((n.Mode & 0x8) != 0) n.Mode &= ~ModeBits.S_ISGID;
            }
            if (a.NewAtime(now) is { } at) n.Atime = at;
            if (a.NewMtime(now) is { } mt) n.Mtime = mt;
            n.Ctime = a.Has(Protocol.FuseSetAttrValid.Ctime) ? a.Ctime : now;
            return new(n.Attr());
        }
    }

    public ValueTask<FuseResult<string>> ReadLinkAsync(FuseRequestContext ctx, ulong ino)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            return new(n.Target is { } t ? t : Err(LinuxErrno.EINVAL));
        }
    }

    public ValueTask<FuseResult<FuseEntry>> SymlinkAsync(FuseRequestContext ctx, ulong parent, string name, string target) =>
        new(AddChild(ctx, parent, name, ModeBits.S_IFLNK | 0x1FF, n => n.Target = target));

    public ValueTask<FuseResult<FuseEntry>> MkNodAsync(FuseRequestContext ctx, ulong parent, string name, uint mode, uint rdev)
    {
        uint type = mode & ModeBits.S_IFMT;
        if (type == 0) mode |= ModeBits.S_IFREG;
        else if (type is ModeBits.S_IFDIR or ModeBits.S_IFLNK) return new(Err(LinuxErrno.EINVAL));
        return new(AddChild(ctx, parent, name, mode, n => n.Rdev = rdev));
    }

    public ValueTask<FuseResult<FuseEntry>> MkDirAsync(FuseRequestContext ctx, ulong parent, string name, uint mode) =>
        new(AddChild(ctx, parent, name, ModeBits.S_IFDIR | (mode & 0xFFF)));

    public ValueTask<int> UnlinkAsync(FuseRequestContext ctx, ulong parent, string name) => new(Remove(parent, name, dir: false));
    public ValueTask<int> RmDirAsync(FuseRequestContext ctx, ulong parent, string name) => new(Remove(parent, name, dir: true));

    private int Remove(ulong parent, string name, bool dir)
    {
        lock (_lock)
        {
            int err = Dir(parent, out var d);
            if (err != 0) return err;
            if (name == ".") return dir ? LinuxErrno.EINVAL : LinuxErrno.EISDIR;
            if (name == "..") return dir ? LinuxErrno.ENOTEMPTY : LinuxErrno.EISDIR;
            if (!d.Children!.TryGetValue(name, out var n)) return LinuxErrno.ENOENT;
            if (dir && !n.IsDir) return LinuxErrno.ENOTDIR;
            if (!dir && n.IsDir) return LinuxErrno.EISDIR;
            if (dir && n.Children!.Count > 0) return LinuxErrno.ENOTEMPTY;
            d.Children.Remove(name);
            if (n.IsDir) { d.Nlink--; n.Nlink = 0; }
            else n.Nlink--;
            Touch(d);
            n.Ctime = FuseTime.Now;
            MaybeDrop(n);
            return 0;
        }
    }

    private static bool IsAncestor(MemoryNode ancestor, MemoryNode node)
    {
        for (var n = node; ; n = n.Parent!)
        {
            if (n == ancestor) return true;
            if (n.Ino == 1) return false;
        }
    }

    public ValueTask<int> RenameAsync(FuseRequestContext ctx, ulong parent, string name, ulong newParent, string newName, uint flags) =>
        new(Rename(parent, name, newParent, newName, flags));

    private int Rename(ulong parent, string name, ulong newParent, string newName, uint flags)
    {
        if ((flags & ~(RenameNoReplace | RenameExchange)) != 0 || flags == (RenameNoReplace | RenameExchange)) return LinuxErrno.EINVAL;
        lock (_lock)
        {
            int err = Dir(parent, out var from);
            if (err == 0) err = Dir(newParent, out _);
            if (err != 0) return err;
            var to = _nodes[newParent];
            if (name is "." or ".." || newName is "." or "..") return LinuxErrno.EBUSY;
            if (Encoding.UTF8.GetByteCount(newName) > MaxName) return LinuxErrno.ENAMETOOLONG;
            if (!from.Children!.TryGetValue(name, out var src)) return LinuxErrno.ENOENT;
            to.Children!.TryGetValue(newName, out var dst);
            if ((flags & RenameNoReplace) != 0 && dst is not null) return LinuxErrno.EEXIST;
            if ((flags & RenameExchange) != 0)
            {
                if (dst is null) return LinuxErrno.ENOENT;
                if ((src.IsDir && IsAncestor(src, to)) || (dst.IsDir && IsAncestor(dst, from))) return LinuxErrno.EINVAL;
                from.Children[name] = dst;
                to.Children[newName] = src;
                if (src.IsDir) { src.Parent = to; }
                if (dst.IsDir) { dst.Parent = from; }
                if (src.IsDir != dst.IsDir && from != to)
                {
                    if (src.IsDir) { from.Nlink--; to.Nlink++; } else { from.Nlink++; to.Nlink--; }
                }
                Touch(from); Touch(to);
                src.Ctime = dst.Ctime = FuseTime.Now;
                return 0;
            }
            if (dst == src) return 0;
            if (src.IsDir && IsAncestor(src, to)) return LinuxErrno.EINVAL;
            if (dst is not null)
            {
                if (src.IsDir && !dst.IsDir) return LinuxErrno.ENOTDIR;
                if (!src.IsDir && dst.IsDir) return LinuxErrno.EISDIR;
                if (dst.IsDir && dst.Children!.Count > 0) return LinuxErrno.ENOTEMPTY;
                if (dst.IsDir) { to.Nlink--; dst.Nlink = 0; } else dst.Nlink--;
                dst.Ctime = FuseTime.Now;
            }
            from.Children.Remove(name);
            to.Children[newName] = src;
            if (src.IsDir && from != to) { from.Nlink--; to.Nlink++; src.Parent = to; }
            Touch(from); Touch(to);
            src.Ctime = FuseTime.Now;
            if (dst is not null) MaybeDrop(dst);
            return 0;
        }
    }

    public ValueTask<FuseResult<FuseEntry>> LinkAsync(FuseRequestContext ctx, ulong ino, ulong newParent, string newName)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            if (n.IsDir) return new(Err(LinuxErrno.EPERM));
            int err = Dir(newParent, out var dir);
            if (err == 0) err = CheckName(newName);
            if (err != 0) return new(Err(err));
            if (dir.Children!.ContainsKey(newName)) return new(Err(LinuxErrno.EEXIST));
            dir.Children[newName] = n;
            n.Nlink++;
            n.Ctime = FuseTime.Now;
            Touch(dir);
            _forgotten.Remove(n.Ino);
            return new(Entry(n));
        }
    }

    private ulong NewHandle(MemoryNode n, int flags, List<(string, MemoryNode)>? listing = null)
    {
        ulong fh = _nextFh++;
        _handles[fh] = new OpenFile(n, flags, listing);
        n.OpenCount++;
        return fh;
    }

    public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            if (n.IsDir) return new(Err(LinuxErrno.EISDIR));
            if ((flags & O_TRUNC) != 0 && (flags & O_ACCMODE) != O_RDONLY && ModeBits.IsRegular(n.Mode) && n.Size > 0)
            {
                n.SetSize(0);
                Touch(n);
            }
            return new(new FuseOpenResult(NewHandle(n, flags)));
        }
    }

    public ValueTask<FuseResult<FuseCreateResult>> CreateAsync(FuseRequestContext ctx, ulong parent, string name, int flags, uint mode)
    {
        lock (_lock)
        {
            int err = Dir(parent, out var dir);
            if (err == 0) err = CheckName(name);
            if (err != 0) return new(Err(err));
            if (dir.Children!.TryGetValue(name, out var existing))
            {
                if ((flags & O_EXCL) != 0) return new(Err(LinuxErrno.EEXIST));
                if (existing.IsDir) return new(Err(LinuxErrno.EISDIR));
                if ((flags & O_TRUNC) != 0 && existing.Size > 0) { existing.SetSize(0); Touch(existing); }
                _forgotten.Remove(existing.Ino);
                return new(new FuseCreateResult(Entry(existing), new FuseOpenResult(NewHandle(existing, flags))));
            }
            var n = NewNode(ctx, dir, ModeBits.S_IFREG | (mode & 0xFFF));
            dir.Children[name] = n;
            Touch(dir);
            return new(new FuseCreateResult(Entry(n), new FuseOpenResult(NewHandle(n, flags))));
        }
    }

    public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            if (n.IsDir) return new(Err(LinuxErrno.EISDIR));
            int count = n.Read(offset, buffer.Span);
            n.Atime = FuseTime.Now;
            return new((ReadOnlyMemory<byte>)buffer[..count]);
        }
    }

    public ValueTask<FuseResult<int>> WriteAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, ReadOnlyMemory<byte> data, FuseWriteFlags flags, int openFlags)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            if (offset + data.Length > int.MaxValue) return new(Err(LinuxErrno.EFBIG));
            n.Write(offset, data.Span);
            if ((flags & FuseWriteFlags.KillSuidGid) != 0) n.Mode &= ~(ModeBits.S_ISUID | ModeBits.S_ISGID);
            Touch(n);
            return new(data.Length);
        }
    }

    public ValueTask<int> FlushAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong lockOwner)
    {
        lock (_lock)
        {
            // close(2) drops the caller's POSIX locks on the file.
            if (TryGet(ino, out var n)) n.Locks.ReleaseAll(lockOwner, isFlock: false);
            return new(0);
        }
    }

    public ValueTask<int> ReleaseAsync(FuseRequestContext ctx, ulong ino, ulong fh, int flags, FuseReleaseFlags releaseFlags, ulong lockOwner)
    {
        lock (_lock)
        {
            if (!_handles.Remove(fh, out var file)) return new(LinuxErrno.EBADF);
            if ((releaseFlags & FuseReleaseFlags.FlockUnlock) != 0) file.Node.Locks.ReleaseAll(fh, isFlock: true);   // flocks are owned by the handle (SetLkAsync)
            file.Node.OpenCount--;
            MaybeDrop(file.Node);
            return new(0);
        }
    }

    public ValueTask<int> FsyncAsync(FuseRequestContext ctx, ulong ino, ulong fh, bool dataOnly) => new(0);
    public ValueTask<int> FsyncDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, bool dataOnly) => new(0);

    public ValueTask<int> FallocateAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, long length, int mode)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(LinuxErrno.ENOENT);
            if (offset < 0 || length <= 0) return new(LinuxErrno.EINVAL);
            long end = offset + length;
            if (end > int.MaxValue) return new(LinuxErrno.EFBIG);
            if (mode == 0) { if (end > n.Size) n.SetSize(end); }
            else if (mode == FallocKeepSize) { }
            else if (mode == (FallocPunchHole | FallocKeepSize))
            {
                if (offset < n.Size) n.Data.AsSpan((int)offset, (int)(Math.Min(end, n.Size) - offset)).Clear();
            }
            else return new(LinuxErrno.EOPNOTSUPP);
            Touch(n);
            return new(0);
        }
    }

    public ValueTask<FuseResult<long>> LseekAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, int whence)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            if (offset >= n.Size) return new(Err(LinuxErrno.ENXIO));
            return new(whence == 3 ? offset : n.Size); // no holes are tracked: all data, one hole at EOF
        }
    }

    public ValueTask<FuseResult<long>> CopyFileRangeAsync(FuseRequestContext ctx, ulong inoIn, ulong fhIn, long offsetIn,
        ulong inoOut, ulong fhOut, long offsetOut, long length, ulong flags)
    {
        lock (_lock)
        {
            if (!TryGet(inoIn, out var src) || !TryGet(inoOut, out var dst)) return new(Err(LinuxErrno.ENOENT));
            if (flags != 0) return new(Err(LinuxErrno.EINVAL));
            long count = Math.Max(0, Math.Min(length, src.Size - offsetIn));
            if (offsetOut + count > int.MaxValue) return new(Err(LinuxErrno.EFBIG));
            if (count == 0) return new(0L);
            var copy = src.Data.AsSpan((int)offsetIn, (int)count).ToArray();
            dst.Write(offsetOut, copy);
            Touch(dst);
            return new(count);
        }
    }

    public ValueTask<FuseResult<FuseOpenResult>> OpenDirAsync(FuseRequestContext ctx, ulong ino, int flags)
    {
        lock (_lock)
        {
            int err = Dir(ino, out var dir);
            if (err != 0) return new(Err(err));
            // A snapshot per open directory keeps offsets stable while entries come and go.
            var listing = new List<(string, MemoryNode)>(dir.Children!.Count + 2) { (".", dir), ("..", dir.Parent!) };
            foreach (var (name, child) in dir.Children) listing.Add((name, child));
            return new(new FuseOpenResult(NewHandle(dir, flags, listing)));
        }
    }

    public ValueTask<int> ReadDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, FuseDirList list)
    {
        lock (_lock)
        {
            if (!_handles.TryGetValue(fh, out var file) || file.Listing is null) return new(LinuxErrno.EBADF);
            var listing = file.Listing;
            for (long i = offset; i < listing.Count; i++)
            {
                var (name, node) = listing[(int)i];
                bool added = list.IsPlus ? list.AddPlus(name, Entry(node), i + 1) : list.Add(name, node.Ino, node.Mode, i + 1);
                if (!added) break;
                if (list.IsPlus && name is not ("." or "..")) _forgotten.Remove(node.Ino);
            }
            file.Node.Atime = FuseTime.Now;
            return new(0);
        }
    }

    public ValueTask<int> ReleaseDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, int flags)
    {
        lock (_lock)
        {
            if (!_handles.Remove(fh, out var file)) return new(LinuxErrno.EBADF);
            file.Node.OpenCount--;
            MaybeDrop(file.Node);
            return new(0);
        }
    }

    public ValueTask<FuseResult<FuseStatFs>> StatFsAsync(FuseRequestContext ctx, ulong ino)
    {
        lock (_lock)
        {
            const ulong blocks = 1UL << 28; // 1 TiB of 4 KiB blocks
            ulong used = 0;
            foreach (var n in _nodes.Values) used += (ulong)(n.Size + 4095) / 4096;
            return new(new FuseStatFs(blocks, blocks - used, blocks - used, 1UL << 24, (1UL << 24) - (ulong)_nodes.Count, 4096));
        }
    }

    public ValueTask<int> AccessAsync(FuseRequestContext ctx, ulong ino, int mask)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(LinuxErrno.ENOENT);
            if (mask == 0 || ctx.Uid == 0) return new(0);
            uint bits = ctx.Uid == n.Uid ? (n.Mode >> 6) & 7 : ctx.Gid == n.Gid ? (n.Mode >> 3) & 7 : n.Mode & 7;
            return new(((uint)mask & ~bits) == 0 ? 0 : LinuxErrno.EACCES);
        }
    }

    public ValueTask<int> SetXattrAsync(FuseRequestContext ctx, ulong ino, string name, ReadOnlyMemory<byte> value, int flags)
    {
        // POSIX ACLs are not implemented: refuse them so tools (cp -a) fall back to chmod.
        if (name.StartsWith("system.posix_acl_", StringComparison.Ordinal)) return new(LinuxErrno.EOPNOTSUPP);
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(LinuxErrno.ENOENT);
            bool exists = n.Xattrs.ContainsKey(name);
            if ((flags & XattrCreate) != 0 && exists) return new(LinuxErrno.EEXIST);
            if ((flags & XattrReplace) != 0 && !exists) return new(LinuxErrno.ENODATA);
            n.Xattrs[name] = value.ToArray();
            n.Ctime = FuseTime.Now;
            return new(0);
        }
    }

    public ValueTask<FuseResult<ReadOnlyMemory<byte>>> GetXattrAsync(FuseRequestContext ctx, ulong ino, string name)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            return new(n.Xattrs.TryGetValue(name, out var v) ? (ReadOnlyMemory<byte>)v : Err(LinuxErrno.ENODATA));
        }
    }

    public ValueTask<FuseResult<IReadOnlyList<string>>> ListXattrAsync(FuseRequestContext ctx, ulong ino)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            return new(n.Xattrs.Keys.ToList());
        }
    }

    public ValueTask<int> RemoveXattrAsync(FuseRequestContext ctx, ulong ino, string name)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(LinuxErrno.ENOENT);
            if (!n.Xattrs.Remove(name)) return new(LinuxErrno.ENODATA);
            n.Ctime = FuseTime.Now;
            return new(0);
        }
    }

    public ValueTask<FuseResult<FuseFileLock>> GetLkAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong owner, FuseFileLock lk)
    {
        lock (_lock)
        {
            if (!TryGet(ino, out var n)) return new(Err(LinuxErrno.ENOENT));
            return new(n.Locks.FindConflict(owner, lk, isFlock: false) ?? lk with { Type = FuseLockType.Unlock });
        }
    }

    public async ValueTask<int> SetLkAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong owner, FuseFileLock lk, bool wait, bool isFlock)
    {
        // A flock belongs to the open file. The kernel's owner id for it is the file's address,
        // which the next open may reuse before this one's (asynchronous) RELEASE arrives: that
        // release would drop the new file's lock. Handle ids are never reused.
        if (isFlock)
            owner = fh;
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (!TryGet(ino, out var n)) return LinuxErrno.ENOENT;
                if (lk.Type == FuseLockType.Unlock || n.Locks.FindConflict(owner, lk, isFlock) is null)
                {
                    n.Locks.Apply(owner, lk, isFlock);
                    return 0;
                }
                if (!wait) return LinuxErrno.EAGAIN;
                changed = n.Locks.Changed;
            }
            try
            {
                await changed.WaitAsync(ctx.CancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return LinuxErrno.EINTR;
            }
        }
    }
}
