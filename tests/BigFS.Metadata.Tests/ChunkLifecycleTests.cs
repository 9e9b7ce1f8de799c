using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

public class ChunkLifecycleTests
{
    private readonly Harness _h = new();

    private async Task Nodes(params string[] ids)
    {
        foreach (var id in ids)
            await _h.RegisterNode(id);
    }

    [Fact]
    public async Task Register_chunk_validates_and_is_idempotent()
    {
        await Nodes("p", "a", "b");
        Assert.Equal(Errno.EPERM, (await _h.RegisterChunk("stranger", NewChunkId())).Errno);
        Assert.Equal(Errno.EINVAL, (await _h.RegisterChunk("p", "../../etc/passwd")).Errno);
        Assert.Equal(Errno.EINVAL, (await _h.RegisterChunk("p", NewChunkId(), size: (ulong)_h.Options.ChunkSize + 1)).Errno);
        var id = NewChunkId();
        var first = await _h.RegisterChunk("p", id);
        var again = await _h.RegisterChunk("p", id);
        Assert.Equal(0, again.Errno);
        Assert.Equal(first.Replicas.Select(r => r.NodeId).Order(), again.Replicas.Select(r => r.NodeId).Order());
        Assert.Equal(3, _h.Chunk(id).Copies.Count);
        Assert.Equal(Errno.EEXIST, (await _h.RegisterChunk("a", id)).Errno);
        Assert.Equal(ChunkState.Uncommitted, _h.Chunk(id).State);
    }

    [Fact]
    public async Task Data_addresses_are_validated_and_handed_out_with_writable_nodes_and_replica_targets()
    {
        foreach (var bad in new[] { "no-port", "host:", ":9", "host:0", "host:70000", "http://host:9/x" })
            await Assert.ThrowsAsync<ArgumentException>(() =>
                _h.Cluster.RegisterNodeAsync(new RegisterNodeRequest { NodeId = "bad", Address = "127.0.0.1:1", DataAddress = bad }));
        foreach (var id in new[] { "p", "a", "b" })
            await _h.Cluster.RegisterNodeAsync(new RegisterNodeRequest
                { NodeId = id, Address = $"127.0.0.1:1{id[0] % 10}", DataAddress = $"127.0.0.1:2{id[0] % 10}", CapacityBytes = 1 << 30 });
        await _h.Cluster.RegisterNodeAsync(new RegisterNodeRequest { NodeId = "grpc-only", Address = "127.0.0.1:19", CapacityBytes = 1 << 30 });

        var writable = _h.Cluster.ListWritableNodes().Nodes.ToDictionary(n => n.NodeId, n => n.DataAddress);
        var reply = await _h.RegisterChunk("p", NewChunkId());

        Assert.Equal("127.0.0.1:22", writable["p"]);
        Assert.Equal("", writable["grpc-only"]);
        Assert.DoesNotContain("bad", writable.Keys);
        Assert.All(reply.Replicas, t => Assert.Equal(t.NodeId == "grpc-only" ? "" : $"127.0.0.1:2{t.NodeId[0] % 10}", t.DataAddress));
    }

    [Fact]
    public async Task Confirm_moves_pending_to_available_only_for_a_pending_assignment_and_may_be_repeated()
    {
        await Nodes("p", "a", "b", "c");
        var id = NewChunkId();
        var reply = await _h.RegisterChunk("p", id);
        var replica = reply.Replicas[0].NodeId;
        var notDesignated = new[] { "a", "b", "c" }.Except(reply.Replicas.Select(r => r.NodeId)).Single();
        Assert.Equal(Errno.ENOENT, (await Confirm(id, notDesignated)).Errno);
        Assert.Equal(Errno.ENOENT, (await Confirm(NewChunkId(), replica)).Errno);
        Assert.Equal(Errno.ENOENT, (await Confirm(id, "p")).Errno);   // the primary is AVAILABLE, not PENDING
        Assert.Equal(0, (await Confirm(id, replica)).Errno);
        Assert.Equal(CopyState.Available, _h.Chunk(id).CopyOn(replica)!.Status);
        Assert.Equal(0, (await Confirm(id, replica)).Errno);   // again (a lost reply): still AVAILABLE, nothing changes
        Assert.Equal(CopyState.Available, _h.Chunk(id).CopyOn(replica)!.Status);
    }

    private Task<ConfirmReplicaReply> Confirm(string chunk, string replica) =>
        _h.Cluster.ConfirmReplicaAsync(new ConfirmReplicaRequest { NodeId = "p", ChunkId = chunk, ReplicaNodeId = replica });

