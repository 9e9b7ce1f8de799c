using System.Runtime.InteropServices;
using BigFS.Fuse.Protocol;
using Microsoft.Extensions.Logging;

namespace BigFS.Fuse.Session;

/// <summary>
/// Decodes each request, calls the filesystem, and encodes its reply. Decoding happens before the
/// first await (spans never cross one); the reply is sent from whichever thread completes the handler.
/// </summary>
internal sealed class FuseDispatcher(IFuseFileSystem fs, FuseMountOptions options, LookupCounter lookups, ILogger logger)
{
    private const uint FuseGetAttrFh = 1;
    private const uint FuseLkFlock = 1;
    private const int SeekData = 3, SeekHole = 4;

    public FuseInitFlags Flags { get; set; }

    private TimeSpan EntryTimeout => options.EntryTimeout;
    private TimeSpan AttrTimeout => options.AttrTimeout;

    /// <summary>Handles one request; the request has been answered (if it needs an answer) when this completes.</summary>
    public async ValueTask HandleAsync(FuseRequest req)
    {
        try
        {
            await DispatchAsync(req).ConfigureAwait(false);
        }
        catch (FuseProtocolException e)
        {
            logger.LogWarning("Malformed {Opcode} request {Unique}: {Reason}", req.Opcode, req.Unique, e.Message);
            if (!req.Replied) req.ReplyError(LinuxErrno.EINVAL);
        }
        catch (OperationCanceledException) when (req.CancellationToken.IsCancellationRequested)
        {
            if (!req.Replied) req.ReplyError(LinuxErrno.EINTR);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Filesystem failed on {Opcode} request {Unique}", req.Opcode, req.Unique);
            if (!req.Replied && NeedsReply(req.Opcode)) req.ReplyError(LinuxErrno.EIO);
        }
        if (!req.Replied && NeedsReply(req.Opcode))
        {
            logger.LogError("No reply produced for {Opcode} request {Unique}; answering EIO", req.Opcode, req.Unique);
            req.ReplyError(LinuxErrno.EIO);
        }
    }

    private static bool NeedsReply(FuseOpcode op) => op is not (FuseOpcode.Forget or FuseOpcode.BatchForget or FuseOpcode.Interrupt);

    private ValueTask DispatchAsync(FuseRequest req)
    {
        switch (req.Opcode)
        {
            case FuseOpcode.Lookup: return LookupAsync(req);
            case FuseOpcode.Forget: Forget(req); return default;
            case FuseOpcode.BatchForget: BatchForget(req); return default;
            case FuseOpcode.GetAttr: return GetAttrAsync(req);
            case FuseOpcode.SetAttr: return SetAttrAsync(req);
            case FuseOpcode.ReadLink: return ReadLinkAsync(req);
            case FuseOpcode.Symlink: return SymlinkAsync(req);
            case FuseOpcode.MkNod: return MkNodAsync(req);
            case FuseOpcode.MkDir: return MkDirAsync(req);
            case FuseOpcode.Unlink: return UnlinkAsync(req, rmdir: false);
            case FuseOpcode.RmDir: return UnlinkAsync(req, rmdir: true);
            case FuseOpcode.Rename: return RenameAsync(req, v2: false);
            case FuseOpcode.Rename2: return RenameAsync(req, v2: true);
            case FuseOpcode.Link: return LinkAsync(req);
            case FuseOpcode.Open: return OpenAsync(req, dir: false);
            case FuseOpcode.OpenDir: return OpenAsync(req, dir: true);
            case FuseOpcode.Read: return ReadAsync(req);
            case FuseOpcode.Write: return WriteAsync(req);
            case FuseOpcode.StatFs: return StatFsAsync(req);
            case FuseOpcode.Release: return ReleaseAsync(req, dir: false);
            case FuseOpcode.ReleaseDir: return ReleaseAsync(req, dir: true);
            case FuseOpcode.Fsync: return FsyncAsync(req, dir: false);
            case FuseOpcode.FsyncDir: return FsyncAsync(req, dir: true);
            case FuseOpcode.SetXattr: return SetXattrAsync(req);
            case FuseOpcode.GetXattr: return GetXattrAsync(req);
            case FuseOpcode.ListXattr: return ListXattrAsync(req);
            case FuseOpcode.RemoveXattr: return RemoveXattrAsync(req);
            case FuseOpcode.Flush: return FlushAsync(req);
            case FuseOpcode.ReadDir: return ReadDirAsync(req, plus: false);
            case FuseOpcode.ReadDirPlus: return ReadDirAsync(req, plus: true);
            case FuseOpcode.GetLk: return GetLkAsync(req);
            case FuseOpcode.SetLk: return SetLkAsync(req, wait: false);
            case FuseOpcode.SetLkW: return SetLkAsync(req, wait: true);
            case FuseOpcode.Access: return AccessAsync(req);
            case FuseOpcode.Create: return CreateAsync(req);
            case FuseOpcode.TmpFile: return TmpFileAsync(req);
            case FuseOpcode.Fallocate: return FallocateAsync(req);
            case FuseOpcode.Lseek: return LseekAsync(req);
            case FuseOpcode.CopyFileRange: return CopyFileRangeAsync(req);
            case FuseOpcode.Destroy:
                fs.Destroy();
                req.ReplyOk();
                return default;
            case FuseOpcode.Init:
                req.ReplyError(LinuxErrno.EIO); // INIT is answered once, by the session, before dispatch starts
                return default;
            default:
                req.ReplyError(LinuxErrno.ENOSYS);
                return default;
        }
    }

