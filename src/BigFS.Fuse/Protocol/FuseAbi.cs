using System.Runtime.InteropServices;

namespace BigFS.Fuse.Protocol;

// The C structs of <linux/fuse.h> (7.38), field for field. Little-endian, naturally aligned;
// every struct is padded to 8 bytes. Sizes are checked against the kernel header in tests.
#pragma warning disable CS0649 // fields are filled by reinterpreting request bytes

[StructLayout(LayoutKind.Sequential)]
public struct FuseInHeader
{
    public uint Len;
    public uint Opcode;
    public ulong Unique;
    public ulong NodeId;
    public uint Uid;
    public uint Gid;
    public uint Pid;
    public ushort TotalExtLen;
    public ushort Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseOutHeader
{
    public uint Len;
    public int Error;
    public ulong Unique;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseAttrAbi
{
    public ulong Ino, Size, Blocks, Atime, Mtime, Ctime;
    public uint AtimeNsec, MtimeNsec, CtimeNsec, Mode, Nlink, Uid, Gid, Rdev, BlkSize, Flags;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseKStatFs
{
    public ulong Blocks, Bfree, Bavail, Files, Ffree;
    public uint Bsize, NameLen, Frsize, Padding;
    public uint Spare0, Spare1, Spare2, Spare3, Spare4, Spare5;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseFileLockAbi
{
    public ulong Start, End;
    public uint Type, Pid;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseEntryOut
{
    public ulong NodeId, Generation, EntryValid, AttrValid;
    public uint EntryValidNsec, AttrValidNsec;
    public FuseAttrAbi Attr;
}

[StructLayout(LayoutKind.Sequential)] public struct FuseForgetIn { public ulong NLookup; }
[StructLayout(LayoutKind.Sequential)] public struct FuseForgetOne { public ulong NodeId, NLookup; }
[StructLayout(LayoutKind.Sequential)] public struct FuseBatchForgetIn { public uint Count, Dummy; }
[StructLayout(LayoutKind.Sequential)] public struct FuseGetAttrIn { public uint GetAttrFlags, Dummy; public ulong Fh; }

[StructLayout(LayoutKind.Sequential)]
public struct FuseAttrOut
{
    public ulong AttrValid;
    public uint AttrValidNsec, Dummy;
    public FuseAttrAbi Attr;
}

[StructLayout(LayoutKind.Sequential)] public struct FuseMkNodIn { public uint Mode, Rdev, Umask, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseMkDirIn { public uint Mode, Umask; }
[StructLayout(LayoutKind.Sequential)] public struct FuseRenameIn { public ulong NewDir; }
[StructLayout(LayoutKind.Sequential)] public struct FuseRename2In { public ulong NewDir; public uint Flags, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseLinkIn { public ulong OldNodeId; }

[StructLayout(LayoutKind.Sequential)]
public struct FuseSetAttrIn
{
    public uint Valid, Padding;
    public ulong Fh, Size, LockOwner, Atime, Mtime, Ctime;
    public uint AtimeNsec, MtimeNsec, CtimeNsec, Mode, Unused4, Uid, Gid, Unused5;
}

[StructLayout(LayoutKind.Sequential)] public struct FuseOpenIn { public uint Flags, OpenFlags; }
/// <summary>fuse_open_in/fuse_create_in open_flags.</summary>
public static class FuseOpenInFlags { public const uint KillSuidGid = 1 << 0; }
[StructLayout(LayoutKind.Sequential)] public struct FuseCreateIn { public uint Flags, Mode, Umask, OpenFlags; }
[StructLayout(LayoutKind.Sequential)] public struct FuseOpenOut { public ulong Fh; public uint OpenFlags, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseReleaseIn { public ulong Fh; public uint Flags, ReleaseFlags; public ulong LockOwner; }
[StructLayout(LayoutKind.Sequential)] public struct FuseFlushIn { public ulong Fh; public uint Unused, Padding; public ulong LockOwner; }

[StructLayout(LayoutKind.Sequential)]
public struct FuseReadIn
{
    public ulong Fh, Offset;
    public uint Size, ReadFlags;
    public ulong LockOwner;
    public uint Flags, Padding;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseWriteIn
{
    public ulong Fh, Offset;
    public uint Size, WriteFlags;
    public ulong LockOwner;
    public uint Flags, Padding;
}

[StructLayout(LayoutKind.Sequential)] public struct FuseWriteOut { public uint Size, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseStatFsOut { public FuseKStatFs St; }
[StructLayout(LayoutKind.Sequential)] public struct FuseFsyncIn { public ulong Fh; public uint FsyncFlags, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseSetXattrIn { public uint Size, Flags, SetXattrFlags, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseGetXattrIn { public uint Size, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseGetXattrOut { public uint Size, Padding; }

[StructLayout(LayoutKind.Sequential)]
public struct FuseLkIn
{
    public ulong Fh, Owner;
    public FuseFileLockAbi Lk;
    public uint LkFlags, Padding;
}

[StructLayout(LayoutKind.Sequential)] public struct FuseLkOut { public FuseFileLockAbi Lk; }
[StructLayout(LayoutKind.Sequential)] public struct FuseAccessIn { public uint Mask, Padding; }

[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseInitIn
{
    public uint Major, Minor, MaxReadahead, Flags, Flags2;
    public fixed uint Unused[11];
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseInitOut
{
    public uint Major, Minor, MaxReadahead, Flags;
    public ushort MaxBackground, CongestionThreshold;
    public uint MaxWrite, TimeGran;
    public ushort MaxPages, MapAlignment;
    public uint Flags2;
    public fixed uint Unused[7];
}

[StructLayout(LayoutKind.Sequential)] public struct FuseInterruptIn { public ulong Unique; }
[StructLayout(LayoutKind.Sequential)] public struct FuseFallocateIn { public ulong Fh, Offset, Length; public uint Mode, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseLseekIn { public ulong Fh, Offset; public uint Whence, Padding; }
[StructLayout(LayoutKind.Sequential)] public struct FuseLseekOut { public ulong Offset; }

[StructLayout(LayoutKind.Sequential)]
public struct FuseCopyFileRangeIn
{
    public ulong FhIn, OffIn, NodeIdOut, FhOut, OffOut, Len, Flags;
}

[StructLayout(LayoutKind.Sequential)]
public struct FuseDirentHeader
{
    public ulong Ino, Off;
    public uint NameLen, Type;
}

[StructLayout(LayoutKind.Sequential)] public struct FuseNotifyInvalInodeOut { public ulong Ino; public long Off, Len; }
[StructLayout(LayoutKind.Sequential)] public struct FuseNotifyInvalEntryOut { public ulong Parent; public uint NameLen, Flags; }
[StructLayout(LayoutKind.Sequential)] public struct FuseNotifyStoreOut { public ulong NodeId, Offset; public uint Size, Padding; }
