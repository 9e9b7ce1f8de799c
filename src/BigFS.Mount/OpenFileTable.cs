using BigFS.Client;
using BigFS.Protocol;

namespace BigFS.Mount;

/// <summary>
/// One data handle per open inode, shared by every open file descriptor of it on this mount,
/// so reads through one descriptor see writes through another before they are committed.
/// </summary>
internal sealed class OpenFileTable
{
    private readonly Dictionary<ulong, OpenFile> _files = new();
    private readonly Dictionary<ulong, ulong> _cachedVersions = new();
    /// <summary>
    /// Inodes the kernel is being told to drop what it caches of: pages <see cref="Revalidate"/>
    /// condemned, or the attributes of a file not open here that another mount changed.
    /// </summary>
    private readonly Dictionary<ulong, Invalidations> _invalidating = new();
    private ulong _nextHandle;

    public sealed class OpenFile(BigFsFile file)
    {
        private int _writers;

        public BigFsFile File { get; } = file;
        public int Handles { get; set; }
        /// <summary>
        /// The attributes the kernel was last made to fetch afresh (null: unknown). A notice of
        /// another mount's change that finds the same ones need not invalidate them again, which
        /// matters: the kernel discards attributes it fetches while an invalidation is in flight,
        /// and a read after a lock or open would then stop at the size it held before.
        /// </summary>
        public InodeAttr? Told { get; set; }
        /// <summary>Handles open for writing (read without the table's lock).</summary>
        public int Writers { get => Volatile.Read(ref _writers); set => Volatile.Write(ref _writers, value); }
    }

    /// <returns>
    /// The shared file, a new handle id, whether the kernel's page cache of it is still valid, and
    /// whether its attributes must be invalidated all the same (they changed while it was open here).
    /// </returns>
    public (OpenFile File, ulong Fh, bool KeepCache, bool AttributesChanged) Open(InodeAttr attr, Func<BigFsFile> create, bool writable = false)
    {
        var (ino, version, size) = (attr.Ino, attr.Version, (long)attr.Size);
        lock (_files)
        {
            if (!_files.TryGetValue(ino, out var open))
                _files[ino] = open = new OpenFile(create());
            open.Handles++;
            if (writable)
                open.Writers++;
            // Close-to-open: cached pages survive an open only while the data version is unchanged,
            // and not while pages of an older one may still be there (their drop not yet done).
            var keep = !VersionChangedLocked(ino, version) && !_invalidating.ContainsKey(ino);
            if (!keep && open.Handles > 1)
                open.File.AdoptCommitted(size, version);   // descriptors still open here read the new data too
            else if (!keep)
                open.File.InvalidateCache();
            // Kept pages at the first open here: the kernel's attributes are as fresh as its last
            // lookup, which the change feed invalidates, and nothing here knows them. Open already,
            // they are invalidated unless known to be these.
            var attributesChanged = keep && open.Handles > 1 && !attr.Equals(open.Told);
            open.Told = keep && open.Handles == 1 ? null : attr;
            return (open, ++_nextHandle, keep, attributesChanged);
        }
    }

    /// <summary>Whether <paramref name="version"/> is not the data version this mount last saw of the inode; it is from now on.</summary>
    private bool VersionChangedLocked(ulong ino, ulong version)
    {
        if (_cachedVersions.TryGetValue(ino, out var cached) && cached == version)
            return false;
        if (_cachedVersions.Count > 200_000)
            _cachedVersions.Clear();
        _cachedVersions[ino] = version;
        return true;
    }

    /// <summary>
    /// This mount changed the inode's data itself, making <paramref name="version"/>. The
    /// kernel's pages already hold that change (its writes went through them, and it applies its
    /// own truncates and hole punches), so if they were of the version just before — nobody
    /// else committed in between — they stay valid for the next open.
    /// </summary>
    public void LearnOwnChange(ulong ino, ulong version)
    {
        lock (_files)
        {
            if (_cachedVersions.TryGetValue(ino, out var cached) && cached + 1 == version)
                _cachedVersions[ino] = version;
        }
    }

