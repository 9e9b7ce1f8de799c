namespace BigFS.Fuse.Protocol;

/// <summary>What this side wants from INIT; the result is the intersection with what the kernel offers.</summary>
public sealed record FuseInitRequest
{
    public uint MaxWrite { get; init; } = 1 << 20;
    public ushort MaxBackground { get; init; } = 64;
    public bool PosixLocks { get; init; } = true;
    public bool FlockLocks { get; init; } = true;
    public bool WritebackCache { get; init; }
    public bool AutoInvalData { get; init; } = true;
    /// <summary>See <see cref="FuseMountOptions.HandleKillprivV2"/>.</summary>
    public bool HandleKillprivV2 { get; init; }
    public bool ExportSupport { get; init; } = true;
    public bool ReaddirPlus { get; init; } = true;
    /// <summary>
    /// The kernel enforces POSIX ACLs (read with getxattr) and leaves the umask to the filesystem
    /// (FUSE_DONT_MASK: MKNOD, MKDIR and CREATE pass it in <see cref="FuseRequestContext.Umask"/>),
    /// which must apply it or, under a directory with a default ACL, inherit that instead.
    /// </summary>
    public bool PosixAcl { get; init; }
    public uint TimeGranularityNs { get; init; } = 1;
}

/// <summary>The outcome of INIT: the reply to send and the settings both sides agreed on.</summary>
public readonly record struct FuseInitResult(FuseInitOut Reply, FuseInitFlags Flags, uint KernelMinor, uint MaxWrite, uint MaxReadahead, int Errno);

/// <summary>INIT negotiation as a pure function (FUSE 7.31 or later required).</summary>
public static class FuseInitNegotiation
{
    public const uint KernelMajor = 7;
    public const uint SupportedMinor = 38;
    public const uint MinimumMinor = 31;
    public const int PageSize = 4096;

    public static FuseInitResult Negotiate(in FuseInitIn request, FuseInitRequest wanted)
    {
        var reply = new FuseInitOut { Major = KernelMajor, Minor = SupportedMinor };
        if (request.Major > KernelMajor)
            // The kernel then retries INIT with our major version.
            return new FuseInitResult(reply, FuseInitFlags.None, 0, 0, 0, 0);
        if (request.Major < KernelMajor || request.Minor < MinimumMinor)
            return new FuseInitResult(reply, FuseInitFlags.None, request.Minor, 0, 0, LinuxErrno.EPROTO);

        var offered = (FuseInitFlags)request.Flags;
        if ((offered & FuseInitFlags.InitExt) != 0) offered |= (FuseInitFlags)((ulong)request.Flags2 << 32);

        var want = FuseInitFlags.AsyncRead | FuseInitFlags.AtomicOTrunc | FuseInitFlags.BigWrites
            | FuseInitFlags.ParallelDirops | FuseInitFlags.MaxPages | FuseInitFlags.AsyncDio
            | FuseInitFlags.HasIoctlDir | FuseInitFlags.InitExt
            | FuseInitFlags.DirectIoAllowMmap;   // a filesystem's direct-I/O files can still be mapped shared
        if (wanted.ReaddirPlus) want |= FuseInitFlags.DoReaddirplus | FuseInitFlags.ReaddirplusAuto;
        if (wanted.PosixLocks) want |= FuseInitFlags.PosixLocks;
        if (wanted.FlockLocks) want |= FuseInitFlags.FlockLocks;
        if (wanted.ExportSupport) want |= FuseInitFlags.ExportSupport;
        if (wanted.WritebackCache) want |= FuseInitFlags.WritebackCache;
        if (wanted.AutoInvalData) want |= FuseInitFlags.AutoInvalData;
        if (wanted.HandleKillprivV2) want |= FuseInitFlags.HandleKillprivV2;
        if (wanted.PosixAcl) want |= FuseInitFlags.PosixAcl | FuseInitFlags.DontMask;
        var agreed = offered & want;

        uint maxWrite = Math.Clamp(wanted.MaxWrite, 4096u, 16u << 20);
        ushort maxPages = 32; // the kernel's default when FUSE_MAX_PAGES is not agreed
        if ((agreed & FuseInitFlags.MaxPages) != 0)
            maxPages = (ushort)Math.Clamp((maxWrite + PageSize - 1) / PageSize, 1, ushort.MaxValue);
        else
            maxWrite = Math.Min(maxWrite, 32u * PageSize);

        reply.Minor = Math.Min(request.Minor, SupportedMinor);
        reply.MaxReadahead = request.MaxReadahead;
        reply.Flags = (uint)((ulong)agreed & 0xFFFF_FFFF);
        reply.Flags2 = (uint)((ulong)agreed >> 32);
        reply.MaxBackground = wanted.MaxBackground;
        reply.CongestionThreshold = (ushort)(wanted.MaxBackground * 3 / 4);
        reply.MaxWrite = maxWrite;
        reply.TimeGran = wanted.TimeGranularityNs;
        reply.MaxPages = maxPages;
        return new FuseInitResult(reply, agreed, request.Minor, maxWrite, request.MaxReadahead, 0);
    }
}
