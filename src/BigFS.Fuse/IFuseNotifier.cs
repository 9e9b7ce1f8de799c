namespace BigFS.Fuse;

/// <summary>
/// Unsolicited messages to the kernel that drop its caches. Available to the filesystem from
/// <see cref="FuseConnectionInfo.Notifier"/> (at Init) and on <see cref="FuseMount"/>.
/// Both return 0 or an errno (ENOENT: the kernel had nothing cached).
/// Never call them synchronously from a handler of an operation that holds the same inode's
/// lock in the kernel (a WRITE/SETATTR on that file, or a CREATE/UNLINK/… in that directory):
/// the kernel would wait for the handler, and the handler for the kernel.
/// </summary>
public interface IFuseNotifier
{
    /// <summary>Drops cached data of [offset, offset+length) of an inode (length 0 = to the end;
    /// offset −1 = attributes only), and its cached attributes.</summary>
    int InvalidateInode(ulong ino, long offset = 0, long length = 0);

    /// <summary>Drops the cached name <paramref name="name"/> in directory <paramref name="parent"/>.</summary>
    int InvalidateEntry(ulong parent, string name);
}
