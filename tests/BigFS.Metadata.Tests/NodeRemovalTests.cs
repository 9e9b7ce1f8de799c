using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Tests;

public class NodeRemovalTests
{
    private readonly Harness _h = new(new MetadataServerOptions
    {
        DataDirectory = "x", DeadTimeout = TimeSpan.FromMinutes(10), ReplicaConfirmationTimeout = TimeSpan.FromHours(2),
    });

    /// <summary>Nodes p, a, b, c; a live file whose chunk has AVAILABLE copies on p (primary), a and b.</summary>
    private async Task<(ulong File, string Chunk)> LiveChunkOnPab(string name = "f")
    {
        foreach (var id in new[] { "p", "a", "b", "c" })
            if (!_h.State.Nodes.ContainsKey(id))
                await _h.RegisterNode(id);
        var f = await _h.Create(1, name);
        var c = NewChunkId();
        var reply = await _h.RegisterChunk("p", c, owner: f, goal: 3);
        // Make the replicas a and b whatever the placement picked.
        lock (_h.State.Sync)
        {
            var chunk = _h.State.Chunks[c];
            chunk.Copies.RemoveAll(x => !x.Primary);
            chunk.Copies.Add(new CopyRecord { NodeId = "a", Status = CopyState.Available });
            chunk.Copies.Add(new CopyRecord { NodeId = "b", Status = CopyState.Available });
        }
        await _h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = c });
        return (f, c);
    }

    /// <summary>Lets <paramref name="dead"/> miss its heartbeats past the dead timeout while the others keep theirs.</summary>
    private void Kill(string dead)
    {
        _h.PassTime(TimeSpan.FromMinutes(11), [.. _h.State.Nodes.Keys.Where(k => k != dead)]);
        Assert.Equal(NodeLiveness.Dead, _h.State.LivenessOf(_h.State.Nodes[dead]));
    }

    [Fact]
    public async Task An_unknown_node_is_ENOENT()
    {
        var r = await _h.Cluster.RemoveNodeAsync("nope", force: false);
        Assert.Equal(E.ENOENT, r.Errno);
    }

    [Fact]
    public async Task A_node_that_still_heartbeats_is_refused_without_force_and_nothing_changes()
    {
        var (_, c) = await LiveChunkOnPab();
        var r = await _h.Cluster.RemoveNodeAsync("a", force: false);
        Assert.Equal(E.EBUSY, r.Errno);
        Assert.Contains("active", r.Message);
        Assert.NotNull(_h.Chunk(c).CopyOn("a"));
        Assert.True(_h.State.Nodes.ContainsKey("a"));
    }

    [Fact]
    public async Task Removing_a_dead_primary_hands_the_primary_on_persists_and_re_replicates_to_goal()
    {
        var (_, c) = await LiveChunkOnPab();
        Kill("p");
        var r = await _h.Cluster.RemoveNodeAsync("p", force: false);
        Assert.Equal(0, r.Errno);
        Assert.Equal(1UL, r.CopiesDropped);
        Assert.Equal(0UL, r.ChunksLost);

        var chunk = _h.Chunk(c);
        Assert.Null(chunk.CopyOn("p"));
        Assert.Single(chunk.Copies, x => x.Primary);
        Assert.False(_h.State.Nodes.ContainsKey("p"));
        var stored = _h.Store.Load();
        Assert.DoesNotContain(stored.Nodes, n => n.Id == "p");
        Assert.Null(stored.Chunks.Single(x => x.Id == c).CopyOn("p"));
        Assert.Contains(Durability.Durable, _h.Log.Appends);

        // The chunk is below goal; maintenance adds a copy on the one node left, c.
        _h.Nodes.ConfirmReplications = true;
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal(["a", "b", "c"], _h.Chunk(c).Copies.Where(x => x.Status == CopyState.Available).Select(x => x.NodeId).Order());
    }

    [Fact]
    public async Task Garbage_whose_copy_sat_on_a_dead_node_is_collected_once_the_node_is_removed()
    {
        var (_, c) = await LiveChunkOnPab();
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("f") });
        Kill("b");
        // b never answers: the other copies go, b's stays and keeps the record alive.
        _h.Nodes.DeleteFailures[_h.AddressOf("b")] = FakeNodeClient.Unavailable;
        for (var i = 0; i < 3; i++)
        {
            await _h.Maintenance.RunOnceAsync(default);
            _h.Time.Advance(TimeSpan.FromHours(1));
        }
        Assert.Equal(["b"], _h.Chunk(c).Copies.Select(x => x.NodeId));

        Assert.Equal(0, (await _h.Cluster.RemoveNodeAsync("b", force: false)).Errno);
        await _h.Maintenance.RunOnceAsync(default);
        Assert.False(_h.HasChunk(c));
        Assert.DoesNotContain(_h.Store.Load().Chunks, x => x.Id == c);
    }

    [Fact]
    public async Task The_last_available_copy_of_live_data_needs_force_and_is_reported_lost()
    {
        var (_, c) = await LiveChunkOnPab();
        lock (_h.State.Sync)
            _h.State.Chunks[c].Copies.RemoveAll(x => x.NodeId != "p");
        Kill("p");

        var refused = await _h.Cluster.RemoveNodeAsync("p", force: false);
        Assert.Equal(E.EBUSY, refused.Errno);
        Assert.Contains("only available copy of 1", refused.Message);
        Assert.NotNull(_h.Chunk(c).CopyOn("p"));
        Assert.Equal(1UL, _h.Cluster.Status().ChunksUnavailable);

        var forced = await _h.Cluster.RemoveNodeAsync("p", force: true);
        Assert.Equal(0, forced.Errno);
        Assert.Equal(1UL, forced.ChunksLost);
        Assert.Empty(_h.Chunk(c).Copies);
        Assert.Equal(1UL, _h.Cluster.Status().ChunksUnavailable);
    }

    [Fact]
    public async Task A_removed_node_that_comes_back_registers_as_new_and_its_stale_copy_is_deleted_by_inventory()
    {
        var (_, c) = await LiveChunkOnPab();
        Kill("p");
        Assert.Equal(0, (await _h.Cluster.RemoveNodeAsync("p", force: false)).Errno);
        _h.Nodes.ConfirmReplications = true;
        await _h.Maintenance.RunOnceAsync(default);   // back to 3 copies: a, b, c

        Assert.True(_h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "p" }).RegisterAgain);
        await _h.RegisterNode("p");
        var delete = _h.Cluster.ReconcileInventory("p", [new InventoryEntry { ChunkId = c, Size = 1000, CreatedUnixMs = 0 }]);
        Assert.Equal([c], delete);
    }
}
