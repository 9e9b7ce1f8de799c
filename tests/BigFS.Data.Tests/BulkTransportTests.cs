using BigFS.Core;
using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using Google.Protobuf;
using Grpc.Core;

namespace BigFS.Data.Tests;

/// <summary>The bulk data listener over real sockets: round trips, and bad input rejected with nothing left behind.</summary>
public class BulkTransportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static ChunkHeader HeaderFor(string id, byte[] data, ulong? checksum = null) =>
        new() { ChunkId = id, Size = (ulong)data.Length, Checksum = checksum ?? ChunkChecksum.Compute(data), OwnerIno = 42, Goal = 3 };

    private static async Task<WriteChunkReply> WriteAsync(BulkClient bulk, string address, ChunkHeader header, byte[] data, BulkOp op = BulkOp.WriteChunk)
    {
        await using var upload = await bulk.BeginUploadAsync(address, op, header, Timeout, CancellationToken.None);
        for (var at = 0; at < data.Length; at += 100_000)
            await upload.SendAsync(data.AsMemory(at, Math.Min(100_000, data.Length - at)));
        return WriteChunkReply.Parser.ParseFrom(await upload.CompleteAsync());
    }

    private static async Task<byte[]> ReadAsync(BulkClient bulk, string address, string id, long offset = 0, long length = 0)
    {
        var blocks = new List<byte>();
        await bulk.ReadChunkAsync(address, id, offset, length, Timeout, size => new byte[size], (_, data, size, checksum) =>
        {
            Assert.Equal(size, data.Length);
            Assert.Equal(ChunkChecksum.Compute(data), checksum);
            blocks.AddRange(data);
        }, CancellationToken.None);
        return [.. blocks];
    }

    private static void AssertNothingLeft(TestCluster cluster, int node, string id)
    {
        Assert.Null(cluster.Meta.GetChunk(id));
        Assert.False(File.Exists(cluster.ChunkPath(node, id)));
        Assert.Empty(cluster.UploadFiles(node));
    }

    [Fact]
    public async Task WriteChunk_StoresRegistersAndReplicatesOverBulk_AndReadsBackFromEveryCopy()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(1_000_000, 11);
        var id = ChunkId.NewRandom().ToString();

        var reply = await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data);

        Assert.True(reply.DurableCopies >= 2);
        Assert.All(reply.Copies, c => Assert.NotEqual("", c.DataAddress));
        var registered = cluster.Meta.GetChunk(id);
        Assert.NotNull(registered);
        Assert.Equal(ChunkChecksum.ComputeBlocks(data), registered.BlockChecksums);
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return registered.Replicas.Values.Count(s => s == CopyStatus.Available) == 2; }, TimeSpan.FromSeconds(20), "both replicas confirmed");
        foreach (var node in cluster.Nodes)
            Assert.Equal(data, await ReadAsync(bulk, node.DataAddress, id));
        // Every byte went over the bulk listeners, none over gRPC.
        Assert.Equal(1, cluster.Nodes[0].Traffic.BulkWrites);
        Assert.Equal(2, cluster.Nodes.Sum(n => n.Traffic.BulkReplicas));
        Assert.Equal(0, cluster.Nodes.Sum(n => n.Traffic.GrpcWrites + n.Traffic.GrpcReplicas + n.Traffic.GrpcReads));
    }

    [Fact]
    public async Task WriteChunk_AnswersOnlyOnceThePrimaryCopyIsPublished_AndEnoughReplicasConfirmed()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var bulk = new BulkClient();
        for (var round = 0; round < 10; round++)
        {
            var data = ChunkUploads.Random(65_536 + round * 4096, 30 + round);
            var id = ChunkId.NewRandom().ToString();

            var reply = await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data);

            // The copies were made side by side, but the reply still means: durable here and on a replica.
            Assert.True(reply.DurableCopies >= 2);
            Assert.True(File.Exists(cluster.ChunkPath(0, id)));
            Assert.Empty(cluster.UploadFiles(0));
            var confirmed = reply.Copies.Where(c => !c.Primary).Select(c => c.NodeId).ToList();
            Assert.NotEmpty(confirmed);
            lock (cluster.Meta.Sync)
                Assert.All(confirmed, n => Assert.Equal(CopyStatus.Available, cluster.Meta.Chunks[id].Replicas[n]));
            foreach (var node in confirmed)
                Assert.Equal(data, await ReadAsync(bulk, cluster.Nodes[cluster.IndexOf(node)].DataAddress, id));
        }
    }

    [Fact]
    public async Task WriteChunk_WithADesignatedReplicaDown_SucceedsOnTheOthers_AndLeavesThatCopyPendingForReplacement()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var bulk = new BulkClient();
        await cluster.Nodes[2].StopAsync();
        var data = ChunkUploads.Random(200_000, 41);
        var id = ChunkId.NewRandom().ToString();

        var reply = await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data);

        Assert.Equal(2u, reply.DurableCopies);
        Assert.Equal(new[] { cluster.Nodes[0].NodeId, cluster.Nodes[1].NodeId }.Order(), reply.Copies.Select(c => c.NodeId).Order());
        Assert.True(File.Exists(cluster.ChunkPath(0, id)));
        Assert.Equal(data, await ReadAsync(bulk, cluster.Nodes[1].DataAddress, id));
        lock (cluster.Meta.Sync)
        {
            Assert.Equal(CopyStatus.Available, cluster.Meta.Chunks[id].Replicas[cluster.Nodes[1].NodeId]);
            Assert.Equal(CopyStatus.Pending, cluster.Meta.Chunks[id].Replicas[cluster.Nodes[2].NodeId]);   // never confirmed: the metadata server replaces it
        }
    }

    [Fact]
    public async Task ReadChunk_RangeGivesTheCoveringWholeBlocks_AndOneConnectionServesManyRequests()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(300_000, 12); // 4 full blocks + a short one
        var id = ChunkId.NewRandom().ToString();
        await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data, BulkOp.StoreReplica);

        for (var i = 0; i < 20; i++)
        {
            var got = await ReadAsync(bulk, cluster.Nodes[0].DataAddress, id, 70_000, 70_000); // blocks 1 and 2
            Assert.Equal(data.AsSpan(65536, 2 * 65536).ToArray(), got);
        }
        Assert.Equal(data.AsSpan(4 * 65536).ToArray(), await ReadAsync(bulk, cluster.Nodes[0].DataAddress, id, 299_999, 1));
    }

    [Theory]
    [InlineData(0L, 0L, StatusCode.NotFound)]       // unknown chunk
    [InlineData(300_000L, 0L, StatusCode.OutOfRange)]
    [InlineData(0L, 300_001L, StatusCode.OutOfRange)]
    public async Task ReadChunk_ErrorsAreTypedStatuses(long offset, long length, StatusCode expected)
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(300_000, 13);
        var id = ChunkId.NewRandom().ToString();
        if (expected != StatusCode.NotFound)
            await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data, BulkOp.StoreReplica);

        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(bulk, cluster.Nodes[0].DataAddress, id, offset, length));
        Assert.Equal(expected, ex.StatusCode);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("0123456789ABCDEF0123456789abcdef")]
    [InlineData("ab/../../../../../../tmp/x000000")]
    [InlineData("")]
    public async Task PathLikeOrMalformedChunkIds_AreInvalidArgument_ForReadsAndWrites(string badId)
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(70_000, 14);

        var write = await Assert.ThrowsAsync<RpcException>(() => WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(badId, data), data));
        var read = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(bulk, cluster.Nodes[0].DataAddress, badId));

        Assert.Equal(StatusCode.InvalidArgument, write.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, read.StatusCode);
        Assert.Equal(0, cluster.Nodes[0].Store.Count);
        Assert.Empty(cluster.UploadFiles(0));
        // Only the 256 fan-out directories made at start, no file and no path-like entry.
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cluster.DataDirectories[0], "chunks"), "*", SearchOption.AllDirectories));
        Assert.Equal(256, Directory.EnumerateDirectories(Path.Combine(cluster.DataDirectories[0], "chunks")).Count());
    }

    [Fact]
    public async Task ChecksumMismatch_IsDataLoss_WithNothingRegisteredOrLeft()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(500_000, 15);
        var id = ChunkId.NewRandom().ToString();

        var ex = await Assert.ThrowsAsync<RpcException>(() => WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data, ChunkChecksum.Compute(data) ^ 1), data));

        Assert.Equal(StatusCode.DataLoss, ex.StatusCode);
        AssertNothingLeft(cluster, 0, id);
    }

    /// <summary>Raw frames, for what a well-behaved client never sends.</summary>
    private static async Task<BulkConnection> ConnectRawAsync(TestCluster cluster) =>
        await BulkConnection.ConnectAsync(cluster.Nodes[0].DataAddress, CancellationToken.None);

    [Fact]
    public async Task AFrameCarryingMoreDataThanTheChunkHeaderAnnounces_IsInvalidArgument_AndTheConnectionStaysUsable()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var connection = await ConnectRawAsync(cluster);
        var data = ChunkUploads.Random(100_000, 16);
        var id = ChunkId.NewRandom().ToString();
        var meta = HeaderFor(id, data.AsSpan(0, 50_000).ToArray()).ToByteArray();

        await connection.SendHeaderAsync(new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 1, meta.Length, data.Length), meta, CancellationToken.None);
        await connection.SendAsync(data, CancellationToken.None);
        var ex = await Assert.ThrowsAsync<RpcException>(() => connection.ReceiveReplyAsync(BulkOp.WriteChunk, 1, CancellationToken.None).AsTask());

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        AssertNothingLeft(cluster, 0, id);
        // The rejected frame was drained: the next request on the same connection is answered.
        var read = new ReadChunkRequest { ChunkId = id }.ToByteArray();
        await connection.SendHeaderAsync(new BulkFrameHeader(BulkOp.ReadChunk, StatusCode.OK, 2, read.Length, 0), read, CancellationToken.None);
        var notFound = await Assert.ThrowsAsync<RpcException>(() => connection.ReceiveReplyAsync(BulkOp.ReadChunk, 2, CancellationToken.None).AsTask());
        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
    }

    [Fact]
    public async Task AChunkHeaderOver64MiB_IsInvalidArgument_BeforeAnyDataIsRead()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var connection = await ConnectRawAsync(cluster);
        var id = ChunkId.NewRandom().ToString();
        var meta = new ChunkHeader { ChunkId = id, Size = 64UL * 1024 * 1024 + 1, Checksum = 1 }.ToByteArray();

        await connection.SendHeaderAsync(new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 5, meta.Length, 10), meta, CancellationToken.None);
        await connection.SendAsync(new byte[10], CancellationToken.None);
        var ex = await Assert.ThrowsAsync<RpcException>(() => connection.ReceiveReplyAsync(BulkOp.WriteChunk, 5, CancellationToken.None).AsTask());

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains("exceeds", ex.Status.Detail);
        AssertNothingLeft(cluster, 0, id);
    }

    [Theory]
    [InlineData("magic")]
    [InlineData("data length over 64 MiB")]
    public async Task ABrokenFrameHeader_GetsAnErrorReply_ThenTheConnectionIsClosed(string what)
    {
        await using var cluster = await TestCluster.StartAsync(1);
        using var connection = await ConnectRawAsync(cluster);
        var raw = new byte[BulkFrameHeader.Size];
        new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 9, 0, 0).Encode(raw);
        if (what == "magic")
            raw[0] = (byte)'G';
        else
            BitConverter.TryWriteBytes(raw.AsSpan(20), (uint)BulkFrameHeader.MaxDataBytes + 1);

        await connection.SendAsync(raw, CancellationToken.None);
        var ex = await Assert.ThrowsAsync<RpcException>(() => connection.ReceiveReplyAsync(BulkOp.WriteChunk, 9, CancellationToken.None).AsTask());

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        await Assert.ThrowsAsync<EndOfStreamException>(() => connection.ReceiveExactlyAsync(new byte[1], CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task AConnectionCutMidUpload_LeavesNoTempFileAndRegistersNothing()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var data = ChunkUploads.Random(3_000_000, 17);
        var id = ChunkId.NewRandom().ToString();
        var meta = HeaderFor(id, data).ToByteArray();
        using (var connection = await ConnectRawAsync(cluster))
        {
            await connection.SendHeaderAsync(new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 1, meta.Length, data.Length), meta, CancellationToken.None);
            await connection.SendAsync(data.AsMemory(0, 2_000_000), CancellationToken.None);
            // The node has started the upload (its temp file exists) before the cut.
            await Poll.UntilAsync(() => cluster.UploadFiles(0).Any(), TimeSpan.FromSeconds(20), "upload started");
        }

        await Poll.UntilAsync(() => !cluster.UploadFiles(0).Any(), TimeSpan.FromSeconds(20), "temp file removed");
        AssertNothingLeft(cluster, 0, id);
        Assert.Equal(0, cluster.Nodes[0].Store.Count);
    }

    [Fact]
    public async Task AStoppedNode_IsUnavailable_EvenWithAConnectionToItInThePool()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(70_000, 18);
        var id = ChunkId.NewRandom().ToString();
        var address = cluster.Nodes[1].DataAddress;
        await WriteAsync(bulk, address, HeaderFor(id, data), data, BulkOp.StoreReplica);
        Assert.Equal(data, await ReadAsync(bulk, address, id)); // leaves a pooled connection

        await cluster.Nodes[1].StopAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(bulk, address, id));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
    }

    [Fact]
    public async Task ReplicateChunk_ToTwoBulkTargets_CopiesBothFromOneVerifiedRead()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(1_500_000, 19);
        var id = ChunkId.NewRandom().ToString();
        await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data, BulkOp.StoreReplica);

        var reply = await cluster.ClientFor(cluster.Nodes[0]).ReplicateChunkAsync(new ReplicateChunkRequest
        {
            ChunkId = id,
            Targets = { cluster.Nodes.Skip(1).Select(n => new NodeTarget { NodeId = n.NodeId, Address = n.Address, DataAddress = n.DataAddress }) },
        });

        Assert.Equal(2, reply.ConfirmedNodeIds.Count); // the fake has no such chunk: confirmations fail, copies were still acked
        foreach (var node in cluster.Nodes.Skip(1))
            Assert.Equal(data, await ReadAsync(bulk, node.DataAddress, id));
        Assert.Equal(3, cluster.Nodes.Sum(n => n.Traffic.BulkReplicas));
    }

    [Fact]
    public async Task ACorruptLocalCopy_IsNeverPropagated_AndIsReportedOnce()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        using var bulk = new BulkClient();
        var data = ChunkUploads.Random(200_000, 20);
        var id = ChunkId.NewRandom().ToString();
        await WriteAsync(bulk, cluster.Nodes[0].DataAddress, HeaderFor(id, data), data, BulkOp.StoreReplica);
        await using (var file = new FileStream(cluster.ChunkPath(0, id), FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = 4096 + 150_000; // inside block 2 of the data
            var b = file.ReadByte();
            file.Position--;
            file.WriteByte((byte)(b ^ 0xff));
        }

        var reply = await cluster.ClientFor(cluster.Nodes[0]).ReplicateChunkAsync(new ReplicateChunkRequest
        {
            ChunkId = id,
            Targets = { cluster.Nodes.Skip(1).Select(n => new NodeTarget { NodeId = n.NodeId, Address = n.Address, DataAddress = n.DataAddress }) },
        });

        Assert.Empty(reply.ConfirmedNodeIds);
        Assert.False(File.Exists(cluster.ChunkPath(1, id)));
        Assert.False(File.Exists(cluster.ChunkPath(2, id)));
        lock (cluster.Meta.Sync)
            Assert.Equal([(cluster.Nodes[0].NodeId, id)], cluster.Meta.CorruptReports);
    }
}
