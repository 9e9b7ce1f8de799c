namespace BigFS.Fuse;

/// <summary>How to mount and serve a filesystem.</summary>
public sealed record FuseMountOptions
{
    /// <summary>Shown as the source in /proc/mounts.</summary>
    public string FsName { get; init; } = "fuse";
    /// <summary>Filesystem type shown as "fuse.{Subtype}"; null = plain "fuse".</summary>
    public string? Subtype { get; init; }
    public bool AllowOther { get; init; }
    /// <summary>Let the kernel check permissions from the mode bits (recommended).</summary>
    public bool DefaultPermissions { get; init; } = true;
    public bool ReadOnly { get; init; }
    /// <summary>Mode of the root (0040000 dir; 0100000 mounts the filesystem over a regular file).</summary>
    public uint RootMode { get; init; } = ModeBits.S_IFDIR;
    /// <summary>Most threads reading /dev/fuse. They start on demand (one more whenever every
    /// reader is busy), so this bounds concurrency and memory (one max_write buffer each).</summary>
    public int ReaderThreads { get; init; } = 8;
    public uint MaxWrite { get; init; } = 1 << 20;
    /// <summary>Asynchronous requests (read-ahead, async direct I/O) the kernel keeps in flight.</summary>
    public ushort MaxBackground { get; init; } = 64;
    public bool WritebackCache { get; init; }
    /// <summary>
    /// FUSE_AUTO_INVAL_DATA: the kernel drops a file's cached pages whenever attributes it fetches
    /// show a new mtime, its own writes' included. Off, pages go only on a size change, an open
    /// without KEEP_CACHE or the filesystem's own invalidation, which it must then send for
    /// changes made elsewhere (<see cref="IFuseNotifier.InvalidateInode"/>).
    /// </summary>
    public bool AutoInvalData { get; init; } = true;
    /// <summary>
    /// FUSE_HANDLE_KILLPRIV_V2: the filesystem drops set-id bits (the kernel flags the requests
    /// whose caller lacks CAP_FSETID) and security.capability on write, truncate and chown
    /// itself. In return the kernel stops asking for security.capability before every write once
    /// a file had none (SB_NOSEC), until its attributes are next refreshed.
    /// </summary>
    public bool HandleKillprivV2 { get; init; }
    /// <summary>
    /// The requests a FUSE_INTERRUPT cancels (their handler's
    /// <see cref="FuseRequestContext.CancellationToken"/>); null = every request. Others finish
    /// as if no signal had come, as on a local filesystem, where a signal does not make a file
    /// operation fail: any signal interrupts (the runtime's own included), not only fatal ones.
    /// A request whose process is being killed is cancelled whatever its opcode (see
    /// <c>FatalSignal</c>): a kill does not wait for a slow call.
    /// </summary>
    public IReadOnlySet<Protocol.FuseOpcode>? InterruptibleRequests { get; init; }
    public bool PosixLocks { get; init; } = true;
    public bool FlockLocks { get; init; } = true;
    /// <summary>POSIX ACLs enforced by the kernel; the filesystem applies the umask and inherits default ACLs (<see cref="FuseRequestContext.Umask"/>).</summary>
    public bool PosixAcl { get; init; }
    public TimeSpan EntryTimeout { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan AttrTimeout { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>How long the kernel caches "no such name" (0 = not cached).</summary>
    public TimeSpan NegativeTimeout { get; init; } = TimeSpan.Zero;
    /// <summary>Value written to the mount's bdi read_ahead_kb (0 = leave the kernel's default).</summary>
    public int ReadAheadKb { get; init; } = 1024;
    /// <summary>null = mount(2) when root, fusermount3 otherwise; true/false forces it.</summary>
    public bool? UseFusermount { get; init; }
    /// <summary>How long MountAsync waits for the kernel's INIT.</summary>
    public TimeSpan InitTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
