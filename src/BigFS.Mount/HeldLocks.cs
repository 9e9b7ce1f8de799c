using BigFS.Core;

namespace BigFS.Mount;

/// <summary>
/// The advisory locks this mount's processes hold, as granted by the metadata server (which is
/// the authority): what a close must release, and what to take back after the server
/// restarted. An interrupted request may or may not have been granted; its owner is then
/// "uncertain" until released, so its close still releases. Thread-safe; no I/O.
/// </summary>
internal sealed class HeldLocks
{
    private readonly Lock _sync = new();
    private readonly Dictionary<(ulong Ino, bool Flock), RangeLockTable<ulong>> _tables = [];
    private readonly HashSet<(ulong Ino, bool Flock, ulong Owner)> _uncertain = [];
    /// <summary>Record-lock owners per open file (fh) that locked through it: an OFD lock's owner is the open file itself.</summary>
    private readonly Dictionary<ulong, HashSet<ulong>> _ownersByHandle = [];
    /// <summary>Open files (fh) through which a lock was held that the server gave to someone else after a restart.</summary>
    private readonly HashSet<ulong> _lostHandles = [];
    private volatile bool _anyLost;

    public readonly record struct Entry(ulong Ino, bool Flock, HeldRangeLock<ulong> Lock);

    public void Granted(ulong ino, bool flock, ulong owner, long start, long end, RangeLockType? type, uint pid)
    {
        lock (_sync)
        {
            if (!_tables.TryGetValue((ino, flock), out var table))
                _tables[(ino, flock)] = table = new RangeLockTable<ulong>();
            table.Set(owner, start, end, type, pid);
            if (table.IsEmpty)
                _tables.Remove((ino, flock));
        }
    }

    /// <summary>A record lock was asked for through open file <paramref name="fh"/>.</summary>
    public void LockedThrough(ulong fh, ulong owner)
    {
        lock (_sync)
        {
            if (!_ownersByHandle.TryGetValue(fh, out var owners))
                _ownersByHandle[fh] = owners = [];
            owners.Add(owner);
        }
    }

    /// <summary>
    /// A close (FLUSH) of <paramref name="fh"/> by process owner <paramref name="owner"/>: the
    /// flush releases that process's locks, so the owner is not one of the open file's own.
    /// </summary>
    public void Flushed(ulong fh, ulong owner)
    {
        lock (_sync)
            if (_ownersByHandle.TryGetValue(fh, out var owners) && owners.Remove(owner) && owners.Count == 0)
                _ownersByHandle.Remove(fh);
    }

    /// <summary>
    /// The record-lock owners that locked through an open file now released and never closed it
    /// themselves: open file descriptions (F_OFD_SETLK), whose locks nothing else releases. A
    /// process's owner id comes with each of its closes (<see cref="Flushed"/>); an OFD lock's
    /// owner is the open file itself and never does.
    /// </summary>
    public IReadOnlyCollection<ulong> ForgetHandle(ulong fh)
    {
        lock (_sync)
        {
            if (_lostHandles.Remove(fh))
                _anyLost = _lostHandles.Count > 0;
            if (!_ownersByHandle.Remove(fh, out var owners))
                return [];
            // The kernel's owner id of an open file is its address, which a newer open file may
            // already reuse (RELEASE comes asynchronously): those locks are the newer file's.
            owners.RemoveWhere(o => _ownersByHandle.Values.Any(other => other.Contains(o)));
            return owners;
        }
    }

    public void Uncertain(ulong ino, bool flock, ulong owner)
    {
        lock (_sync)
            _uncertain.Add((ino, flock, owner));
    }

    /// <summary>Whether <paramref name="owner"/> may hold a lock of this kind on the file (so its close must tell the server).</summary>
    public bool MayHold(ulong ino, bool flock, ulong owner)
    {
        lock (_sync)
            return _uncertain.Contains((ino, flock, owner))
                || _tables.TryGetValue((ino, flock), out var table) && table.Held.Any(h => h.Owner == owner);
    }

    public void Released(ulong ino, bool flock, ulong owner)
    {
        lock (_sync)
        {
            _uncertain.Remove((ino, flock, owner));
            if (_tables.TryGetValue((ino, flock), out var table) && table.ReleaseAll(o => o == owner) && table.IsEmpty)
                _tables.Remove((ino, flock));
        }
    }

    /// <summary>
    /// A lock this mount held was not taken back after a metadata server restart: another mount
    /// holds it now. The lock goes, and the open files it was held through are marked, so their
    /// I/O fails (<see cref="IsLost"/>) instead of going on as if still protected; NFS does the
    /// same with a lock it could not recover. Returns those open files.
    /// </summary>
    public IReadOnlyCollection<ulong> Lost(ulong ino, bool flock, ulong owner)
    {
        lock (_sync)
        {
            Released(ino, flock, owner);
            var handles = flock
                ? [owner]   // a flock's owner is the handle id
                : _ownersByHandle.Where(h => h.Value.Contains(owner)).Select(h => h.Key).ToList();
            _lostHandles.UnionWith(handles);
            _anyLost = _lostHandles.Count > 0;
            return handles;
        }
    }

    /// <summary>Whether a lock held through open file <paramref name="fh"/> was lost; cheap while none ever was.</summary>
    public bool IsLost(ulong fh)
    {
        if (!_anyLost)
            return false;
        lock (_sync)
            return _lostHandles.Contains(fh);
    }

    public List<Entry> Snapshot()
    {
        lock (_sync)
            return _tables.SelectMany(t => t.Value.Held.Select(h => new Entry(t.Key.Ino, t.Key.Flock, h))).ToList();
    }
}
