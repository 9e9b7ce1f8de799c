namespace BigFS.Fuse;

/// <summary>The attributes of an inode (struct fuse_attr). Mode includes the file type bits (S_IFMT).</summary>
public record struct FuseAttr
{
    public ulong Ino { get; set; }
    public ulong Size { get; set; }
    /// <summary>512-byte blocks allocated; 0 means "compute from Size".</summary>
    public ulong Blocks { get; set; }
    public FuseTime Atime { get; set; }
    public FuseTime Mtime { get; set; }
    public FuseTime Ctime { get; set; }
    public uint Mode { get; set; }
    public uint Nlink { get; set; }
    public uint Uid { get; set; }
    public uint Gid { get; set; }
    public uint Rdev { get; set; }
    public uint BlkSize { get; set; }
}

/// <summary>File type bits of a mode (S_IFMT and friends).</summary>
public static class ModeBits
{
    public const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000,
        S_IFBLK = 0x6000, S_IFDIR = 0x4000, S_IFCHR = 0x2000, S_IFIFO = 0x1000;
    public const uint S_ISUID = 0x800, S_ISGID = 0x400, S_ISVTX = 0x200;

    public static bool IsDir(uint mode) => (mode & S_IFMT) == S_IFDIR;
    public static bool IsRegular(uint mode) => (mode & S_IFMT) == S_IFREG;
    public static bool IsSymlink(uint mode) => (mode & S_IFMT) == S_IFLNK;

    /// <summary>The DT_* value of a mode, for directory entries.</summary>
    public static uint ToDirentType(uint mode) => (mode & S_IFMT) >> 12;
}
