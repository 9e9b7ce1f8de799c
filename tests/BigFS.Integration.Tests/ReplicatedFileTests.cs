using BigFS.Protocol;
using static BigFS.Testing.FileHelpers;

namespace BigFS.Integration.Tests;

/// <summary>
/// Files written through the client library to a 3-node cluster: metadata over gRPC, chunk
/// data over the nodes' bulk listeners (each data test checks that no chunk data used gRPC).
/// </summary>
public class ReplicatedFileTests
{
    [Fact]
    public async Task A64MiBRandomFileReadsBackIdenticalWithThreeAvailableCopiesOfEveryChunk()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var data = RandomBytes(64 << 20, seed: 1);
        var file = await CreateFileAsync(client, "big.bin");

        await WriteAsync(client, file.Ino, 0, data);

        var reader = await cluster.ClientAsync();
        Assert.Equal(Sha256(data), Sha256(await ReadAllAsync(reader, file.Ino)));

        // Replication completes in the background after min copies; wait for all three.
        LayoutReply layout = null!;
        await Poll.UntilAsync(async () =>
        {
            layout = await LayoutAsync(client, file.Ino);
            return layout.Chunks.All(c => c.Copies.Count(k => k.Status == CopyStatus.Available) == 3);
        }, TimeSpan.FromSeconds(30), "3 AVAILABLE copies of every chunk");

