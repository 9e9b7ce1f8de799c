using BigFS.Fuse.Protocol;

namespace BigFS.Fuse;

/// <summary>What a SETATTR changes. Only members whose flag is set in <see cref="Valid"/> are meaningful.</summary>
public readonly struct FuseSetAttr
{
    internal FuseSetAttr(in FuseSetAttrIn raw)
    {
        Valid = (FuseSetAttrValid)raw.Valid;
        Mode = raw.Mode;
        Uid = raw.Uid;
        Gid = raw.Gid;
        Size = raw.Size;
        Atime = new FuseTime((long)raw.Atime, raw.AtimeNsec);
        Mtime = new FuseTime((long)raw.Mtime, raw.MtimeNsec);
        Ctime = new FuseTime((long)raw.Ctime, raw.CtimeNsec);
        Fh = raw.Fh;
        LockOwner = raw.LockOwner;
    }

    public FuseSetAttr(FuseSetAttrValid valid, uint mode = 0, uint uid = 0, uint gid = 0, ulong size = 0,
        FuseTime atime = default, FuseTime mtime = default, FuseTime ctime = default, ulong fh = 0)
    {
        Valid = valid; Mode = mode; Uid = uid; Gid = gid; Size = size; Atime = atime; Mtime = mtime; Ctime = ctime; Fh = fh;
    }

    public FuseSetAttrValid Valid { get; }
    public uint Mode { get; }
    public uint Uid { get; }
    public uint Gid { get; }
    public ulong Size { get; }
    public FuseTime Atime { get; }
    public FuseTime Mtime { get; }
    public FuseTime Ctime { get; }
    public ulong Fh { get; }
    public ulong LockOwner { get; }

    public bool Has(FuseSetAttrValid flag) => (Valid & flag) != 0;
    /// <summary>Atime to set, if any (resolves UTIME_NOW against <paramref name="now"/>).</summary>
    public FuseTime? NewAtime(FuseTime now) => Has(FuseSetAttrValid.AtimeNow) ? now : Has(FuseSetAttrValid.Atime) ? Atime : null;
    public FuseTime? NewMtime(FuseTime now) => Has(FuseSetAttrValid.MtimeNow) ? now : Has(FuseSetAttrValid.Mtime) ? Mtime : null;
}
