using BigFS.Fuse;
using BigFS.Protocol;

namespace BigFS.Mount;

/// <summary>Conversions between the cluster's inode attributes and the kernel's.</summary>
internal static class Attributes
{
    public static FuseAttr ToFuse(InodeAttr a, long? sizeOverride = null)
    {
        var size = sizeOverride is { } s ? (ulong)s : a.Size;
        return new FuseAttr
        {
            Ino = a.Ino,
            Size = size,
            // Holes take no space: st_blocks counts only bytes stored in chunks (du, sparse-aware cp).
            Blocks = a.Type == InodeType.File ? (Math.Min(a.StoredBytes, size) + 511) / 512 : (size + 511) / 512,
            Atime = ToTime(a.AtimeNs),
            Mtime = ToTime(a.MtimeNs),
            Ctime = ToTime(a.CtimeNs),
            Mode = a.Mode,
            Nlink = a.Nlink,
            Uid = a.Uid,
            Gid = a.Gid,
            Rdev = (uint)a.Rdev,
            BlkSize = 1 << 20,
        };
    }

    /// <summary>What a write without CAP_FSETID clears: set-user-id, and set-group-id when group-executable (else it marks mandatory locking).</summary>
    public static bool HasSetIdBitsToDrop(uint mode) =>
        (mode & ModeBits.S_ISUID) != 0 || (mode & (ModeBits.S_ISGID | GroupExecute)) == (ModeBits.S_ISGID | GroupExecute);

    private const uint GroupExecute = 0x8;

    public static FuseTime ToTime(long ns) =>
        new(Math.DivRem(ns, 1_000_000_000L, out var rem) - (rem < 0 ? 1 : 0), (uint)(rem < 0 ? rem + 1_000_000_000L : rem));

    public static long ToNanoseconds(FuseTime t) => t.Seconds * 1_000_000_000L + t.Nanoseconds;

    public static InodeType TypeOf(uint mode) => (mode & ModeBits.S_IFMT) switch
    {
        ModeBits.S_IFREG => InodeType.File,
        ModeBits.S_IFDIR => InodeType.Directory,
        ModeBits.S_IFLNK => InodeType.Symlink,
        ModeBits.S_IFIFO => InodeType.Fifo,
        ModeBits.S_IFSOCK => InodeType.Socket,
        ModeBits.S_IFCHR => InodeType.CharDevice,
        ModeBits.S_IFBLK => InodeType.BlockDevice,
        0 => InodeType.File,
        _ => InodeType.Unspecified,
    };
}
