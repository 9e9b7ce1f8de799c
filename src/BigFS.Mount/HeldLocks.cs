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

    public List<Entry> Snapshot()
    {
        lock (_sync)
            return _tables.SelectMany(t => t.Value.Held.Select(h => new Entry(t.Key.Ino, t.Key.Flock, h))).ToList();
    }
}
