using BigFS.Fuse.Protocol;

namespace BigFS.Fuse;

/// <summary>
/// The reply buffer of one READDIR/READDIRPLUS. The filesystem adds entries until an Add returns
/// false (buffer full). Offsets are the filesystem's cookies: each entry carries the offset from
/// which the next READDIR continues after it.
/// </summary>
public sealed class FuseDirList
{
    private readonly Memory<byte> _buffer;
    private readonly TimeSpan _entryTimeout, _attrTimeout;
    private List<ulong>? _referenced;

    internal FuseDirList(Memory<byte> buffer, bool plus, TimeSpan entryTimeout, TimeSpan attrTimeout)
    {
        _buffer = buffer;
        IsPlus = plus;
        _entryTimeout = entryTimeout;
        _attrTimeout = attrTimeout;
    }

    /// <summary>True for READDIRPLUS: add entries with <see cref="AddPlus"/> (attributes included).</summary>
    public bool IsPlus { get; }
    public int Count { get; private set; }
    internal int Length { get; private set; }
    /// <summary>Node ids the reply hands to the kernel (one lookup reference each).</summary>
    internal IReadOnlyList<ulong> Referenced => (IReadOnlyList<ulong>?)_referenced ?? [];

    /// <summary>Adds a plain entry (for READDIRPLUS it is sent without attributes). False when full.</summary>
    public bool Add(string name, ulong ino, uint mode, long nextOffset)
    {
        if (IsPlus)
            return AddPlus(name, new FuseEntry(0, new FuseAttr { Ino = ino, Mode = mode }), nextOffset);
        Span<byte> nameBytes = stackalloc byte[1024];
        int n = Encode(name, nameBytes);
        int used = FuseDirentPacker.TryPack(_buffer.Span[Length..], ino, (ulong)nextOffset, ModeBits.ToDirentType(mode), nameBytes[..n]);
        if (used == 0) return false;
        Length += used;
        Count++;
        return true;
    }

    /// <summary>Adds an entry with attributes. A non-zero NodeId gives the kernel a lookup reference
    /// (not for "." and ".."), exactly as a LOOKUP reply would. False when full.</summary>
    public bool AddPlus(string name, in FuseEntry entry, long nextOffset)
    {
        Span<byte> nameBytes = stackalloc byte[1024];
        int n = Encode(name, nameBytes);
        bool dot = name is "." or "..";
        var e = dot ? entry with { NodeId = 0 } : entry;
        var entryOut = FuseReplyEncoder.ToEntryOut(e, _entryTimeout, _attrTimeout);
        if (e.NodeId == 0) { entryOut.EntryValid = 0; entryOut.EntryValidNsec = 0; entryOut.AttrValid = 0; entryOut.AttrValidNsec = 0; }
        int used = FuseDirentPacker.TryPackPlus(_buffer.Span[Length..], entryOut, (ulong)nextOffset, ModeBits.ToDirentType(e.Attr.Mode), nameBytes[..n]);
        if (used == 0) return false;
        Length += used;
        Count++;
        if (e.NodeId != 0) (_referenced ??= []).Add(e.NodeId);
        return true;
    }

    private static int Encode(string name, Span<byte> destination)
    {
        if (name.Length == 0 || !FileNameEncoding.TryGetBytes(name, destination, out int n) || n > 255)
            throw new ArgumentException($"invalid directory entry name '{name}'", nameof(name));
        return n;
    }
}
