using System.Collections.Concurrent;

namespace BigFS.Client;

/// <summary>
/// Storage nodes this client recently failed to reach, shared by uploads and reads: a node
/// that just failed one call is tried last (or not at all, while others can do the work) by
/// the next ones for a while, so a node gone from the network costs one timeout, not one per
/// chunk until the metadata server notices it stopped sending heartbeats.
/// </summary>
internal sealed class NodeFailureMemory(TimeSpan memory)
{
    private readonly ConcurrentDictionary<string, long> _failedAt = new(StringComparer.Ordinal);

    public void Record(string nodeId) => _failedAt[nodeId] = Environment.TickCount64;

    /// <summary>A success ends the suspicion at once (the node is back).</summary>
    public void Clear(string nodeId) => _failedAt.TryRemove(nodeId, out _);

    public bool IsSuspect(string nodeId) =>
        _failedAt.TryGetValue(nodeId, out var at) && Recent(at, Environment.TickCount64);

    public HashSet<string> Suspects()
    {
        var now = Environment.TickCount64;
        return new HashSet<string>(_failedAt.Where(f => Recent(f.Value, now)).Select(f => f.Key), StringComparer.Ordinal);
    }

    private bool Recent(long failedAt, long now) => now - failedAt < (long)memory.TotalMilliseconds;
}
