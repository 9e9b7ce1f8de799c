namespace BigFS.Fuse;

/// <summary>
/// A name resolved to an inode (struct fuse_entry_out). Each successful reply carrying an entry
/// (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK, LINK, READDIRPLUS) adds one kernel reference to NodeId,
/// dropped later by FORGET; the session counts them and calls <see cref="IFuseFileSystem.Forget"/>.
/// </summary>
public readonly record struct FuseEntry(ulong NodeId, FuseAttr Attr)
{
    public ulong Generation { get; init; }
    /// <summary>Override of the mount's entry timeout for this name; null = mount default.</summary>
    public TimeSpan? EntryTimeout { get; init; }
    /// <summary>Override of the mount's attribute timeout; null = mount default.</summary>
    public TimeSpan? AttrTimeout { get; init; }
}
