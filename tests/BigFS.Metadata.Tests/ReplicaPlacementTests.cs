using BigFS.Metadata.Logic;
using BigFS.Metadata.Model;

namespace BigFS.Metadata.Tests;

public class ReplicaPlacementTests
{
    private static NodeRecord Node(string id, long free, params string[] labels) =>
        new() { Id = id, CapacityBytes = free, UsedBytes = 0, Labels = [.. labels] };

    [Fact]
    public void Chooses_distinct_nodes_and_no_more_than_exist()
    {
        var nodes = new[] { Node("a", 100), Node("b", 100), Node("c", 100) };
        var random = new Random(1);
        for (var i = 0; i < 200; i++)
        {
            var chosen = ReplicaPlacement.Choose(nodes, 2, [], random);
            Assert.Equal(2, chosen.Select(n => n.Id).Distinct().Count());
        }
        Assert.Equal(3, ReplicaPlacement.Choose(nodes, 5, [], random).Count);
        Assert.Empty(ReplicaPlacement.Choose([], 2, [], random));
    }

    [Fact]
    public void Weighted_by_free_space_over_many_draws()
    {
        var nodes = new[] { Node("big", 900L << 30), Node("small", 100L << 30) };
        var random = new Random(7);
        var big = 0;
        const int draws = 20_000;
        for (var i = 0; i < draws; i++)
            if (ReplicaPlacement.Choose(nodes, 1, [], random)[0].Id == "big") big++;
        var share = big / (double)draws;
        Assert.InRange(share, 0.88, 0.92);   // expected 0.9; 20k draws give σ ≈ 0.002
    }

    [Fact]
    public void Spreads_across_labels_when_possible()
    {
        var nodes = new[] { Node("r1a", 1000, "rack1"), Node("r1b", 1000, "rack1"), Node("r2a", 10, "rack2") };
        var random = new Random(3);
        for (var i = 0; i < 100; i++)
        {
            var chosen = ReplicaPlacement.Choose(nodes, 1, ["rack1"], random);
            Assert.Equal("r2a", chosen[0].Id);
        }
    }

    [Fact]
    public async Task Registration_never_picks_the_primary_nor_dead_or_suspect_nodes()
    {
        var h = new Harness();
        foreach (var id in new[] { "p", "a", "b", "late" })
            await h.RegisterNode(id);
        // "late" stops heartbeating and becomes Suspect, then Dead.
        h.PassTime(h.Options.HeartbeatTimeout + TimeSpan.FromSeconds(1), "p", "a", "b");
        for (var i = 0; i < 50; i++)
        {
            var reply = await h.RegisterChunk("p", Harness.NewChunkId(), goal: 3);
            Assert.Equal(0, reply.Errno);
            var ids = reply.Replicas.Select(r => r.NodeId).ToList();
            Assert.Equal(2, ids.Count);
            Assert.DoesNotContain("p", ids);
            Assert.DoesNotContain("late", ids);
            Assert.Equal(2, ids.Distinct().Count());
        }
    }

    [Fact]
    public async Task Fewer_nodes_than_goal_designates_what_exists()
    {
        var h = new Harness();
        await h.RegisterNode("p");
        await h.RegisterNode("a");
        var reply = await h.RegisterChunk("p", Harness.NewChunkId(), goal: 5);
        Assert.Equal(["a"], reply.Replicas.Select(r => r.NodeId));
    }
}
