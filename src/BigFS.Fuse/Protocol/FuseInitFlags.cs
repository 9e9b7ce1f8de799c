namespace BigFS.Fuse.Protocol;

/// <summary>INIT capability flags; bits 32..63 travel in flags2 when FUSE_INIT_EXT is set.</summary>
[Flags]
public enum FuseInitFlags : ulong
{
    None = 0,
    AsyncRead = 1UL << 0,
    PosixLocks = 1UL << 1,
    FileOps = 1UL << 2,
    AtomicOTrunc = 1UL << 3,
    ExportSupport = 1UL << 4,
    BigWrites = 1UL << 5,
    DontMask = 1UL << 6,
    SpliceWrite = 1UL << 7,
    SpliceMove = 1UL << 8,
    SpliceRead = 1UL << 9,
    FlockLocks = 1UL << 10,
    HasIoctlDir = 1UL << 11,
    AutoInvalData = 1UL << 12,
    DoReaddirplus = 1UL << 13,
    ReaddirplusAuto = 1UL << 14,
    AsyncDio = 1UL << 15,
    WritebackCache = 1UL << 16,
    NoOpenSupport = 1UL << 17,
    ParallelDirops = 1UL << 18,
    HandleKillpriv = 1UL << 19,
    PosixAcl = 1UL << 20,
    AbortError = 1UL << 21,
    MaxPages = 1UL << 22,
    CacheSymlinks = 1UL << 23,
    NoOpendirSupport = 1UL << 24,
    ExplicitInvalData = 1UL << 25,
    MapAlignment = 1UL << 26,
    Submounts = 1UL << 27,
    HandleKillprivV2 = 1UL << 28,
    SetxattrExt = 1UL << 29,
    InitExt = 1UL << 30,
    InitReserved = 1UL << 31,
    SecurityCtx = 1UL << 32,
    HasInodeDax = 1UL << 33,
    CreateSuppGroup = 1UL << 34,
    HasExpireOnly = 1UL << 35,
    /// <summary>Shared mappings of files opened with FOPEN_DIRECT_IO (the kernel keeps them coherent).</summary>
    DirectIoAllowMmap = 1UL << 36,
}

/// <summary>Flags of fuse_open_out.open_flags.</summary>
[Flags]
public enum FuseOpenFlags : uint
{
    None = 0,
    DirectIo = 1 << 0,
    KeepCache = 1 << 1,
    NonSeekable = 1 << 2,
    CacheDir = 1 << 3,
    Stream = 1 << 4,
    NoFlush = 1 << 5,
    ParallelDirectWrites = 1 << 6,
}

/// <summary>fuse_setattr_in.valid bits: which attributes a SETATTR changes.</summary>
[Flags]
public enum FuseSetAttrValid : uint
{
    None = 0,
    Mode = 1 << 0,
    Uid = 1 << 1,
    Gid = 1 << 2,
    Size = 1 << 3,
    Atime = 1 << 4,
    Mtime = 1 << 5,
    Fh = 1 << 6,
    AtimeNow = 1 << 7,
    MtimeNow = 1 << 8,
    LockOwner = 1 << 9,
    Ctime = 1 << 10,
    KillSuidGid = 1 << 11,
}
