namespace BigFS.Fuse;

/// <summary>
/// Who asked, and a token the kernel cancels (FUSE_INTERRUPT) when the caller is interrupted.
/// Uid/Gid are the caller's fsuid/fsgid: create files as them.
/// </summary>
public readonly struct FuseRequestContext(uint uid, uint gid, uint pid, ulong unique, CancellationToken cancellationToken, uint umask = 0, bool killSuidGid = false)
{
    public uint Uid { get; } = uid;
    public uint Gid { get; } = gid;
    public uint Pid { get; } = pid;
    /// <summary>The kernel's request id (for logging).</summary>
    public ulong Unique { get; } = unique;
    public CancellationToken CancellationToken { get; } = cancellationToken;
    /// <summary>
    /// MKNOD, MKDIR and CREATE with POSIX ACLs agreed (<c>FuseInitRequest.PosixAcl</c>): the
    /// caller's umask, which the mode given has not had applied. Otherwise 0 (the kernel applied it).
    /// </summary>
    public uint Umask { get; } = umask;
    /// <summary>
    /// OPEN and CREATE with HANDLE_KILLPRIV_V2 agreed (<c>FuseMountOptions.HandleKillprivV2</c>):
    /// the caller lacks CAP_FSETID (FUSE_OPEN_KILL_SUIDGID), so an O_TRUNC must take the file's
    /// set-id bits away.
    /// </summary>
    public bool KillSuidGid { get; } = killSuidGid;

    public FuseRequestContext WithKillSuidGid() => new(Uid, Gid, Pid, Unique, CancellationToken, Umask, killSuidGid: true);
}
