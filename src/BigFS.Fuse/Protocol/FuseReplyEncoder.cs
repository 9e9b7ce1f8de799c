using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BigFS.Fuse.Protocol;

/// <summary>Encodes replies and notifications: fuse_out_header followed by the payload.</summary>
public static class FuseReplyEncoder
{
    public static readonly int OutHeaderSize = Unsafe.SizeOf<FuseOutHeader>();

    /// <summary>Writes the out header for a reply of <paramref name="payloadLength"/> bytes.</summary>
    public static void WriteHeader(Span<byte> destination, ulong unique, int errno, int payloadLength)
    {
        var header = new FuseOutHeader { Len = (uint)(OutHeaderSize + payloadLength), Error = -errno, Unique = unique };
        MemoryMarshal.Write(destination, in header);
    }

    /// <summary>Header + one struct; returns the bytes written.</summary>
    public static int EncodeStruct<T>(Span<byte> destination, ulong unique, in T payload) where T : unmanaged
    {
        int size = Unsafe.SizeOf<T>();
        WriteHeader(destination, unique, 0, size);
        MemoryMarshal.Write(destination[OutHeaderSize..], in payload);
        return OutHeaderSize + size;
    }

    public static int EncodeError(Span<byte> destination, ulong unique, int errno)
    {
        WriteHeader(destination, unique, errno, 0);
        return OutHeaderSize;
    }

    /// <summary>A notification: unique 0 and the notify code in the error field.</summary>
    public static int EncodeNotifyHeader(Span<byte> destination, FuseNotifyCode code, int payloadLength)
    {
        var header = new FuseOutHeader { Len = (uint)(OutHeaderSize + payloadLength), Error = (int)code, Unique = 0 };
        MemoryMarshal.Write(destination, in header);
        return OutHeaderSize;
    }

    public static FuseAttrAbi ToAbi(in FuseAttr a) => new()
    {
        Ino = a.Ino,
        Size = a.Size,
        Blocks = a.Blocks != 0 ? a.Blocks : (a.Size + 511) / 512,
        Atime = (ulong)a.Atime.Seconds, AtimeNsec = a.Atime.Nanoseconds,
        Mtime = (ulong)a.Mtime.Seconds, MtimeNsec = a.Mtime.Nanoseconds,
        Ctime = (ulong)a.Ctime.Seconds, CtimeNsec = a.Ctime.Nanoseconds,
        Mode = a.Mode,
        Nlink = a.Nlink,
        Uid = a.Uid,
        Gid = a.Gid,
        Rdev = a.Rdev,
        BlkSize = a.BlkSize != 0 ? a.BlkSize : 4096,
    };

    public static FuseEntryOut ToEntryOut(in FuseEntry e, TimeSpan entryTimeout, TimeSpan attrTimeout)
    {
        var et = e.EntryTimeout ?? entryTimeout;
        var at = e.AttrTimeout ?? attrTimeout;
        var (es, ens) = Split(et);
        var (ats, atns) = Split(at);
        return new FuseEntryOut
        {
            NodeId = e.NodeId, Generation = e.Generation,
            EntryValid = es, EntryValidNsec = ens, AttrValid = ats, AttrValidNsec = atns,
            Attr = ToAbi(e.Attr),
        };
    }

    public static FuseAttrOut ToAttrOut(in FuseAttr a, TimeSpan attrTimeout)
    {
        var (s, ns) = Split(attrTimeout);
        return new FuseAttrOut { AttrValid = s, AttrValidNsec = ns, Attr = ToAbi(a) };
    }

    public static (ulong Seconds, uint Nanoseconds) Split(TimeSpan t)
    {
        if (t <= TimeSpan.Zero) return (0, 0);
        long ticks = t.Ticks;
        return ((ulong)(ticks / TimeSpan.TicksPerSecond), (uint)(ticks % TimeSpan.TicksPerSecond * 100));
    }
}
