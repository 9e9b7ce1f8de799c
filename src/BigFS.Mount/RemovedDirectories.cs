using BigFS.Protocol;

namespace BigFS.Mount;

/// <summary>
/// Directories this mount removed, as a process whose working directory one was still sees it:
/// on ext4 such a directory stats with no links and lists empty (the kernel lists a dead
/// directory itself). The server forgets it at once, so its last known attributes are kept here
/// until the kernel forgets the inode. Bounded; thread-safe.
/// </summary>
internal sealed class RemovedDirectories
{
    private const int Capacity = 1024;
    private readonly Lock _sync = new();
    private readonly Dictionary<ulong, InodeAttr> _byIno = [];

    public void Remember(InodeAttr attr)
    {
        var dead = attr.Clone();
        dead.Nlink = 0;
        lock (_sync)
        {
            if (_byIno.Count >= Capacity)
                _byIno.Clear();   // rare: that many removed directories still referenced by the kernel
            _byIno[attr.Ino] = dead;
        }
    }

    public InodeAttr? Find(ulong ino)
    {
        lock (_sync)
            return _byIno.GetValueOrDefault(ino);
    }

    public void Forget(ulong ino)
    {
        lock (_sync)
            _byIno.Remove(ino);
    }
}
