using BigFS.Metadata.Model;
using BigFS.Protocol;

namespace BigFS.Metadata.Logic;

/// <summary>Mode bits and the conversion of inode records to wire attributes.</summary>
public static class Attrs
{
    public const int SetUid = 0x800;   // 04000
    public const int SetGid = 0x400;   // 02000
    public const int GroupExec = 0x8;  // 00010
    public const int PermissionMask = 0xFFF; // 07777

    public static int TypeBits(int type) => (InodeType)type switch
    {
        InodeType.File => 0x8000,
        InodeType.Directory => 0x4000,
        InodeType.Symlink => 0xA000,
        InodeType.Fifo => 0x1000,
        InodeType.Socket => 0xC000,
        InodeType.CharDevice => 0x2000,
        InodeType.BlockDevice => 0x6000,
        _ => 0,
    };

    public static InodeAttr Of(InodeRecord i) => new()
    {
        Ino = (ulong)i.Id,
        Type = (InodeType)i.Type,
        Mode = (uint)(TypeBits(i.Type) | (i.Mode & PermissionMask)),
        Uid = (uint)i.Uid,
        Gid = (uint)i.Gid,
        Nlink = (uint)i.Nlink,
        Size = (ulong)i.Size,
        Rdev = (ulong)i.Rdev,
        AtimeNs = i.AtimeNs,
        MtimeNs = i.MtimeNs,
        CtimeNs = i.CtimeNs,
        Version = (ulong)i.Version,
        Goal = (uint)i.Goal,
        StoredBytes = (ulong)i.StoredBytes,
        Generation = 1,
    };
}
