using BigFS.Core;
using BigFS.Fuse;
using BigFS.Protocol;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// Advisory locks (fcntl record locks, flock) held on the metadata server, so processes on
/// different mounts exclude each other as processes on one machine do. As with NFS, a lock
/// also orders data between mounts: releasing one commits this mount's writes to the file
/// first, and taking one drops what the kernel cached of the file if another mount committed
/// since. This mount keeps a copy of what it holds (<see cref="HeldLocks"/>): what a close
/// releases, and what it takes back if the server restarts.
/// </summary>
internal sealed partial class BigFsFileSystem
{
    private readonly HeldLocks _locks = new();

    public ValueTask<FuseResult<FuseFileLock>> GetLkAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong owner, FuseFileLock lk) => Call<FuseFileLock>(async () =>
    {
        if (lk.Type == FuseLockType.Unlock) return lk;
        var reply = await _ns.TestLockAsync(LockRequestOf(ino, owner, lk, flock: false, wait: false), cancellationToken: ctx.CancellationToken);
        if (reply.Errno != 0) return new FuseError(InodeErrno(ino, reply.Errno));
        return reply.Type == LockType.LockUnlock
            ? lk with { Type = FuseLockType.Unlock }
            : new FuseFileLock((long)reply.Start, (long)reply.End, reply.Type == LockType.LockWrite ? FuseLockType.Write : FuseLockType.Read, reply.Pid);
    }, "getlk");

    public ValueTask<int> SetLkAsync(FuseRequestContext ctx, ulong ino, ulong fh, ulong owner, FuseFileLock lk, bool wait, bool isFlock) => Call(async () =>
    {
        // A flock belongs to the open file. The kernel's owner id for it is the file's address,
        // which the next open may reuse before this one's (asynchronous) RELEASE is handled: that
        // release would then drop the new file's lock. Our handle id is never reused.
        if (isFlock)
            owner = fh;
        var (start, end) = isFlock ? (0L, long.MaxValue) : (lk.Start, lk.End);
        if (!isFlock && lk.Type != FuseLockType.Unlock)
            _locks.LockedThrough(fh, owner);
        // Whoever takes the lock next, on any mount, must find this mount's writes committed.
        if (lk.Type != FuseLockType.Write)
            await Commit(ino, "unlock");
        StatusReply reply;
        try
        {
            reply = await SendLockAsync(LockRequestOf(ino, owner, lk with { Start = start, End = end }, isFlock, wait), ctx.CancellationToken);
        }
        catch
        {
            if (lk.Type != FuseLockType.Unlock)
                _locks.Uncertain(ino, isFlock, owner);   // granted or not: its close must release
            throw;
        }
        if (reply.Errno != 0)
            return InodeErrno(ino, reply.Errno);
        _locks.Granted(ino, isFlock, owner, start, end, RangeTypeOf(lk.Type), lk.Pid);
        if (lk.Type != FuseLockType.Unlock)
            await RevalidateOpenFileAsync(ino);   // not the request's token: granted, an interrupt must not turn it into an error
        return 0;
    }, "setlk");

    /// <summary>The last close of an open file: its flock (owned by its handle id), and its open-file-description record locks.</summary>
    private async ValueTask ReleaseLocksOfHandle(ulong ino, ulong fh)
    {
        await ReleaseLocksOf(ino, fh, flock: true);
        foreach (var owner in _locks.ForgetHandle(fh))
            await ReleaseLocksOf(ino, owner, flock: false);
    }

    /// <summary>Close of a descriptor (FLUSH) releases its process's record locks on the file; the last close of an open file (RELEASE) its flock.</summary>
    private async ValueTask ReleaseLocksOf(ulong ino, ulong owner, bool flock)
    {
        if (!_locks.MayHold(ino, flock, owner))
            return;   // the usual close: nothing to tell the server
        var unlock = new FuseFileLock(0, long.MaxValue, FuseLockType.Unlock, 0);
        try
        {
            var reply = await SendLockAsync(LockRequestOf(ino, owner, unlock, flock, wait: false));
            if (reply.Errno is 0 or LinuxErrno.ENOENT)
                _locks.Released(ino, flock, owner);
        }
        catch (Grpc.Core.RpcException e)
        {
            // Kept as held: the next close of the owner tries again, and the session's end releases it anyway.
            logger.LogWarning("Releasing the locks of owner {Owner} on inode {Ino} failed: {Status}", owner, ino, e.StatusCode);
        }
    }

    /// <summary>
    /// Like an open (close-to-open): an open file sees what other mounts committed, and the
    /// kernel's pages of it are gone when this completes, if that changed its data. Done before
    /// a lock is granted, and when the change feed tells of another mount's change.
    /// </summary>
    private async ValueTask RevalidateOpenFileAsync(ulong ino)
    {
        var reply = await FetchAttrAsync(ino, CancellationToken.None);
        if (reply.Errno != 0)
            return;
        switch (_open.Revalidate(reply.Attr))
        {
            case Revalidation.Unchanged:
                // Another revalidation (the change feed's) may have seen this version first and
                // still be dropping the pages. Until that is done the kernel discards attributes it
                // fetches (FUSE attr_version), so the first read after a grant would stop at the old size.
                await _open.InvalidationsDoneAsync(ino);
                return;
            case Revalidation.AttributesChanged:
                _notifier?.InvalidateInode(ino, offset: -1);
                return;
        }
        try
        {
            if (Invalidator is { } invalidator)
                await invalidator.InvalidateAsync(ino);
        }
        finally
        {
            _open.InvalidationDone(ino);
        }
    }

    /// <summary>After the metadata server restarted (or the session expired), takes back every lock held here.</summary>
    internal async Task ReclaimLocksAsync(string sessionId, CancellationToken ct)
    {
        var held = _locks.Snapshot();
        if (held.Count == 0)
            return;
        var lost = 0;
        foreach (var (ino, flock, h) in held)
        {
            var request = LockRequestOf(ino, h.Owner, new FuseFileLock(h.Start, h.End, h.Type == RangeLockType.Write ? FuseLockType.Write : FuseLockType.Read, h.Pid), flock, wait: false);
            request.SessionId = sessionId;
            request.Reclaim = true;
            var reply = await SendLockAsync(request, ct);
            if (reply.Errno == 0)
                continue;
            lost++;
            var handles = _locks.Lost(ino, flock, h.Owner);
            logger.LogError("Lost a lock after the metadata server restarted: inode {Ino}, owner {Owner}, [{Start}, {End}] (errno {Errno}): another mount took it first; I/O through the {Handles} open file(s) it was held through now fails with EIO",
                ino, h.Owner, h.Start, h.End, reply.Errno, handles.Count);
        }
        logger.LogInformation("Took back {Count} locks under session {Session} ({Lost} lost)", held.Count, sessionId, lost);
    }

    /// <summary>A waiting request goes over gRPC, whose cancellation reaches the server; any other over the fast transport.</summary>
    private async Task<StatusReply> SendLockAsync(LockRequest request, CancellationToken ct = default) =>
        request.Wait ? await _ns.LockAsync(request, cancellationToken: ct) : await _ns.TryLockAsync(request, cancellationToken: ct);

    private LockRequest LockRequestOf(ulong ino, ulong owner, FuseFileLock lk, bool flock, bool wait) => new()
    {
        SessionId = session.Id, Ino = ino, Owner = owner, Flock = flock, Wait = wait, Pid = lk.Pid,
        Type = lk.Type switch { FuseLockType.Read => LockType.LockRead, FuseLockType.Write => LockType.LockWrite, _ => LockType.LockUnlock },
        Start = (ulong)Math.Max(0, lk.Start), End = (ulong)Math.Max(0, lk.End),
    };

    private static RangeLockType? RangeTypeOf(FuseLockType type) => type switch
    {
        FuseLockType.Read => RangeLockType.Read,
        FuseLockType.Write => RangeLockType.Write,
        _ => null,
    };
}
