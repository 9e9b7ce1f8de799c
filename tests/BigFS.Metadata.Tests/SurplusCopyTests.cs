using BigFS.Metadata.Model;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

/// <summary>A live chunk with more healthy copies than its goal sheds the surplus, two-phase like garbage.</summary>
public class SurplusCopyTests
{
    private readonly Harness _h = new();

    private static readonly string[] Everyone = ["p", "a", "b", "spare"];

    /// <summary>Nodes p, a, b and spare, and file f's chunk with AVAILABLE copies on p (primary), a and b (goal 3).</summary>
    private async Task<(ulong File, string Chunk)> LiveChunkOnPab()
    {
        foreach (var id in new[] { "p", "a", "b" })
            await _h.RegisterNode(id);
        var (f, c, replicas) = await _h.LiveChunk("p", goal: 3);
        Assert.Equal(["a", "b"], replicas);
        await _h.RegisterNode("spare");
        return (f, c);
    }

    private List<string> Copies(string chunk, CopyState state) =>
        [.. _h.Chunk(chunk).Copies.Where(x => x.Status == state).Select(x => x.NodeId).Order()];

    /// <summary>
    /// b is counted dead while the others go on, and its copy is made again on spare; then b is
    /// back: four healthy copies of a goal-3 chunk. <paramref name="fullest"/> (if any) reports
    /// itself nearly full. Maintenance has not run since b's return.
    /// </summary>
    private async Task<(ulong File, string Chunk)> FourCopiesOnceBIsBack(string? fullest)
    {
        var (f, c) = await LiveChunkOnPab();
        _h.PassTime(_h.Options.DeadTimeout + TimeSpan.FromSeconds(1), "p", "a", "spare");
        _h.Nodes.ConfirmReplications = true;
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal(["a", "b", "p", "spare"], Copies(c, CopyState.Available));   // b's copy is still listed, not counted
        Assert.Equal(0ul, _h.Cluster.Status().ChunksBelowGoal);

        if (fullest is not null)
            _h.Heartbeat(fullest, used: 99UL << 30);
        _h.Heartbeat("b");
        _h.Nodes.Deletes.Clear();
        return (f, c);
    }

    [Fact]
    public async Task A_node_back_after_it_was_counted_dead_leaves_a_surplus_copy_that_is_dropped()
    {
        var (f, c) = await FourCopiesOnceBIsBack(fullest: "spare");
        await _h.Maintenance.RunOnceAsync(default);

        Assert.Equal([(_h.AddressOf("spare"), c)], _h.Nodes.Deletes);
        Assert.Equal(["a", "b", "p"], Copies(c, CopyState.Available));
        Assert.Empty(Copies(c, CopyState.Deleting));
        Assert.Equal(ChunkState.Live, _h.Chunk(c).State);
        Assert.True(_h.Chunk(c).CopyOn("p")!.Primary);
        Assert.Equal(3, Assert.Single(_h.Ns.GetLayout(new GetLayoutRequest { Ino = f }).Chunks).Copies.Count);

        // At goal: later passes leave it alone.
        _h.Nodes.Deletes.Clear();
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Empty(_h.Nodes.Deletes);
    }

    [Fact]
    public async Task A_surplus_copy_whose_delete_fails_is_never_served_and_its_delete_is_retried()
    {
        var (f, c) = await FourCopiesOnceBIsBack(fullest: "a");
        _h.Nodes.DeleteFailures[_h.AddressOf("a")] = FakeNodeClient.Unavailable;
        await _h.Maintenance.RunOnceAsync(default);

        Assert.Equal(["a"], Copies(c, CopyState.Deleting));
        var served = Assert.Single(_h.Ns.GetLayout(new GetLayoutRequest { Ino = f }).Chunks).Copies.Select(x => x.NodeId).Order();
        Assert.Equal(["b", "p", "spare"], served);

        _h.Nodes.DeleteFailures.Clear();
        _h.Nodes.Deletes.Clear();
        _h.PassTime(TimeSpan.FromMinutes(5), Everyone);
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Equal([(_h.AddressOf("a"), c)], _h.Nodes.Deletes);
        Assert.Equal(["b", "p", "spare"], Copies(c, CopyState.Available));
        Assert.Empty(Copies(c, CopyState.Deleting));
    }

    [Fact]
    public async Task Nothing_is_dropped_while_a_copy_is_pending_nor_counting_a_node_that_is_not_active()
    {
        var (_, c) = await FourCopiesOnceBIsBack(fullest: null);

        // A copy is being made: wait for it to settle first.
        lock (_h.State.Sync)
            _h.Chunk(c).Copies.Add(new CopyRecord { NodeId = "late", Status = CopyState.Pending, DesignatedMs = _h.State.NowMs });
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Empty(_h.Nodes.Deletes);
        lock (_h.State.Sync)
            _h.Chunk(c).Copies.RemoveAll(x => x.NodeId == "late");

        // b suspect again: three healthy copies, at goal, nothing to drop (b's copy may be needed yet).
        _h.PassTime(_h.Options.HeartbeatTimeout + TimeSpan.FromSeconds(1), "p", "a", "spare");
        await _h.Maintenance.RunOnceAsync(default);
        Assert.Empty(_h.Nodes.Deletes);
        Assert.Equal(["a", "b", "p", "spare"], Copies(c, CopyState.Available));
    }

    [Fact]
    public async Task The_primary_copy_is_never_the_one_dropped()
    {
        var (_, c) = await FourCopiesOnceBIsBack(fullest: "p");
        await _h.Maintenance.RunOnceAsync(default);

        var (address, _) = Assert.Single(_h.Nodes.Deletes);
        Assert.NotEqual(_h.AddressOf("p"), address);
        Assert.Contains("p", Copies(c, CopyState.Available));
        Assert.Equal(3, Copies(c, CopyState.Available).Count);
    }
}
