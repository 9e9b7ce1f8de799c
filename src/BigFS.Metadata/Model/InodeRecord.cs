namespace BigFS.Metadata.Model;

/// <summary>One inode as kept in memory and persisted. Plain signed types so LiteDB maps them losslessly.</summary>
public sealed class InodeRecord
{
    public long Id { get; set; }
    public int Type { get; set; }          // BigFS.Protocol.InodeType value
    public int Mode { get; set; }          // permission bits only (07777); type bits derive from Type
    public long Uid { get; set; }
    public long Gid { get; set; }
    public int Nlink { get; set; }
    public long Size { get; set; }
    public long Rdev { get; set; }
    public long AtimeNs { get; set; }
    public long MtimeNs { get; set; }
    public long CtimeNs { get; set; }
    public long Version { get; set; }
    public int Goal { get; set; }
    /// <summary>For directories: the containing directory (root: itself). Used for the subtree rule of rename.</summary>
    public long Parent { get; set; }
    /// <summary>
    /// Created without a name (O_TMPFILE) and not linked since: the only nlink-0 inode that Link
    /// may name. Persisted, so that it still may after a metadata-server restart.
    /// </summary>
    public bool Unnamed { get; set; }
    public byte[]? SymlinkTarget { get; set; }
    public List<XattrEntry> Xattrs { get; set; } = [];
    /// <summary>Derived from the layout, never persisted: bytes backed by chunks.</summary>
    [LiteDB.BsonIgnore]
    public long StoredBytes { get; set; }

    public InodeRecord Clone()
    {
        var copy = (InodeRecord)MemberwiseClone();
        copy.Xattrs = [.. Xattrs];
        return copy;
    }
}

public sealed class XattrEntry
{
    public byte[] Name { get; set; } = [];
    public byte[] Value { get; set; } = [];
}
