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

    /// <summary>
    /// FUSE_NOTIFY_STORE: puts <paramref name="data"/> into the kernel's page cache of an inode at
    /// <paramref name="offset"/> (whole pages become up to date; a store past the kernel's size
    /// grows it, so never store beyond the file's end). The kernel takes each page's lock: never
    /// store from a handler whose own request holds pages of that range (a READ before its reply),
    /// and expect the call to wait while other requests on those pages are in flight.
    /// </summary>
    int Store(ulong ino, long offset, ReadOnlySpan<byte> data) => LinuxErrno.ENOSYS;
}