    [Fact]
    public async Task Unconfirmed_replica_is_replaced_after_the_timeout_a_bounded_number_of_times()
    {
        var options = new MetadataServerOptions { DataDirectory = "x", MaxReplicaConfirmationRetries = 2, DeadTimeout = TimeSpan.FromDays(1) };
        var h = new Harness(options);
        foreach (var id in new[] { "p", "n1", "n2", "n3", "n4", "n5" })
            await h.RegisterNode(id);
        var chunk = NewChunkId();
        var reply = await h.RegisterChunk("p", chunk, goal: 2);
        var pending = reply.Replicas.Single().NodeId;

        // Not yet timed out: nothing happens.
        h.Time.Advance(options.ReplicaConfirmationTimeout / 2);
        h.HeartbeatAll();
        await h.Maintenance.RunOnceAsync(default);
        Assert.Empty(h.Nodes.Replications);

        var seen = new List<string> { pending };
        for (var round = 1; round <= 4; round++)
        {
            h.Time.Advance(options.ReplicaConfirmationTimeout + TimeSpan.FromSeconds(1));
            h.HeartbeatAll();
            await h.Maintenance.RunOnceAsync(default);
            var copies = h.Chunk(chunk).Copies;
            Assert.Null(h.Chunk(chunk).CopyOn(seen[^1]));   // the timed-out copy is gone
            if (round <= options.MaxReplicaConfirmationRetries)
            {
                Assert.Equal(round, h.Nodes.Replications.Count);
                var (address, id, targets) = h.Nodes.Replications[^1];
                Assert.Equal(h.AddressOf("p"), address);       // asked a holder to copy
                Assert.Equal(chunk, id);
                var replacement = Assert.Single(targets);
                Assert.DoesNotContain(replacement, seen.TakeLast(1));
                Assert.Equal(CopyState.Pending, h.Chunk(chunk).CopyOn(replacement)!.Status);
                seen.Add(replacement);
            }
            else
            {
                Assert.Equal(options.MaxReplicaConfirmationRetries, h.Nodes.Replications.Count);   // bounded
                Assert.DoesNotContain(copies, c => c.Status == CopyState.Pending);
            }
        }
    }

