using BigFS.Fuse.Protocol;

namespace BigFS.Fuse;

/// <summary>
/// A name resolved to an inode (struct fuse_entry_out). Each successful reply carrying an entry
/// (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK, READDIRPLUS) adds one kernel reference to NodeId,
/// dropped later by FORGET; the session counts them and calls <see cref="IFuseFileSystem.Forget"/>.
/// </summary>
public readonly record struct FuseEntry(ulong NodeId, FuseAttr Attr)
{
    public ulong Generation { get; init; }
    /// <summary>Override of the mount's entry timeout for this name; null = mount default.</summary>
    public TimeSpan? EntryTimeout { get; init; }
    /// <summary>Override of the mount's attribute timeout; null = mount default.</summary>
    public TimeSpan? AttrTimeout { get; init; }
}

/// <summary>An open file or directory handle and how the kernel should treat its cache.</summary>
public readonly record struct FuseOpenResult(ulong Fh, FuseOpenFlags Flags = FuseOpenFlags.None);

/// <summary>CREATE's result: the new entry and its open handle.</summary>
public readonly record struct FuseCreateResult(FuseEntry Entry, FuseOpenResult Open);

/// <summary>Filesystem statistics (struct fuse_kstatfs).</summary>
public readonly record struct FuseStatFs(ulong Blocks, ulong BlocksFree, ulong BlocksAvailable,
    ulong Files, ulong FilesFree, uint BlockSize, uint NameMax = 255, uint FragmentSize = 0);

public enum FuseLockType : uint { Read = 0, Write = 1, Unlock = 2 }

/// <summary>A byte-range lock (struct fuse_file_lock); End is inclusive, long.MaxValue = to EOF.</summary>
public readonly record struct FuseFileLock(long Start, long End, FuseLockType Type, uint Pid);
