namespace BigFS.Fuse.Session;

/// <summary>
/// The kernel's references per node id: +1 for each entry handed out (LOOKUP, CREATE, MKNOD,
/// MKDIR, SYMLINK, LINK, READDIRPLUS), −n on FORGET. Reaching zero means the kernel forgot the node.
/// </summary>
public sealed class LookupCounter
{
    private readonly Dictionary<ulong, ulong> _counts = [];
    private readonly Lock _lock = new();

    public void Add(ulong nodeId, ulong count = 1)
    {
        if (nodeId == 0 || count == 0) return;
        lock (_lock)
        {
            _counts.TryGetValue(nodeId, out var current);
            _counts[nodeId] = current + count;
        }
    }

    /// <summary>Drops <paramref name="count"/> references; true when none remain (the node is forgotten).</summary>
    public bool Forget(ulong nodeId, ulong count)
    {
        lock (_lock)
        {
            if (!_counts.TryGetValue(nodeId, out var current)) return false;
            if (count >= current)
            {
                _counts.Remove(nodeId);
                return true;
            }
            _counts[nodeId] = current - count;
            return false;
        }
    }

    public ulong Get(ulong nodeId)
    {
        lock (_lock) return _counts.GetValueOrDefault(nodeId);
    }

    public int NodeCount
    {
        get { lock (_lock) return _counts.Count; }
    }
}
