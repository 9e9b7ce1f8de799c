using BigFS.Fuse;

namespace BigFS.Fuse.MemoryFs;

/// <summary>One inode of the in-memory filesystem. Guarded by the filesystem's lock.</summary>
internal sealed class MemoryNode(ulong ino, uint mode, uint uid, uint gid)
{
    public ulong Ino { get; } = ino;
    public uint Mode { get; set; } = mode;
    public uint Uid { get; set; } = uid;
    public uint Gid { get; set; } = gid;
    public uint Nlink { get; set; } = ModeBits.IsDir(mode) ? 2u : 1u;
    public uint Rdev { get; set; }
    public FuseTime Atime { get; set; } = FuseTime.Now;
    public FuseTime Mtime { get; set; } = FuseTime.Now;
    public FuseTime Ctime { get; set; } = FuseTime.Now;
    public byte[] Data { get; set; } = [];
    public long Size { get; set; }
    public string? Target { get; set; }
    /// <summary>Directories only: name → child, and the parent for "..".</summary>
    public Dictionary<string, MemoryNode>? Children { get; } = ModeBits.IsDir(mode) ? new(StringComparer.Ordinal) : null;
    public MemoryNode? Parent { get; set; }
    public Dictionary<string, byte[]> Xattrs { get; } = new(StringComparer.Ordinal);
    public LockTable Locks { get; } = new();
    public int OpenCount { get; set; }

    public bool IsDir => Children is not null;

    public FuseAttr Attr() => new()
    {
        Ino = Ino, Size = IsDir ? 4096 : (ulong)(Target is not null ? System.Text.Encoding.UTF8.GetByteCount(Target) : Size),
        Atime = Atime, Mtime = Mtime, Ctime = Ctime, Mode = Mode, Nlink = Nlink, Uid = Uid, Gid = Gid, Rdev = Rdev,
        Blocks = (ulong)((Size + 511) / 512), BlkSize = 4096,
    };

    public void SetSize(long size)
    {
        if (size > Data.Length)
        {
            var bigger = new byte[Math.Max(size, Math.Min(Data.Length * 2L, Data.Length + (64L << 20)))];
            Data.AsSpan(0, (int)Size).CopyTo(bigger);
            Data = bigger;
        }
        else if (size < Size)
            Data.AsSpan((int)size, (int)(Size - size)).Clear();
        Size = size;
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        long end = offset + data.Length;
        if (end > Size) SetSize(end);
        data.CopyTo(Data.AsSpan((int)offset));
    }

    public int Read(long offset, Span<byte> destination)
    {
        if (offset >= Size) return 0;
        int n = (int)Math.Min(destination.Length, Size - offset);
        Data.AsSpan((int)offset, n).CopyTo(destination);
        return n;
    }
}
