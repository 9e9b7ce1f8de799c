using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BigFS.Fuse.Protocol;

/// <summary>Packs READDIR (fuse_dirent) and READDIRPLUS (fuse_direntplus) records, 8-byte aligned.</summary>
public static class FuseDirentPacker
{
    public static readonly int DirentHeaderSize = Unsafe.SizeOf<FuseDirentHeader>();       // 24
    public static readonly int EntryOutSize = Unsafe.SizeOf<FuseEntryOut>();               // 128

    public static int Align8(int x) => (x + 7) & ~7;

    public static int DirentSize(int nameLength) => Align8(DirentHeaderSize + nameLength);
    public static int DirentPlusSize(int nameLength) => Align8(EntryOutSize + DirentHeaderSize + nameLength);

    /// <summary>Writes one dirent; returns bytes used, or 0 when it does not fit.</summary>
    public static int TryPack(Span<byte> destination, ulong ino, ulong nextOffset, uint type, ReadOnlySpan<byte> name)
    {
        int size = DirentSize(name.Length);
        if (size > destination.Length) return 0;
        var header = new FuseDirentHeader { Ino = ino, Off = nextOffset, NameLen = (uint)name.Length, Type = type };
        MemoryMarshal.Write(destination, in header);
        name.CopyTo(destination[DirentHeaderSize..]);
        destination[(DirentHeaderSize + name.Length)..size].Clear();
        return size;
    }

    /// <summary>Writes one direntplus; returns bytes used, or 0 when it does not fit.</summary>
    public static int TryPackPlus(Span<byte> destination, in FuseEntryOut entry, ulong nextOffset, uint type, ReadOnlySpan<byte> name)
    {
        int size = DirentPlusSize(name.Length);
        if (size > destination.Length) return 0;
        MemoryMarshal.Write(destination, in entry);
        var header = new FuseDirentHeader { Ino = entry.Attr.Ino, Off = nextOffset, NameLen = (uint)name.Length, Type = type };
        MemoryMarshal.Write(destination[EntryOutSize..], in header);
        name.CopyTo(destination[(EntryOutSize + DirentHeaderSize)..]);
        destination[(EntryOutSize + DirentHeaderSize + name.Length)..size].Clear();
        return size;
    }
}
