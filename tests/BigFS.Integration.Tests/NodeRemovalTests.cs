using BigFS.Protocol;
using static BigFS.Testing.FileHelpers;

namespace BigFS.Integration.Tests;

/// <summary>A storage node that is gone for good, forgotten with RemoveNode over real gRPC.</summary>
public class NodeRemovalTests
{
    [Fact]
    public async Task RemovingADeadNodeLetsGcFinishAndKeepsEveryLiveFileAtGoal()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 4);
        var client = await cluster.ClientAsync();
        var kept = RandomBytes(9 << 20, seed: 21);
        var keptFile = await CreateFileAsync(client, "kept.bin");
        await WriteAsync(client, keptFile.Ino, 0, kept);
        var doomedFile = await CreateFileAsync(client, "doomed.bin");
        await WriteAsync(client, doomedFile.Ino, 0, RandomBytes(5 << 20, seed: 22));
        await Poll.UntilAsync(async () => (await cluster.StatusAsync()) is { CopiesPending: 0, ChunksBelowGoal: 0, LiveChunks: 5 },
            TimeSpan.FromSeconds(30), "5 live chunks at goal");

        // The victim holds a copy of the doomed file's first chunk.
        var doomedChunk = (await LayoutAsync(client, doomedFile.Ino)).Chunks[0];
        var victimId = doomedChunk.Copies[0].NodeId;
        var victim = cluster.Nodes.FindIndex(n => n?.NodeId == victimId);
        await cluster.Nodes[victim]!.KillAsync();
        Assert.Equal(0, (await client.Namespace.UnlinkAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("doomed.bin") })).Errno);
        await Poll.UntilAsync(async () => (await cluster.StatusAsync()).Nodes.Single(n => n.NodeId == victimId).State == NodeState.Dead,
            TimeSpan.FromSeconds(20), "the killed node declared dead");

        // GC deletes the other copies but cannot finish: the dead node's copy keeps the record.
        await Poll.UntilAsync(() => cluster.NodesHolding(doomedChunk.ChunkId) == 1, TimeSpan.FromSeconds(30),
            "the doomed chunk deleted everywhere but on the dead node");
        var stuck = await cluster.StatusAsync();
        Assert.True(stuck.ChunksGarbage >= 1, $"expected garbage waiting on the dead node, status: {stuck}");

        var cl = new Cluster.ClusterClient(GrpcChannels.Create(cluster.Meta.Address));
        var live = cluster.Nodes.First(n => n!.NodeId != victimId)!.NodeId;
        Assert.Equal(BigFS.Core.Errno.EBUSY, (await cl.RemoveNodeAsync(new RemoveNodeRequest { NodeId = live })).Errno);
        var removed = await cl.RemoveNodeAsync(new RemoveNodeRequest { NodeId = victimId });
        Assert.Equal(0, removed.Errno);
        Assert.True(removed.CopiesDropped >= 1);
        Assert.Equal(0UL, removed.ChunksLost);

        await Poll.UntilAsync(async () => (await cluster.StatusAsync()) is { ChunksGarbage: 0, ChunksTotal: 3, ChunksBelowGoal: 0, CopiesAvailable: 9 }
                && (await LayoutAsync(client, keptFile.Ino)).Chunks.All(c => c.Copies.Count(k => k.Status == CopyStatus.Available && k.NodeId != victimId) == 3),
            TimeSpan.FromSeconds(30), "garbage collected and the kept file at 3 copies on live nodes");
        Assert.DoesNotContain((await cluster.StatusAsync()).Nodes, n => n.NodeId == victimId);
        Assert.Equal(Sha256(kept), Sha256(await ReadAllAsync(await cluster.ClientAsync(), keptFile.Ino)));
    }
}
