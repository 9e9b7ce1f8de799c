using BigFS.Fuse;

namespace BigFS.Fuse.MemoryFs;

/// <summary>
/// POSIX byte-range locks (per owner, split and merged by range) and flock locks (whole file, per
/// open file) of one inode. The two kinds do not conflict with each other, as on Linux.
/// Guarded by the filesystem's lock; <see cref="Changed"/> wakes waiters after any release.
/// </summary>
internal sealed class LockTable
{
    private readonly List<Held> _held = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly record struct Held(ulong Owner, uint Pid, long Start, long End, FuseLockType Type, bool IsFlock);

    public Task Changed => _changed.Task;

    public FuseFileLock? FindConflict(ulong owner, FuseFileLock wanted, bool isFlock)
    {
        foreach (var h in _held)
        {
            if (h.IsFlock != isFlock || h.Owner == owner) continue;
            if (h.End < wanted.Start || h.Start > wanted.End) continue;
            if (h.Type == FuseLockType.Write || wanted.Type == FuseLockType.Write)
                return new FuseFileLock(h.Start, h.End, h.Type, h.Pid);
        }
        return null;
    }

    /// <summary>Sets or clears a lock for <paramref name="owner"/>; the caller checked conflicts.</summary>
    public void Apply(ulong owner, FuseFileLock lk, bool isFlock)
    {
        var (start, end) = isFlock ? (0L, long.MaxValue) : (lk.Start, lk.End);
        // Remove (and split around) this owner's locks in the range.
        for (int i = _held.Count - 1; i >= 0; i--)
        {
            var h = _held[i];
            if (h.Owner != owner || h.IsFlock != isFlock || h.End < start || h.Start > end) continue;
            _held.RemoveAt(i);
            if (h.Start < start) _held.Add(h with { End = start - 1 });
            if (h.End > end) _held.Add(h with { Start = end + 1 });
        }
        if (lk.Type != FuseLockType.Unlock)
            _held.Add(new Held(owner, lk.Pid, start, end, lk.Type, isFlock));
        Signal();
    }

    /// <summary>Drops every lock of one kind held by <paramref name="owner"/>.</summary>
    public void ReleaseAll(ulong owner, bool isFlock)
    {
        if (_held.RemoveAll(h => h.Owner == owner && h.IsFlock == isFlock) > 0) Signal();
    }

    private void Signal()
    {
        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }
}
