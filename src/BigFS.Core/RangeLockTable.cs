namespace BigFS.Core;

public enum RangeLockType { Read, Write }

/// <summary>One held lock: [Start, End] inclusive (End = long.MaxValue: to the end of the file, however it grows).</summary>
public readonly record struct HeldRangeLock<TOwner>(TOwner Owner, long Start, long End, RangeLockType Type, uint Pid);

/// <summary>
/// The advisory locks of one file, with Linux's rules (fcntl(2), flock(2)). POSIX record locks
/// belong to an owner (a process) and cover byte ranges: an owner's new lock replaces what it
/// held in that range, splitting its older locks around it, and merges with adjacent or
/// overlapping locks of the same type, so unlocking any part of a range works. Two owners
/// conflict where their ranges overlap and either lock is a write lock. flock locks belong to an
/// open file description and cover the whole file: a table instance holds one kind only (Linux
/// keeps the two kinds apart). Not thread-safe; no I/O.
/// </summary>
public sealed class RangeLockTable<TOwner> where TOwner : IEquatable<TOwner>
{
    private readonly List<HeldRangeLock<TOwner>> _held = [];

    public bool IsEmpty => _held.Count == 0;
    public IReadOnlyList<HeldRangeLock<TOwner>> Held => _held;

    /// <summary>The first lock of another owner that keeps <paramref name="owner"/> from taking this one, or null.</summary>
    public HeldRangeLock<TOwner>? FindConflict(TOwner owner, long start, long end, RangeLockType type)
    {
        foreach (var h in _held)
        {
            if (h.Owner.Equals(owner) || h.End < start || h.Start > end) continue;
            if (h.Type == RangeLockType.Write || type == RangeLockType.Write)
                return h;
        }
        return null;
    }

    /// <summary>Takes [start, end] for <paramref name="owner"/> (the caller checked for conflicts), or releases it when <paramref name="type"/> is null.</summary>
    /// <returns>Whether anything was released or downgraded (waiters may now proceed).</returns>
    public bool Set(TOwner owner, long start, long end, RangeLockType? type, uint pid)
    {
        var freed = false;
        // Cut the owner's locks out of [start, end]; with a new lock, absorb same-type neighbours.
        var (newStart, newEnd) = (start, end);
        for (var i = _held.Count - 1; i >= 0; i--)
        {
            var h = _held[i];
            if (!h.Owner.Equals(owner)) continue;
            var touches = h.End >= (start == 0 ? 0 : start - 1) && (end == long.MaxValue || h.Start <= end + 1);
            if (!touches) continue;
            var overlaps = h.End >= start && h.Start <= end;
            if (type == h.Type)
            {
                // Same type, overlapping or adjacent: one lock.
                _held.RemoveAt(i);
                newStart = Math.Min(newStart, h.Start);
                newEnd = Math.Max(newEnd, h.End);
                continue;
            }
            if (!overlaps) continue;
            _held.RemoveAt(i);
            if (h.Start < start) _held.Add(h with { End = start - 1 });
            if (h.End > end) _held.Add(h with { Start = end + 1 });
            // Dropping or turning a write lock into a read lock lets others in.
            freed |= type is null || h.Type == RangeLockType.Write;
        }
        if (type is { } t)
            _held.Add(new HeldRangeLock<TOwner>(owner, newStart, newEnd, t, pid));
        return freed;
    }

    /// <summary>Drops every lock matching <paramref name="predicate"/> (an owner, or all of a session's owners).</summary>
    public bool ReleaseAll(Func<TOwner, bool> predicate) => _held.RemoveAll(h => predicate(h.Owner)) > 0;
}
