using BigFS.Metadata.Model;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

public class GarbageCollectionTests
{
    private readonly Harness _h = new(new MetadataServerOptions
    {
        DataDirectory = "x", DeadTimeout = TimeSpan.FromDays(1), ReplicaConfirmationTimeout = TimeSpan.FromHours(2),
    });

    /// <summary>A garbage chunk with primary on p, AVAILABLE replica on a, PENDING replica on b.</summary>
    private async Task<string> GarbageChunk()
    {
        foreach (var id in new[] { "p", "a", "b" })
            await _h.RegisterNode(id);
        var f = await _h.Create(1, "f");
        var c = NewChunkId();
        var reply = await _h.RegisterChunk("p", c, owner: f, goal: 3);
        Assert.Equal(2, reply.Replicas.Count);
        await _h.Cluster.ConfirmReplicaAsync(new ConfirmReplicaRequest { NodeId = "p", ChunkId = c, ReplicaNodeId = "a" });
        await _h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = c });
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("f") });
        Assert.Equal(ChunkState.Garbage, _h.Chunk(c).State);
        return c;
    }

    [Fact]
    public async Task Phase_one_marks_available_copies_deleting_persistently_and_phase_two_leaves_pending_alone()
    {
        var c = await GarbageChunk();
        // Deletes fail (node unreachable) so the phase-1 state stays visible.
        foreach (var n in new[] { "p", "a", "b" })
            _h.Nodes.DeleteFailures[_h.AddressOf(n)] = FakeNodeClient.Unavailable;
        await _h.Maintenance.RunOnceAsync(default);

        var chunk = _h.Chunk(c);
        Assert.Equal(CopyState.Deleting, chunk.CopyOn("p")!.Status);
        Assert.Equal(CopyState.Deleting, chunk.CopyOn("a")!.Status);
        Assert.Equal(CopyState.Pending, chunk.CopyOn("b")!.Status);
        // Persisted: the store holds the DELETING marks.
        var stored = _h.Store.Load().Chunks.Single(x => x.Id == c);
        Assert.Equal(CopyState.Deleting, stored.CopyOn("a")!.Status);
        // Phase 2 asked the primary and the DELETING replica, never the PENDING one.
        Assert.Contains((_h.AddressOf("p"), c), _h.Nodes.Deletes);
        Assert.Contains((_h.AddressOf("a"), c), _h.Nodes.Deletes);
        Assert.DoesNotContain(_h.Nodes.Deletes, d => d.Address == _h.AddressOf("b"));
    }

    [Fact]
    public async Task Successful_deletes_remove_copies_and_the_record_once_every_copy_is_gone()
    {
        var c = await GarbageChunk();
        await _h.Maintenance.RunOnceAsync(default);
        // p and a deleted; b is PENDING so the record stays.
        Assert.Equal(["b"], _h.Chunk(c).Copies.Select(x => x.NodeId));
        // The pending copy gets confirmed late: next pass marks and deletes it, then the record goes.
        Assert.Equal(0, (await _h.Cluster.ConfirmReplicaAsync(new ConfirmReplicaRequest { NodeId = "p", ChunkId = c, ReplicaNodeId = "b" })).Errno);
        await _h.Maintenance.RunOnceAsync(default);
        Assert.False(_h.HasChunk(c));
        Assert.DoesNotContain(_h.Store.Load().Chunks, x => x.Id == c);
    }

    [Fact]
    public async Task NotFound_with_a_recent_heartbeat_counts_as_deleted()
    {
        var c = await GarbageChunk();
        _h.Nodes.DeleteFailures[_h.AddressOf("a")] = FakeNodeClient.NotFound;
        _h.Time.Advance(TimeSpan.FromSeconds(10));
        _h.HeartbeatAll();
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Null(_h.Chunk(c).CopyOn("a"));
    }

    [Fact]
    public async Task NotFound_with_a_stale_heartbeat_is_retried_later_not_counted()
    {
        var c = await GarbageChunk();
        _h.Nodes.DeleteFailures[_h.AddressOf("a")] = FakeNodeClient.NotFound;
        // a's last heartbeat is older than the threshold (node still not Dead: DeadTimeout is a day).
        _h.Time.Advance(_h.Options.TimestampHeuristicThreshold + TimeSpan.FromSeconds(1));
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal(CopyState.Deleting, _h.Chunk(c).CopyOn("a")!.Status);
        var asked = _h.Nodes.Deletes.Count(d => d.Address == _h.AddressOf("a"));
        Assert.Equal(1, asked);

        // Within the back-off: not asked again.
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal(1, _h.Nodes.Deletes.Count(d => d.Address == _h.AddressOf("a")));

        // After the back-off, with a fresh heartbeat, NotFound now counts.
        _h.Time.Advance(_h.Options.CleanupInterval * 2);
        _h.HeartbeatAll();
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal(2, _h.Nodes.Deletes.Count(d => d.Address == _h.AddressOf("a")));
        Assert.Null(_h.Chunk(c).CopyOn("a"));
    }

    [Fact]
    public async Task Primary_is_always_asked_even_when_its_copy_is_not_deleting()
    {
        var c = await GarbageChunk();
        lock (_h.State.Sync)
            _h.Chunk(c).CopyOn("p")!.Status = CopyState.Pending;   // odd state: a primary never confirmed
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Contains((_h.AddressOf("p"), c), _h.Nodes.Deletes);
        Assert.Null(_h.Chunk(c).CopyOn("p"));
    }

    [Fact]
    public async Task Uncommitted_chunks_are_collected_after_the_grace()
    {
        foreach (var id in new[] { "p" })
            await _h.RegisterNode(id);
        var c = NewChunkId();
        await _h.RegisterChunk("p", c, goal: 1);
        await _h.Maintenance.RunOnceAsync(default);
        Assert.True(_h.HasChunk(c));
        Assert.Empty(_h.Nodes.Deletes);
        _h.Time.Advance(_h.Options.UncommittedChunkGrace + TimeSpan.FromSeconds(1));
        _h.HeartbeatAll();
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal([(_h.AddressOf("p"), c)], _h.Nodes.Deletes);
        Assert.False(_h.HasChunk(c));
    }
}