    /// <summary>
    /// A lock was taken on an open file, or another mount changed it: like an open, it must see
    /// what was committed before (NFS gives locks the same guarantee). On
    /// <see cref="Revalidation.DataChanged"/> the kernel's pages of it must go, and the caller
    /// calls <see cref="InvalidationDone"/> once they have; until then an open does not keep the
    /// kernel's pages: it would read what they hold of the old version. On
    /// <see cref="Revalidation.AttributesChanged"/> only the kernel's attributes must go.
    /// </summary>
    public Revalidation Revalidate(InodeAttr attr)
    {
        var ino = attr.Ino;
        lock (_files)
        {
            if (!_files.TryGetValue(ino, out var open))
                return Revalidation.Unchanged;
            var told = open.Told;
            open.Told = attr;
            if (VersionChangedLocked(ino, attr.Version))
            {
                open.File.AdoptCommitted((long)attr.Size, attr.Version);
                InvalidationsLocked(ino).Pending++;
                return Revalidation.DataChanged;
            }
            return told is not null && told.Equals(attr) ? Revalidation.Unchanged : Revalidation.AttributesChanged;
        }
    }

    /// <summary>
    /// Before telling the kernel to drop its attributes of an inode another mount changed: false
    /// when the inode is open here (its revalidation decides instead, see <see cref="OpenFile.Told"/>).
    /// Until <see cref="InvalidationDone"/>, an open of it neither keeps the kernel's cache nor
    /// answers: a GETATTR its first read sends while the invalidation is in flight would be
    /// discarded by the kernel, and the read would stop at the size it held before.
    /// </summary>
    public bool BeginInvalidationUnlessOpen(ulong ino)
    {
        lock (_files)
        {
            if (_files.ContainsKey(ino))
                return false;
            InvalidationsLocked(ino).Pending++;
            return true;
        }
    }

    /// <summary>An invalidation that <see cref="Revalidate"/> or <see cref="BeginInvalidationUnlessOpen"/> started is done (or given up).</summary>
    public void InvalidationDone(ulong ino)
    {
        lock (_files)
        {
            if (!_invalidating.TryGetValue(ino, out var pending) || --pending.Pending > 0)
                return;
            _invalidating.Remove(ino);
            pending.Done.TrySetResult();
        }
    }

    /// <summary>
    /// Completes when no invalidation of the inode is under way. A <see cref="Revalidate"/> that
    /// found the data unchanged may have lost the race to one that is still dropping the old
    /// version's pages: whoever must not read them (a lock being granted) waits for this.
    /// </summary>
    public Task InvalidationsDoneAsync(ulong ino)
    {
        lock (_files)
            return _invalidating.TryGetValue(ino, out var pending) ? pending.Done.Task : Task.CompletedTask;
    }

    private Invalidations InvalidationsLocked(ulong ino)
    {
        if (!_invalidating.TryGetValue(ino, out var pending))
            _invalidating[ino] = pending = new Invalidations();
        return pending;
    }

    private sealed class Invalidations
    {
        public int Pending;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Every open inode and its handle count (to register them again under a new session).</summary>
    public List<(ulong Ino, int Handles)> Snapshot()
    {
        lock (_files)
            return _files.Select(f => (f.Key, f.Value.Handles)).ToList();
    }

    public OpenFile? Find(ulong ino)
    {
        lock (_files)
            return _files.GetValueOrDefault(ino);
    }

    /// <summary>Drops one handle; returns the file when it was the last one (the caller disposes it).</summary>
    public OpenFile? Release(ulong ino, bool writable = false)
    {
        lock (_files)
        {
            if (!_files.TryGetValue(ino, out var open))
                return null;
            if (writable && open.Writers > 0)
                open.Writers--;
            if (--open.Handles > 0)
                return null;
            _files.Remove(ino);
            return open;
        }
    }

    /// <summary>
    /// Nothing is known of the kernel's pages of the inode (forgotten by the kernel, or they may
    /// hold data the cluster does not): its next open drops them.
    /// </summary>
    public void Forget(ulong ino)
    {
        lock (_files)
            _cachedVersions.Remove(ino);
    }

    public List<OpenFile> All()
    {
        lock (_files)
            return [.. _files.Values];
    }
}

internal enum Revalidation
{
    Unchanged,
    /// <summary>Not the data, but what the kernel holds of the attributes is stale.</summary>
    AttributesChanged,
    DataChanged,
}