        Assert.True(layout.Chunks.Count >= 16, $"64 MiB in 4 MiB chunks is at least 16 chunks, got {layout.Chunks.Count}");
        foreach (var chunk in layout.Chunks)
        {
            Assert.Equal(3, chunk.Copies.Select(c => c.NodeId).Distinct().Count());
            Assert.Equal(3, cluster.NodesHolding(chunk.ChunkId));
        }
        cluster.AssertChunkDataWentOverBulkOnly();
    }

    [Fact]
    public async Task AReaderWhoseLayoutPredatesAnotherWritersCollectedChunkReadsTheNewData()
    {
        await using var cluster = await TestCluster.StartAsync();
        var writer = await cluster.ClientAsync();
        var file = await CreateFileAsync(writer, "rewritten.bin");
        var (before, after) = (RandomBytes(1 << 20, seed: 31), RandomBytes(1 << 20, seed: 32));
        await WriteAsync(writer, file.Ino, 0, before);
        var oldChunk = (await LayoutAsync(writer, file.Ino)).Chunks.Single().ChunkId;

        var reader = await cluster.ClientAsync();
        await using var handle = reader.OpenFile(file.Ino, before.Length);
        var head = new byte[4096];
        await handle.ReadAsync(0, head);   // the handle now holds the layout naming oldChunk
        Assert.Equal(before[..4096], head);

        // Another writer replaces every byte; the old chunk becomes garbage and is collected.
        await WriteAsync(writer, file.Ino, 0, after);
        await Poll.UntilAsync(() => cluster.NodesHolding(oldChunk) == 0, TimeSpan.FromSeconds(30), "the replaced chunk to be collected");

        // Not EIO: every copy of the chunk its layout names is gone, so the handle asks again.
        var middle = new byte[64 << 10];
        await handle.ReadAsync(512 << 10, middle);
        Assert.Equal(after[(512 << 10)..((512 << 10) + (64 << 10))], middle);
    }

    [Fact]
    public async Task NodesWithoutADataListenerCarryEverythingOverGrpc()
    {
        await using var cluster = await TestCluster.StartAsync(configureNode: o => o.DataListen = "none");
        var client = await cluster.ClientAsync();
        var data = RandomBytes(9 << 20, seed: 11);
        var file = await CreateFileAsync(client, "grpc.bin");

        await WriteAsync(client, file.Ino, 0, data);

        Assert.Equal(Sha256(data), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
        await Poll.UntilAsync(async () => (await LayoutAsync(client, file.Ino)).Chunks.All(c => c.Copies.Count(k => k.Status == CopyStatus.Available) == 3),
            TimeSpan.FromSeconds(30), "3 AVAILABLE copies of every chunk");
        var nodes = cluster.Nodes.OfType<BigFS.Storage.StorageNode>().ToList();
        Assert.All(nodes, n => Assert.Equal("", n.DataAddress));
        Assert.True(nodes.Sum(n => n.Traffic.GrpcWrites) >= 3);
        Assert.True(nodes.Sum(n => n.Traffic.GrpcReplicas) >= 6);
        Assert.True(nodes.Sum(n => n.Traffic.GrpcReads) >= 1);
        Assert.Equal(0, nodes.Sum(n => n.Traffic.BulkReads + n.Traffic.BulkWrites + n.Traffic.BulkReplicas));
    }

    [Fact]
    public async Task OverwriteAndTruncateInTheMiddleMatchAPlainArray()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var model = RandomBytes(10 << 20, seed: 2);
        var file = await CreateFileAsync(client, "edit.bin");
        await WriteAsync(client, file.Ino, 0, model);
        var chunksBefore = (await LayoutAsync(client, file.Ino)).Chunks.Select(c => c.ChunkId).ToHashSet();

        // Overwrite 100 KiB in the middle: only that range is uploaded again.
        var patch = RandomBytes(100 << 10, seed: 3);
        await WriteAsync(client, file.Ino, 5_000_000, patch);
        patch.CopyTo(model, 5_000_000);
        Assert.Equal(Sha256(model), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
        var layout = await LayoutAsync(client, file.Ino);
        var newChunks = layout.Chunks.Select(c => c.ChunkId).Where(id => !chunksBefore.Contains(id)).ToList();
        Assert.Single(newChunks);
        Assert.Equal((ulong)patch.Length, layout.Chunks.Single(c => c.ChunkId == newChunks[0]).Size);

        // Truncate in the middle, then extend with a hole.
        await using (var handle = client.OpenFile(file.Ino, model.Length))
        {
            await handle.TruncateAsync(3_000_001);
            await handle.TruncateAsync(4_000_000);
        }
        var expected = new byte[4_000_000];
        Array.Copy(model, expected, 3_000_001);
        Assert.Equal(Sha256(expected), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
        cluster.AssertChunkDataWentOverBulkOnly();
    }

    [Fact]
    public async Task DeletingAFileRemovesEveryCopyFromEveryNode()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var file = await CreateFileAsync(client, "doomed.bin");
        await WriteAsync(client, file.Ino, 0, RandomBytes(9 << 20, seed: 4));
        LayoutReply layout = null!;
        await Poll.UntilAsync(async () =>
        {
            layout = await LayoutAsync(client, file.Ino);
            return layout.Chunks.All(c => cluster.NodesHolding(c.ChunkId) == 3);
        }, TimeSpan.FromSeconds(30), "every copy on disk");
        var ids = layout.Chunks.Select(c => c.ChunkId).ToList();

        var unlink = await client.Namespace.UnlinkAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("doomed.bin") });
        Assert.Equal(0, unlink.Errno);

        await Poll.UntilAsync(() => ids.All(id => cluster.NodesHolding(id) == 0), TimeSpan.FromSeconds(30), "every copy deleted");
        await Poll.UntilAsync(async () => (await cluster.StatusAsync()).ChunksTotal == 0,
            TimeSpan.FromSeconds(30), "chunk records removed");
    }

    [Fact]
    public async Task AnUncommittedChunkIsCollectedAfterTheGracePeriod()
    {
        await using var cluster = await TestCluster.StartAsync(configure: o => o.UncommittedChunkGrace = TimeSpan.FromSeconds(2));
        var client = await cluster.ClientAsync();
        var file = await CreateFileAsync(client, "never-committed.bin");

        // Upload a chunk straight to a node (as a writer that dies before committing would).
        var data = RandomBytes(1 << 20, seed: 5);
        var id = BigFS.Core.ChunkId.NewRandom().ToString();
        var node = new ChunkStore.ChunkStoreClient(GrpcChannels.Create(cluster.Nodes[0]!.Address));
        using (var call = node.WriteChunk())
        {
            await call.RequestStream.WriteAsync(new ChunkUpload { Header = new ChunkHeader { ChunkId = id, Size = (ulong)data.Length, Checksum = BigFS.Core.ChunkChecksum.Compute(data), OwnerIno = file.Ino } });
            for (var at = 0; at < data.Length; at += 64 << 10)
                await call.RequestStream.WriteAsync(new ChunkUpload { Data = Google.Protobuf.ByteString.CopyFrom(data, at, 64 << 10) });
            await call.RequestStream.CompleteAsync();
            await call;
        }
        Assert.True(cluster.NodesHolding(id) >= 1);

        await Poll.UntilAsync(() => cluster.NodesHolding(id) == 0, TimeSpan.FromSeconds(30), "the uncommitted chunk to be collected");
        var attr = await client.Namespace.GetAttrAsync(new InodeRequest { Ino = file.Ino });
        Assert.Equal(0UL, attr.Attr.Size);
    }

    [Fact]
    public async Task ANodeStoppedDuringAWriteDoesNotFailTheWrite()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 4);
        var client = await cluster.ClientAsync();
        var data = RandomBytes(48 << 20, seed: 6);
        var file = await CreateFileAsync(client, "survivor.bin");

        await using (var handle = client.OpenFile(file.Ino, 0))
        {
            for (var at = 0; at < data.Length; at += 1 << 20)
            {
                if (at == 12 << 20)
                    await cluster.Nodes[1]!.KillAsync();
                await handle.WriteAsync(at, data.AsMemory(at, 1 << 20));
            }
            await handle.FlushAsync();
        }

        Assert.Equal(Sha256(data), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
        cluster.AssertChunkDataWentOverBulkOnly();
    }

    [Fact]
    public async Task EverythingIsStillReadableAfterTheMetadataServerRestarts()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var dir = await client.Namespace.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = TestCluster.Name("d"), Type = InodeType.Directory, Mode = 0x1ed });
        Assert.Equal(0, dir.Errno);
        var data = RandomBytes(6 << 20, seed: 7);
        var file = await CreateFileAsync(client, "kept.bin", dir.Attr.Ino);
        await WriteAsync(client, file.Ino, 0, data);

        await cluster.RestartMetaAsync();
        await cluster.WaitForActiveNodesAsync(3);

        var fresh = await cluster.ClientAsync();
        var found = await fresh.ResolvePathAsync("/d/kept.bin");
        Assert.Equal(file.Ino, found.Ino);
        Assert.Equal(Sha256(data), Sha256(await ReadAllAsync(fresh, found.Ino)));
        cluster.AssertChunkDataWentOverBulkOnly(); // the data addresses survived the restart (persisted node records)
    }
}