    /// <summary>A name as the filesystem sees it: any bytes, UTF-8 or not (<see cref="FileNameEncoding"/>); empty is EINVAL.</summary>
    private static bool TryName(ReadOnlySpan<byte> bytes, out string name)
    {
        name = bytes.IsEmpty ? "" : FileNameEncoding.GetString(bytes);
        return !bytes.IsEmpty;
    }

    private static bool TryName(FuseRequest req, ref FuseRequestReader reader, out string name)
    {
        if (TryName(reader.ReadCString(), out name)) return true;
        req.ReplyError(LinuxErrno.EINVAL);
        return false;
    }

    private void ReplyEntry(FuseRequest req, in FuseResult<FuseEntry> result)
    {
        if (!result.IsOk)
        {
            if (result.Errno == LinuxErrno.ENOENT && req.Opcode == FuseOpcode.Lookup && options.NegativeTimeout > TimeSpan.Zero)
            {
                var (s, ns) = FuseReplyEncoder.Split(options.NegativeTimeout);
                req.ReplyStruct(new FuseEntryOut { EntryValid = s, EntryValidNsec = ns });
                return;
            }
            req.ReplyError(result.Errno);
            return;
        }
        var entry = result.Value;
        // Count before sending: a FORGET for this reference may arrive as soon as the kernel has it.
        lookups.Add(entry.NodeId);
        if (req.ReplyStruct(FuseReplyEncoder.ToEntryOut(entry, EntryTimeout, AttrTimeout)) != 0)
            Unreference(entry.NodeId, 1);
    }

    private void Unreference(ulong nodeId, ulong count)
    {
        if (lookups.Forget(nodeId, count)) fs.Forget(nodeId);
    }

    private async ValueTask LookupAsync(FuseRequest req)
    {
        var r = req.Reader();
        if (!TryName(req, ref r, out var name)) return;
        var result = await fs.LookupAsync(req.Context(), req.Header.NodeId, name).ConfigureAwait(false);
        ReplyEntry(req, result);
    }

    private void Forget(FuseRequest req)
    {
        var r = req.Reader();
        var forget = r.Read<FuseForgetIn>();
        Unreference(req.Header.NodeId, forget.NLookup);
    }

    private void BatchForget(FuseRequest req)
    {
        var r = req.Reader();
        var batch = r.Read<FuseBatchForgetIn>();
        for (uint i = 0; i < batch.Count && r.Rest.Length >= Marshal.SizeOf<FuseForgetOne>(); i++)
        {
            var one = r.Read<FuseForgetOne>();
            Unreference(one.NodeId, one.NLookup);
        }
    }

