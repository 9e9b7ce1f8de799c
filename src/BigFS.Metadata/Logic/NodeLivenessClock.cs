using BigFS.Metadata.Model;

namespace BigFS.Metadata.Logic;

/// <summary>
/// How long a node has been silent, as this server can judge it. A stretch in which the server
/// heard no node at all for longer than heartbeat_timeout (it was cut off from the network,
/// paused, or not yet running) does not count against the nodes that were active when it
/// began: the silence was most likely the server's own, and a node it could not have heard is
/// not thereby suspect or dead. Without this, a server back from such a cut would count every
/// node it has not heard again yet as Suspect (no placement) or Dead (copies elsewhere, surplus
/// later) until its next heartbeat arrived.
///
/// Every node stopping at once looks the same from here: the ones that do not come back are
/// then counted from the first heartbeat after the silence, as they are after a restart.
/// What the node last sent is left as it was (<see cref="NodeRecord.LastHeartbeatMs"/>, which
/// the garbage collector's guard reads): only the liveness verdict is lenient.
/// </summary>
public sealed class NodeLivenessClock(long startedMs, TimeSpan heartbeatTimeout, TimeSpan deadTimeout)
{
    private readonly long _startedMs = startedMs;
    private readonly long _timeoutMs = (long)heartbeatTimeout.TotalMilliseconds;
    private readonly long _deadMs = (long)deadTimeout.TotalMilliseconds;
    /// <summary>When any node was last heard (a restart counts as hearing every node).</summary>
    private long _lastHeardMs = startedMs;
    /// <summary>Node → the moment its silence counts from, where a silence of the server moved it past its last heartbeat.</summary>
    private readonly Dictionary<string, long> _countsFrom = new(StringComparer.Ordinal);

    /// <summary>The moment <paramref name="node"/>'s silence counts from.</summary>
    private long CountsFrom(NodeRecord node)
    {
        var from = Math.Max(node.LastHeartbeatMs, _startedMs);
        return _countsFrom.TryGetValue(node.Id, out var credited) ? Math.Max(from, credited) : from;
    }

    public NodeLiveness LivenessOf(NodeRecord node, long now)
    {
        var silent = now - CountsFrom(node);
        if (silent > _deadMs) return NodeLiveness.Dead;
        if (silent > _timeoutMs) return NodeLiveness.Suspect;
        return NodeLiveness.Active;
    }

    /// <summary>
    /// <paramref name="node"/> was heard at <paramref name="now"/>. When nobody had been heard for
    /// longer than heartbeat_timeout before, every node that was active as that silence began has
    /// the silence credited (call before updating <paramref name="node"/>'s own heartbeat).
    /// </summary>
    public void Heard(NodeRecord node, long now, IEnumerable<NodeRecord> nodes)
    {
        var silenceStart = _lastHeardMs;
        _lastHeardMs = Math.Max(_lastHeardMs, now);
        var length = now - silenceStart;
        if (length <= _timeoutMs)
            return;
        foreach (var n in nodes)
        {
            var from = CountsFrom(n);
            if (from <= silenceStart && silenceStart - from <= _timeoutMs)
                _countsFrom[n.Id] = from + length;
        }
        _countsFrom.Remove(node.Id);   // heard now: its own heartbeat counts
    }

    /// <summary>Forgets a node removed from the registry.</summary>
    public void Forget(string nodeId) => _countsFrom.Remove(nodeId);
}