    [Fact]
    public async Task Commit_makes_chunks_live_and_overwritten_chunks_garbage()
    {
        await Nodes("p");
        var f = await _h.Create(1, "f");
        var c1 = NewChunkId();
        var c2 = NewChunkId();
        await _h.RegisterChunk("p", c1, size: 1000, owner: f, goal: 1);
        await _h.RegisterChunk("p", c2, size: 1000, owner: f, goal: 1);
        var commit = new CommitWriteRequest { Ino = f };
        commit.Extents.Add(new Extent { FileOffset = 0, Length = 1000, ChunkId = c1 });
        var r = await _h.Ns.CommitWriteAsync(commit);
        Assert.Equal(0, r.Errno);
        Assert.Equal(1000ul, r.Attr.Size);
        Assert.Equal(1ul, r.Attr.Version);
        Assert.Equal(ChunkState.Live, _h.Chunk(c1).State);

        Assert.Equal(0, (await _h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = c2 })).Errno);
        Assert.Equal(ChunkState.Garbage, _h.Chunk(c1).State);
        Assert.Equal(ChunkState.Live, _h.Chunk(c2).State);

        var layout = _h.Ns.GetLayout(new GetLayoutRequest { Ino = f });
        var loc = Assert.Single(layout.Chunks);
        Assert.Equal(c2, loc.ChunkId);
        Assert.Equal(_h.AddressOf("p"), Assert.Single(loc.Copies).Address);

        // Truncate to 0 frees c2 too.
        await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 8, Size = 0 });
        Assert.Equal(ChunkState.Garbage, _h.Chunk(c2).State);
    }

    [Fact]
    public async Task A_hole_extent_punches_the_range_keeps_the_size_and_frees_chunks_it_covers_wholly()
    {
        await Nodes("p");
        var f = await _h.Create(1, "f");
        var (c1, c2) = (NewChunkId(), NewChunkId());
        await _h.RegisterChunk("p", c1, size: 1000, owner: f, goal: 1);
        await _h.RegisterChunk("p", c2, size: 1000, owner: f, goal: 1);
        var commit = new CommitWriteRequest { Ino = f };
        commit.Extents.Add(new Extent { FileOffset = 0, Length = 1000, ChunkId = c1 });
        commit.Extents.Add(new Extent { FileOffset = 1000, Length = 1000, ChunkId = c2 });
        Assert.Equal(0, (await _h.Ns.CommitWriteAsync(commit)).Errno);

        var r = await _h.Commit(f, new Extent { FileOffset = 500, Length = 1500 });   // no chunk: a hole
        Assert.Equal(0, r.Errno);
        Assert.Equal(2000ul, r.Attr.Size);
        var extent = Assert.Single(_h.Ns.GetLayout(new GetLayoutRequest { Ino = f }).Extents);
        Assert.Equal((0ul, 500ul, c1), (extent.FileOffset, extent.Length, extent.ChunkId));
        Assert.Equal(ChunkState.Live, _h.Chunk(c1).State);
        Assert.Equal(ChunkState.Garbage, _h.Chunk(c2).State);

        Assert.Equal(3100ul, (await _h.Commit(f, new Extent { FileOffset = 3000, Length = 100 })).Attr.Size);   // zeros past the end: the size grows
        Assert.Equal(Errno.EINVAL, (await _h.Commit(f, new Extent { FileOffset = 0, Length = 10, ChunkOffset = 5 })).Errno);
    }

    [Fact]
    public async Task Commit_with_an_unknown_or_invalid_chunk_changes_nothing()
    {
        await Nodes("p");
        var f = await _h.Create(1, "f");
        var good = NewChunkId();
        await _h.RegisterChunk("p", good, goal: 1);
        Assert.Equal(Errno.EIO, (await _h.Commit(f,
            new Extent { FileOffset = 0, Length = 10, ChunkId = good },
            new Extent { FileOffset = 10, Length = 10, ChunkId = NewChunkId() })).Errno);
        Assert.Equal(Errno.EINVAL, (await _h.Commit(f, new Extent { FileOffset = 0, Length = 10, ChunkId = "XYZ" })).Errno);
        var a = _h.Attr(f);
        Assert.Equal(0ul, a.Size);
        Assert.Equal(0ul, a.Version);
        Assert.Equal(ChunkState.Uncommitted, _h.Chunk(good).State);
    }

    [Fact]
    public async Task Unlink_makes_the_files_chunks_garbage()
    {
        await Nodes("p");
        var f = await _h.Create(1, "f");
        var c = NewChunkId();
        await _h.RegisterChunk("p", c, goal: 1);
        var commit = new CommitWriteRequest { Ino = f };
        commit.Extents.Add(new Extent { FileOffset = 0, Length = 1000, ChunkId = c });
        await _h.Ns.CommitWriteAsync(commit);
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("f") });
        Assert.Equal(ChunkState.Garbage, _h.Chunk(c).State);
    }

    [Fact]
    public async Task Dead_node_triggers_re_replication_from_an_available_holder()
    {
        var options = new MetadataServerOptions { DataDirectory = "x" };
        var h = new Harness(options);
        foreach (var id in new[] { "p", "a", "spare" })
            await h.RegisterNode(id);
        var (_, c, replicas) = await h.LiveChunk("p", goal: 2);
        var replica = replicas.Single();

        // The replica's node dies; the others keep heartbeating.
        h.PassTime(options.DeadTimeout + TimeSpan.FromSeconds(1), [.. new[] { "p", "a", "spare" }.Where(n => n != replica)]);
        h.Nodes.ConfirmReplications = true;
        await h.Maintenance.RunOnceAsync(default);

        var (address, chunk, targets) = Assert.Single(h.Nodes.Replications);
        Assert.Equal(c, chunk);
        Assert.Equal(h.AddressOf("p"), address);
        var target = Assert.Single(targets);
        Assert.NotEqual(replica, target);
        Assert.NotEqual("p", target);
        Assert.Equal(CopyState.Available, h.Chunk(c).CopyOn(target)!.Status);
        Assert.Equal(0ul, h.Cluster.Status().ChunksBelowGoal);
    }

    [Fact]
    public async Task A_copy_one_holder_cannot_make_comes_from_another_and_the_holders_take_turns()
    {
        // p and a both reach the metadata server, but p cannot reach b (a partition that is not a clean split).
        var options = new MetadataServerOptions { DataDirectory = "x", DeadTimeout = TimeSpan.FromDays(1) };
        var h = new Harness(options);
        foreach (var id in new[] { "p", "a", "b" })
            await h.RegisterNode(id);
        var f = await h.Create(1, "f");
        var c = NewChunkId();
        var reply = await h.RegisterChunk("p", c, owner: f, goal: 3);
        Assert.Equal(["a", "b"], reply.Replicas.Select(r => r.NodeId).Order());
        await h.Cluster.ConfirmReplicaAsync(new ConfirmReplicaRequest { NodeId = "p", ChunkId = c, ReplicaNodeId = "a" });
        await h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = c });

        async Task<string> NextCopierToB()
        {
            h.Time.Advance(options.ReplicaConfirmationTimeout + TimeSpan.FromSeconds(1));
            h.HeartbeatAll();
            var before = h.Nodes.Replications.Count;
            await h.Maintenance.RunOnceAsync(default);
            var (address, chunk, targets) = Assert.Single(h.Nodes.Replications.Skip(before));
            Assert.Equal(c, chunk);
            Assert.Equal(["b"], targets);
            return address;
        }

        // b's copy, which the primary pushed at registration, never came: a copies it instead.
        Assert.Equal(h.AddressOf("a"), await NextCopierToB());
        // a failed too (b was unreachable from both for a while): back to p, whose failure is older.
        Assert.Equal(h.AddressOf("p"), await NextCopierToB());
        // Then a again, which now reaches b.
        h.Nodes.ConfirmReplications = true;
        Assert.Equal(h.AddressOf("a"), await NextCopierToB());
        Assert.Equal(CopyState.Available, h.Chunk(c).CopyOn("b")!.Status);
        Assert.Equal(0ul, h.Cluster.Status().ChunksBelowGoal);
    }

    [Fact]
    public async Task Bad_copy_report_drops_the_copy_but_never_the_last_one()
    {
        await Nodes("p", "a");
        var c = NewChunkId();
        await _h.RegisterChunk("p", c, goal: 2);
        await _h.Cluster.ConfirmReplicaAsync(new ConfirmReplicaRequest { NodeId = "p", ChunkId = c, ReplicaNodeId = "a" });
        Assert.Equal(0, await _h.Cluster.ReportBadCopyAsync(c, "a", "checksum"));
        Assert.Null(_h.Chunk(c).CopyOn("a"));
        Assert.Equal(0, await _h.Cluster.ReportBadCopyAsync(c, "p", "checksum"));
        Assert.NotNull(_h.Chunk(c).CopyOn("p"));
        Assert.Equal(Errno.ENOENT, await _h.Cluster.ReportBadCopyAsync(c, "zz", "x"));
    }

    [Fact]
    public async Task Inventory_returns_unknown_chunks_older_than_the_grace()
    {
        await Nodes("p", "a");
        var known = NewChunkId();
        await _h.RegisterChunk("p", known, goal: 1);
        var now = _h.Time.GetUtcNow().ToUnixTimeMilliseconds();
        var oldOrphan = NewChunkId();
        var youngOrphan = NewChunkId();
        var entries = new[]
        {
            new InventoryEntry { ChunkId = known, CreatedUnixMs = now - 7_200_000 },
            new InventoryEntry { ChunkId = oldOrphan, CreatedUnixMs = now - 7_200_000 },
            new InventoryEntry { ChunkId = youngOrphan, CreatedUnixMs = now - 1000 },
            new InventoryEntry { ChunkId = "not-an-id", CreatedUnixMs = 0 },
        };
        Assert.Equal([oldOrphan], _h.Cluster.ReconcileInventory("p", entries));
        // A copy of a known chunk on a node the record does not list, while the goal is met: surplus.
        Assert.Equal([known, oldOrphan], _h.Cluster.ReconcileInventory("a", entries));
    }

    [Fact]
    public async Task Heartbeat_from_unknown_node_asks_to_register_again()
    {
        Assert.True(_h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "ghost" }).RegisterAgain);
        await Nodes("p");
        Assert.False(_h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "p" }).RegisterAgain);
    }

    [Fact]
    public async Task Node_state_goes_active_suspect_dead()
    {
        await Nodes("p");
        NodeState State() => _h.Cluster.Status().Nodes.Single().State;
        Assert.Equal(NodeState.Active, State());
        _h.Time.Advance(_h.Options.HeartbeatTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(NodeState.Suspect, State());
        Assert.Empty(_h.Cluster.ListWritableNodes().Nodes);
        _h.Time.Advance(_h.Options.DeadTimeout);
        Assert.Equal(NodeState.Dead, State());
        _h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "p", CapacityBytes = 10UL << 30 });
        Assert.Equal(NodeState.Active, State());
        Assert.Single(_h.Cluster.ListWritableNodes().Nodes);
    }

    [Fact]
    public async Task A_full_node_is_offered_for_no_new_chunk_until_it_has_room_again()
    {
        await Nodes("p", "a", "full");
        _h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "full", CapacityBytes = 1UL << 30, UsedBytes = (1UL << 30) - 4096 });
        Assert.DoesNotContain("full", _h.Cluster.ListWritableNodes().Nodes.Select(n => n.NodeId));
        var reply = await _h.RegisterChunk("p", NewChunkId());
        Assert.Equal(["a"], reply.Replicas.Select(r => r.NodeId));   // goal 3, but the full node takes no copy

        _h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "full", CapacityBytes = 1UL << 30, UsedBytes = 1UL << 20 });
        Assert.Contains("full", _h.Cluster.ListWritableNodes().Nodes.Select(n => n.NodeId));
    }
}