    private async ValueTask GetAttrAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseGetAttrIn>();
        ulong? fh = (input.GetAttrFlags & FuseGetAttrFh) != 0 ? input.Fh : null;
        var result = await fs.GetAttrAsync(req.Context(), req.Header.NodeId, fh).ConfigureAwait(false);
        ReplyAttr(req, result);
    }

    private void ReplyAttr(FuseRequest req, in FuseResult<FuseAttr> result)
    {
        if (result.IsOk) req.ReplyStruct(FuseReplyEncoder.ToAttrOut(result.Value, AttrTimeout));
        else req.ReplyError(result.Errno);
    }

    private async ValueTask SetAttrAsync(FuseRequest req)
    {
        var r = req.Reader();
        var attr = new FuseSetAttr(r.Read<FuseSetAttrIn>());
        var result = await fs.SetAttrAsync(req.Context(), req.Header.NodeId, attr).ConfigureAwait(false);
        ReplyAttr(req, result);
    }

    private async ValueTask ReadLinkAsync(FuseRequest req)
    {
        var result = await fs.ReadLinkAsync(req.Context(), req.Header.NodeId).ConfigureAwait(false);
        if (result.IsOk) req.ReplyData(FileNameEncoding.GetBytes(result.Value));
        else req.ReplyError(result.Errno);
    }

    private async ValueTask SymlinkAsync(FuseRequest req)
    {
        var r = req.Reader();
        if (!TryName(req, ref r, out var name)) return;
        if (!TryName(req, ref r, out var target)) return;
        ReplyEntry(req, await fs.SymlinkAsync(req.Context(), req.Header.NodeId, name, target).ConfigureAwait(false));
    }

    private async ValueTask MkNodAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseMkNodIn>();
        if (!TryName(req, ref r, out var name)) return;
        ReplyEntry(req, await fs.MkNodAsync(CreatorContext(req, input.Umask), req.Header.NodeId, name, input.Mode, input.Rdev).ConfigureAwait(false));
    }

    private async ValueTask MkDirAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseMkDirIn>();
        if (!TryName(req, ref r, out var name)) return;
        ReplyEntry(req, await fs.MkDirAsync(CreatorContext(req, input.Umask), req.Header.NodeId, name, input.Mode | ModeBits.S_IFDIR).ConfigureAwait(false));
    }

    /// <summary>With FUSE_DONT_MASK the kernel leaves the umask to the filesystem: it travels in the context.</summary>
    private FuseRequestContext CreatorContext(FuseRequest req, uint umask) =>
        (Flags & FuseInitFlags.DontMask) != 0 ? req.Context(umask) : req.Context();

    private async ValueTask UnlinkAsync(FuseRequest req, bool rmdir)
    {
        var r = req.Reader();
        if (!TryName(req, ref r, out var name)) return;
        var ctx = req.Context();
        int errno = rmdir
            ? await fs.RmDirAsync(ctx, req.Header.NodeId, name).ConfigureAwait(false)
            : await fs.UnlinkAsync(ctx, req.Header.NodeId, name).ConfigureAwait(false);
        req.ReplyError(errno);
    }

    private async ValueTask RenameAsync(FuseRequest req, bool v2)
    {
        var r = req.Reader();
        ulong newDir;
        uint flags = 0;
        if (v2)
        {
            var input = r.Read<FuseRename2In>();
            newDir = input.NewDir;
            flags = input.Flags;
        }
        else newDir = r.Read<FuseRenameIn>().NewDir;
        if (!TryName(req, ref r, out var name)) return;
        if (!TryName(req, ref r, out var newName)) return;
        req.ReplyError(await fs.RenameAsync(req.Context(), req.Header.NodeId, name, newDir, newName, flags).ConfigureAwait(false));
    }

    private async ValueTask LinkAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseLinkIn>();
        if (!TryName(req, ref r, out var newName)) return;
        ReplyEntry(req, await fs.LinkAsync(req.Context(), input.OldNodeId, req.Header.NodeId, newName).ConfigureAwait(false));
    }

    private async ValueTask OpenAsync(FuseRequest req, bool dir)
    {
        var r = req.Reader();
        var input = r.Read<FuseOpenIn>();
        var ctx = (input.OpenFlags & FuseOpenInFlags.KillSuidGid) != 0 ? req.Context().WithKillSuidGid() : req.Context();
        var result = dir
            ? await fs.OpenDirAsync(ctx, req.Header.NodeId, (int)input.Flags).ConfigureAwait(false)
            : await fs.OpenAsync(ctx, req.Header.NodeId, (int)input.Flags).ConfigureAwait(false);
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        if (req.ReplyStruct(new FuseOpenOut { Fh = result.Value.Fh, OpenFlags = (uint)result.Value.Flags }) == LinuxErrno.ENOENT)
        {
            // Interrupted after the filesystem opened it: the kernel never learns the handle, so release it.
            _ = dir
                ? fs.ReleaseDirAsync(ctx, req.Header.NodeId, result.Value.Fh, (int)input.Flags)
                : fs.ReleaseAsync(ctx, req.Header.NodeId, result.Value.Fh, (int)input.Flags, FuseReleaseFlags.None, 0);
        }
    }

    private async ValueTask CreateAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseCreateIn>();
        if (!TryName(req, ref r, out var name)) return;
        var ctx = CreatorContext(req, input.Umask);
        if ((input.OpenFlags & FuseOpenInFlags.KillSuidGid) != 0)
            ctx = ctx.WithKillSuidGid();
        ReplyCreated(req, ctx, input, await fs.CreateAsync(ctx, req.Header.NodeId, name, (int)input.Flags, input.Mode).ConfigureAwait(false));
    }

    /// <summary>O_TMPFILE: CREATE's arguments and reply; the name the kernel sends ("/") means nothing.</summary>
    private async ValueTask TmpFileAsync(FuseRequest req)
    {
        var input = req.Reader().Read<FuseCreateIn>();
        var ctx = CreatorContext(req, input.Umask);
        ReplyCreated(req, ctx, input, await fs.TmpFileAsync(ctx, req.Header.NodeId, (int)input.Flags, input.Mode).ConfigureAwait(false));
    }

    private void ReplyCreated(FuseRequest req, FuseRequestContext ctx, in FuseCreateIn input, in FuseResult<FuseCreateResult> result)
    {
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        var (entry, open) = result.Value;
        Span<byte> payload = stackalloc byte[Marshal.SizeOf<FuseEntryOut>() + Marshal.SizeOf<FuseOpenOut>()];
        MemoryMarshal.Write(payload, FuseReplyEncoder.ToEntryOut(entry, EntryTimeout, AttrTimeout));
        MemoryMarshal.Write(payload[Marshal.SizeOf<FuseEntryOut>()..], new FuseOpenOut { Fh = open.Fh, OpenFlags = (uint)open.Flags });
        lookups.Add(entry.NodeId);
        if (req.ReplyData(payload) != 0)
        {
            Unreference(entry.NodeId, 1);
            _ = fs.ReleaseAsync(ctx, entry.NodeId, open.Fh, (int)input.Flags, FuseReleaseFlags.None, 0);
        }
    }

    private async ValueTask ReadAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseReadIn>();
        if (input.Size > req.Buffer.Length - FuseRequest.PayloadOffset) { req.ReplyError(LinuxErrno.EINVAL); return; }
        if (fs is IFuseGatherRead gather && gather.TryReadGather(req.Context(), req.Header.NodeId, input.Fh, (long)input.Offset, (int)input.Size, out var gathered))
        {
            try { req.ReplyGather(gathered.Segments, (int)input.Size); }
            finally { gathered.Owner?.Dispose(); }
            return;
        }
        var buffer = req.Buffer.AsMemory(FuseRequest.PayloadOffset, (int)input.Size);
        var result = await fs.ReadAsync(req.Context(), req.Header.NodeId, input.Fh, (long)input.Offset, buffer).ConfigureAwait(false);
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        var data = result.Value.Span;
        req.ReplyData(data.Length <= input.Size ? data : data[..(int)input.Size]);
    }

    private async ValueTask WriteAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseWriteIn>();
        int dataOffset = req.BodyOffset + Marshal.SizeOf<FuseWriteIn>();
        if (input.Size > r.Rest.Length) { req.ReplyError(LinuxErrno.EINVAL); return; }
        var data = req.Buffer.AsMemory(dataOffset, (int)input.Size);
        var result = await fs.WriteAsync(req.Context(), req.Header.NodeId, input.Fh, (long)input.Offset, data, (FuseWriteFlags)input.WriteFlags, (int)input.Flags).ConfigureAwait(false);
        if (result.IsOk) req.ReplyStruct(new FuseWriteOut { Size = (uint)result.Value });
        else req.ReplyError(result.Errno);
    }

    private async ValueTask StatFsAsync(FuseRequest req)
    {
        var result = await fs.StatFsAsync(req.Context(), req.Header.NodeId).ConfigureAwait(false);
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        var s = result.Value;
        req.ReplyStruct(new FuseStatFsOut
        {
            St = new FuseKStatFs
            {
                Blocks = s.Blocks, Bfree = s.BlocksFree, Bavail = s.BlocksAvailable, Files = s.Files, Ffree = s.FilesFree,
                Bsize = s.BlockSize, NameLen = s.NameMax, Frsize = s.FragmentSize != 0 ? s.FragmentSize : s.BlockSize,
            },
        });
    }

    private async ValueTask ReleaseAsync(FuseRequest req, bool dir)
    {
        var r = req.Reader();
        var input = r.Read<FuseReleaseIn>();
        var ctx = req.Context();
        int errno = dir
            ? await fs.ReleaseDirAsync(ctx, req.Header.NodeId, input.Fh, (int)input.Flags).ConfigureAwait(false)
            : await fs.ReleaseAsync(ctx, req.Header.NodeId, input.Fh, (int)input.Flags, (FuseReleaseFlags)input.ReleaseFlags, input.LockOwner).ConfigureAwait(false);
        req.ReplyError(errno == LinuxErrno.ENOSYS ? 0 : errno);
    }

    private async ValueTask FsyncAsync(FuseRequest req, bool dir)
    {
        var r = req.Reader();
        var input = r.Read<FuseFsyncIn>();
        bool dataOnly = (input.FsyncFlags & 1) != 0;
        var ctx = req.Context();
        req.ReplyError(dir
            ? await fs.FsyncDirAsync(ctx, req.Header.NodeId, input.Fh, dataOnly).ConfigureAwait(false)
            : await fs.FsyncAsync(ctx, req.Header.NodeId, input.Fh, dataOnly).ConfigureAwait(false));
    }

    private async ValueTask FlushAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseFlushIn>();
        req.ReplyError(await fs.FlushAsync(req.Context(), req.Header.NodeId, input.Fh, input.LockOwner).ConfigureAwait(false));
    }

    private async ValueTask SetXattrAsync(FuseRequest req)
    {
        var r = req.Reader();
        int wireSize = (Flags & FuseInitFlags.SetxattrExt) != 0 ? Marshal.SizeOf<FuseSetXattrIn>() : 8;
        var input = r.Read<FuseSetXattrIn>(wireSize);
        if (!TryName(req, ref r, out var name)) return;
        var value = r.ReadBytes((int)input.Size).ToArray();
        req.ReplyError(await fs.SetXattrAsync(req.Context(), req.Header.NodeId, name, value, (int)input.Flags).ConfigureAwait(false));
    }

    private async ValueTask GetXattrAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseGetXattrIn>();
        if (!TryName(req, ref r, out var name)) return;
        var result = await fs.GetXattrAsync(req.Context(), req.Header.NodeId, name).ConfigureAwait(false);
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        ReplySized(req, input.Size, result.Value.Span);
    }

    /// <summary>The xattr size protocol: size 0 asks for the length; too small a size is ERANGE.</summary>
    private static void ReplySized(FuseRequest req, uint size, ReadOnlySpan<byte> value)
    {
        if (size == 0) req.ReplyStruct(new FuseGetXattrOut { Size = (uint)value.Length });
        else if (value.Length > size) req.ReplyError(LinuxErrno.ERANGE);
        else req.ReplyData(value);
    }

    private async ValueTask ListXattrAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseGetXattrIn>();
        var result = await fs.ListXattrAsync(req.Context(), req.Header.NodeId).ConfigureAwait(false);
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        var list = new List<byte>();
        foreach (var name in result.Value)
        {
            list.AddRange(FileNameEncoding.GetBytes(name));
            list.Add(0);
        }
        ReplySized(req, input.Size, CollectionsMarshal.AsSpan(list));
    }

    private async ValueTask RemoveXattrAsync(FuseRequest req)
    {
        var r = req.Reader();
        if (!TryName(req, ref r, out var name)) return;
        req.ReplyError(await fs.RemoveXattrAsync(req.Context(), req.Header.NodeId, name).ConfigureAwait(false));
    }

    private async ValueTask ReadDirAsync(FuseRequest req, bool plus)
    {
        var r = req.Reader();
        var input = r.Read<FuseReadIn>();
        int size = (int)Math.Min(input.Size, (uint)(req.Buffer.Length - FuseRequest.PayloadOffset));
        var list = new FuseDirList(req.Buffer.AsMemory(FuseRequest.PayloadOffset, size), plus, EntryTimeout, AttrTimeout);
        int errno = await fs.ReadDirAsync(req.Context(), req.Header.NodeId, input.Fh, (long)input.Offset, list).ConfigureAwait(false);
        if (errno != 0) { req.ReplyError(errno); return; }
        var referenced = list.Referenced;
        foreach (var id in referenced) lookups.Add(id);
        if (req.ReplyData(req.Buffer.AsSpan(FuseRequest.PayloadOffset, list.Length)) != 0)
            foreach (var id in referenced) Unreference(id, 1);
    }

    private static FuseFileLock FromAbi(in FuseFileLockAbi lk) =>
        new((long)lk.Start, (long)Math.Min(lk.End, long.MaxValue), (FuseLockType)lk.Type, lk.Pid);

    private async ValueTask GetLkAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseLkIn>();
        var result = await fs.GetLkAsync(req.Context(), req.Header.NodeId, input.Fh, input.Owner, FromAbi(input.Lk)).ConfigureAwait(false);
        if (!result.IsOk) { req.ReplyError(result.Errno); return; }
        var lk = result.Value;
        req.ReplyStruct(new FuseLkOut { Lk = new FuseFileLockAbi { Start = (ulong)lk.Start, End = (ulong)lk.End, Type = (uint)lk.Type, Pid = lk.Pid } });
    }

    private async ValueTask SetLkAsync(FuseRequest req, bool wait)
    {
        var r = req.Reader();
        var input = r.Read<FuseLkIn>();
        bool isFlock = (input.LkFlags & FuseLkFlock) != 0;
        req.ReplyError(await fs.SetLkAsync(req.Context(), req.Header.NodeId, input.Fh, input.Owner, FromAbi(input.Lk), wait, isFlock).ConfigureAwait(false));
    }

    private async ValueTask AccessAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseAccessIn>();
        req.ReplyError(await fs.AccessAsync(req.Context(), req.Header.NodeId, (int)input.Mask).ConfigureAwait(false));
    }

    private async ValueTask FallocateAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseFallocateIn>();
        req.ReplyError(await fs.FallocateAsync(req.Context(), req.Header.NodeId, input.Fh, (long)input.Offset, (long)input.Length, (int)input.Mode).ConfigureAwait(false));
    }

    private async ValueTask LseekAsync(FuseRequest req)
    {
        var r = req.Reader();
        var input = r.Read<FuseLseekIn>();
        if (input.Whence is not (SeekData or SeekHole)) { req.ReplyError(LinuxErrno.EINVAL); return; }
        var result = await fs.LseekAsync(req.Context(), req.Header.NodeId, input.Fh, (long)input.Offset, (int)input.Whence).ConfigureAwait(false);
        if (result.IsOk) req.ReplyStruct(new FuseLseekOut { Offset = (ulong)result.Value });
        else req.ReplyError(result.Errno);
    }

    private async ValueTask CopyFileRangeAsync(FuseRequest req)
    {
        var r = req.Reader();
        var i = r.Read<FuseCopyFileRangeIn>();
        var result = await fs.CopyFileRangeAsync(req.Context(), req.Header.NodeId, i.FhIn, (long)i.OffIn, i.NodeIdOut, i.FhOut, (long)i.OffOut, (long)Math.Min(i.Len, uint.MaxValue), i.Flags).ConfigureAwait(false);
        if (result.IsOk) req.ReplyStruct(new FuseWriteOut { Size = (uint)result.Value });
        else req.ReplyError(result.Errno);
    }
}
