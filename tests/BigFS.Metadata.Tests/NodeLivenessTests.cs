using BigFS.Metadata.Model;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

/// <summary>
/// A node's liveness is judged from its heartbeats, but a stretch in which the metadata server
/// heard no node at all (it was cut off from the network) is the server's silence, not theirs.
/// </summary>
public class NodeLivenessTests
{
    private readonly Harness _h = new();

    private NodeLiveness Liveness(string id)
    {
        lock (_h.State.Sync) return _h.State.LivenessOf(_h.State.Nodes[id]);
    }

    [Fact]
    public async Task A_silence_of_every_node_at_once_counts_against_none_once_the_server_hears_again()
    {
        foreach (var id in new[] { "p", "a", "b" })
            await _h.RegisterNode(id);
        Assert.Equal(["a", "b"], (await _h.LiveChunk("p", goal: 3)).Replicas);
        await _h.RegisterNode("spare");

        // The server hears nobody for longer than the dead timeout: to it, every node looks dead.
        _h.Time.Advance(_h.Options.DeadTimeout + TimeSpan.FromMinutes(1));
        Assert.Equal(NodeLiveness.Dead, Liveness("a"));

        // The first heartbeat after it: the silence was the server's. The others are active as
        // they were, not dead until their own next heartbeat.
        _h.Heartbeat("p");
        Assert.All(new[] { "p", "a", "b", "spare" }, id => Assert.Equal(NodeLiveness.Active, Liveness(id)));
        Assert.Equal(4, _h.Cluster.ListWritableNodes().Nodes.Count);
        // No copy is made for a node that merely was not heard yet (spare would have taken it).
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Empty(_h.Nodes.Replications);
        Assert.Equal(0ul, _h.Cluster.Status().ChunksBelowGoal);

        // A node that stays silent after it is counted from there: Suspect, then Dead.
        _h.PassTime(_h.Options.HeartbeatTimeout + TimeSpan.FromSeconds(1), "p", "a", "spare");
        Assert.Equal(NodeLiveness.Suspect, Liveness("b"));
        _h.PassTime(_h.Options.DeadTimeout, "p", "a", "spare");
        Assert.Equal(NodeLiveness.Dead, Liveness("b"));
        Assert.Equal(NodeLiveness.Active, Liveness("a"));
        _h.Nodes.ConfirmReplications = true;
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal("spare", Assert.Single(Assert.Single(_h.Nodes.Replications).Targets));
    }

    [Fact]
    public async Task A_node_already_suspect_when_the_server_fell_silent_is_not_revived_by_it()
    {
        foreach (var id in new[] { "p", "a", "late" })
            await _h.RegisterNode(id);
        _h.PassTime(_h.Options.HeartbeatTimeout + TimeSpan.FromSeconds(5), "p", "a");
        Assert.Equal(NodeLiveness.Suspect, Liveness("late"));

        _h.Time.Advance(_h.Options.DeadTimeout);
        _h.Heartbeat("a");
        Assert.Equal(NodeLiveness.Active, Liveness("p"));
        Assert.Equal(NodeLiveness.Dead, Liveness("late"));
    }

    [Fact]
    public async Task A_silence_shorter_than_the_heartbeat_timeout_is_an_ordinary_pause()
    {
        foreach (var id in new[] { "p", "a" })
            await _h.RegisterNode(id);
        _h.PassTime(TimeSpan.FromSeconds(20), "p");
        _h.Time.Advance(TimeSpan.FromSeconds(25));   // nobody heard for 25 s: within the timeout, nothing credited
        _h.Heartbeat("p");
        Assert.Equal(NodeLiveness.Suspect, Liveness("a"));
    }

    [Fact]
    public async Task Back_to_back_silences_each_count_against_no_node_that_was_active_before_them()
    {
        foreach (var id in new[] { "p", "a" })
            await _h.RegisterNode(id);
        _h.Time.Advance(TimeSpan.FromMinutes(5));
        _h.Heartbeat("p");
        _h.Time.Advance(TimeSpan.FromSeconds(10));
        _h.Heartbeat("p");
        // a has not been heard since before the first silence; as that ended it counted as just
        // heard, so it was still active as the second began.
        _h.Time.Advance(TimeSpan.FromMinutes(5));
        _h.Heartbeat("p");
        Assert.Equal(NodeLiveness.Active, Liveness("a"));
        _h.PassTime(_h.Options.HeartbeatTimeout, "p");
        Assert.Equal(NodeLiveness.Suspect, Liveness("a"));
    }

    [Fact]
    public async Task The_last_heartbeat_reported_is_the_real_one()
    {
        await _h.RegisterNode("p");
        await _h.RegisterNode("a");
        var registered = _h.Cluster.Status().Nodes.Single(n => n.NodeId == "a").LastHeartbeatUnixMs;
        _h.Time.Advance(TimeSpan.FromMinutes(5));
        _h.Heartbeat("p");
        Assert.Equal(NodeState.Active, _h.Cluster.Status().Nodes.Single(n => n.NodeId == "a").State);
        // What a node last sent stays what it was (the garbage collector's guard reads it).
        Assert.Equal(registered, _h.Cluster.Status().Nodes.Single(n => n.NodeId == "a").LastHeartbeatUnixMs);
    }
}
