using BigFS.Core;
using BigFS.Protocol;
using BigFS.Storage;
using Grpc.Core;

namespace BigFS.Data.Tests;

public class StorageNodeTests
{
    [Theory]
    [InlineData(1_000_000)]   // through the page cache, the pushes read the staged file
    [InlineData(3_000_123)]   // written with O_DIRECT, the pushes send the image in memory
    public async Task WriteChunk_StoresRegistersAndReplicatesToTwoOtherNodes(int size)
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var data = ChunkUploads.Random(size, 1);
        var id = ChunkId.NewRandom().ToString();

        var reply = await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data);

        Assert.True(reply.DurableCopies >= 2);
        Assert.Contains(reply.Copies, c => c.Primary && c.NodeId == cluster.Nodes[0].NodeId);
        Assert.True(File.Exists(cluster.ChunkPath(0, id)));
        var registered = cluster.Meta.GetChunk(id);
        Assert.NotNull(registered);
        Assert.Equal((ulong)data.Length, registered.Size);
        Assert.Equal(ChunkChecksum.Compute(data), registered.Checksum);
        Assert.Equal(ChunkChecksum.ComputeBlocks(data), registered.BlockChecksums);
        Assert.Equal(42ul, registered.Owner);
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return registered.Replicas.Count == 2 && registered.Replicas.Values.All(s => s == CopyStatus.Available); }, TimeSpan.FromSeconds(20),
            "both replicas confirmed");
        foreach (var replica in registered.Replicas.Keys)
        {
            var node = cluster.Nodes[cluster.IndexOf(replica)];
            Assert.NotEqual(cluster.Nodes[0].NodeId, replica);
            var blocks = await ChunkUploads.ReadAsync(cluster.ClientFor(node), id);
            Assert.Equal(data, blocks.SelectMany(b => b.Data.ToByteArray()).ToArray());
            Assert.Equal(ChunkFileHeader.DataOffsetFor(size) + size, new FileInfo(cluster.ChunkPath(cluster.IndexOf(replica), id)).Length);
        }
    }

    [Fact]
    public async Task WriteChunk_ChecksumMismatch_RejectedWithNothingRegisteredAndNoFileLeft()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var data = ChunkUploads.Random(300_000, 2);
        var id = ChunkId.NewRandom().ToString();

        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data, checksum: ChunkChecksum.Compute(data) ^ 1));

        Assert.Equal(StatusCode.DataLoss, ex.StatusCode);
        Assert.Null(cluster.Meta.GetChunk(id));
        Assert.False(File.Exists(cluster.ChunkPath(0, id)));
        Assert.Empty(cluster.UploadFiles(0));
        Assert.Equal(0, cluster.Nodes[0].Store.Count);
    }

    [Fact]
    public async Task WriteChunk_SizeDifferentFromHeader_Rejected()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var data = ChunkUploads.Random(100_000, 3);
        var id = ChunkId.NewRandom().ToString();

        var shorter = await Assert.ThrowsAsync<RpcException>(() =>
            ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data, declaredSize: 200_000));
        var longer = await Assert.ThrowsAsync<RpcException>(() =>
            ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data, declaredSize: 50_000));

        Assert.Equal(StatusCode.InvalidArgument, shorter.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, longer.StatusCode);
        Assert.Null(cluster.Meta.GetChunk(id));
        Assert.Empty(cluster.UploadFiles(0));
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("0123456789ABCDEF0123456789abcdef")]
    [InlineData("0123456789abcdef0123456789abcde")]
    [InlineData("0123456789abcdef0123456789abcdef0")]
    [InlineData("")]
    [InlineData("ab/../../../../../../tmp/x000000")]
    public async Task MalformedChunkIds_AreInvalidArgument_AndTouchNoFile(string badId)
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var client = cluster.ClientFor(cluster.Nodes[0]);
        var data = ChunkUploads.Random(1000, 4);

        var write = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.WriteAsync(client, badId, data));
        var read = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.ReadAsync(client, badId));
        var delete = await Assert.ThrowsAsync<RpcException>(async () => await client.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = badId }));
        var replicate = await Assert.ThrowsAsync<RpcException>(async () => await client.ReplicateChunkAsync(new ReplicateChunkRequest { ChunkId = badId }));

        Assert.All([write, read, delete, replicate], e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
        // The 256 fan-out directories exist from the start; no file may appear in them.
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cluster.DataDirectories[0], "chunks"), "*", SearchOption.AllDirectories));
        Assert.Equal(256, Directory.EnumerateDirectories(Path.Combine(cluster.DataDirectories[0], "chunks")).Count());
        Assert.Empty(cluster.UploadFiles(0));
    }

    [Fact]
    public async Task UnknownChunk_ReadAndDelete_AreNotFound()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var client = cluster.ClientFor(cluster.Nodes[0]);
        var id = ChunkId.NewRandom().ToString();

        var read = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.ReadAsync(client, id));
        var delete = await Assert.ThrowsAsync<RpcException>(async () => await client.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = id }));

        Assert.Equal(StatusCode.NotFound, read.StatusCode);
        Assert.Equal(StatusCode.NotFound, delete.StatusCode);
    }

    [Fact]
    public async Task OversizedChunk_IsRejected()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var id = ChunkId.NewRandom().ToString();

        var ex = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id,
            ChunkUploads.Random(1000, 5), declaredSize: (ulong)LocalChunkStore.MaxChunkSize + 1));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Null(cluster.Meta.GetChunk(id));
    }

    [Fact]
    public async Task ReadChunk_ReturnsWholeBlocksWithChecksums_AndRejectsBadRanges()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var data = ChunkUploads.Random(3 * ChunkChecksum.BlockSize + 100, 6);
        var id = ChunkId.NewRandom().ToString();
        var client = cluster.ClientFor(cluster.Nodes[0]);
        await ChunkUploads.WriteAsync(client, id, data, goal: 1);

        var blocks = await ChunkUploads.ReadAsync(client, id, offset: ChunkChecksum.BlockSize + 5, length: ChunkChecksum.BlockSize);

        Assert.Equal([(ulong)ChunkChecksum.BlockSize, 2ul * ChunkChecksum.BlockSize], blocks.Select(b => b.Offset));
        Assert.All(blocks, b => Assert.Equal(ChunkChecksum.Compute(b.Data.Span), b.Checksum));
        Assert.Equal(data.AsSpan(ChunkChecksum.BlockSize, 2 * ChunkChecksum.BlockSize).ToArray(), blocks.SelectMany(b => b.Data.ToByteArray()).ToArray());
        var last = await ChunkUploads.ReadAsync(client, id, offset: (ulong)data.Length - 1, length: 1);
        Assert.Equal(100, Assert.Single(last).Data.Length);

        var beyond = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.ReadAsync(client, id, offset: (ulong)data.Length));
        var tooLong = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.ReadAsync(client, id, offset: 10, length: (ulong)data.Length));
        Assert.Equal(StatusCode.OutOfRange, beyond.StatusCode);
        Assert.Equal(StatusCode.OutOfRange, tooLong.StatusCode);
    }

    [Fact]
    public async Task CorruptedChunkFile_ReadShowsChecksumMismatch_AndScrubReportsIt()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var data = ChunkUploads.Random(200_000, 7);
        var id = ChunkId.NewRandom().ToString();
        var client = cluster.ClientFor(cluster.Nodes[0]);
        await ChunkUploads.WriteAsync(client, id, data, goal: 1);

        // Flip one byte of the data in block 1, behind the node's back.
        var path = cluster.ChunkPath(0, id);
        var bytes = await File.ReadAllBytesAsync(path);
        var dataOffset = bytes.Length - data.Length;
        bytes[dataOffset + ChunkChecksum.BlockSize + 10] ^= 0xff;
        await File.WriteAllBytesAsync(path, bytes);

        var blocks = await ChunkUploads.ReadAsync(client, id);
        Assert.Equal(ChunkChecksum.Compute(blocks[0].Data.Span), blocks[0].Checksum);
        Assert.NotEqual(ChunkChecksum.Compute(blocks[1].Data.Span), blocks[1].Checksum);

        var corrupt = await cluster.Nodes[0].Scrubber.ScrubOnceAsync(CancellationToken.None);

        Assert.Equal(1, corrupt);
        lock (cluster.Meta.Sync)
            Assert.Contains((cluster.Nodes[0].NodeId, id), cluster.Meta.CorruptReports);
        var afterScrub = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.ReadAsync(client, id));
        Assert.Equal(StatusCode.DataLoss, afterScrub.StatusCode);
    }

    [Fact]
    public async Task BackgroundScrub_FindsCorruption()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => { o.MinCopiesBeforeAck = 1; o.ScrubInterval = TimeSpan.FromMilliseconds(100); });
        var data = ChunkUploads.Random(70_000, 8);
        var id = ChunkId.NewRandom().ToString();
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data, goal: 1);
        var path = cluster.ChunkPath(0, id);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^1] ^= 1;
        await File.WriteAllBytesAsync(path, bytes);

        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return cluster.Meta.CorruptReports.Contains((cluster.Nodes[0].NodeId, id)); }, TimeSpan.FromSeconds(20), "scrub report");
    }

    [Fact]
    public async Task RegistrationFailing_KeepsLocalCopy_AndRegistersItLater()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        cluster.Meta.FailRegistrations = true;
        var data = ChunkUploads.Random(150_000, 9);
        var id = ChunkId.NewRandom().ToString();

        var ex = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.True(File.Exists(cluster.ChunkPath(0, id)));
        Assert.True(cluster.Nodes[0].Store.TryGet(ChunkId.Parse(id), out _));

        cluster.Meta.FailRegistrations = false;
        await Poll.UntilAsync(() => cluster.Meta.GetChunk(id) is not null, TimeSpan.FromSeconds(20), "registration retried");
        var chunk = cluster.Meta.GetChunk(id)!;
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return chunk.Replicas.Values.Count(s => s == CopyStatus.Available) == 2; }, TimeSpan.FromSeconds(20), "replicas after late registration");
    }

    [Fact]
    public async Task A_failed_heartbeat_is_tried_again_within_seconds_not_a_whole_interval_later()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MetadataOutageWindow = TimeSpan.Zero);
        // The node learns a long interval when it registers again.
        cluster.Meta.HeartbeatIntervalMs = 60_000;
        var registrations = Volatile.Read(ref cluster.Meta.Registrations);
        cluster.Meta.AskToRegisterAgain = true;
        await Poll.UntilAsync(() => Volatile.Read(ref cluster.Meta.Registrations) > registrations, TimeSpan.FromSeconds(20), "the node registered again");

        cluster.Meta.FailHeartbeats = true;
        var heartbeats = Volatile.Read(ref cluster.Meta.Heartbeats);
        // Retries after 1 s, then 2 s, …: three attempts within seconds, where the interval is a minute.
        await Poll.UntilAsync(() => Volatile.Read(ref cluster.Meta.Heartbeats) >= heartbeats + 3, TimeSpan.FromSeconds(20), "heartbeats tried again");
    }

    [Fact]
    public async Task MetadataServerDown_NodeStillStoresAndKeepsChunk()
    {
        // Not waiting out the outage (the default waits 30 s, and in a test another server may take the port meanwhile).
        await using var cluster = await TestCluster.StartAsync(1, o => o.MetadataOutageWindow = TimeSpan.Zero);
        await cluster.Meta.DisposeAsync();
        var id = ChunkId.NewRandom().ToString();

        var ex = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, ChunkUploads.Random(5000, 10)));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.True(File.Exists(cluster.ChunkPath(0, id)));
    }

    [Fact]
    public async Task SameChunkTwice_IsIdempotent()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var data = ChunkUploads.Random(10_000, 11);
        var id = ChunkId.NewRandom().ToString();
        var client = cluster.ClientFor(cluster.Nodes[0]);

        await ChunkUploads.WriteAsync(client, id, data, goal: 1);
        await ChunkUploads.WriteAsync(client, id, data, goal: 1);
        var different = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.WriteAsync(client, id, ChunkUploads.Random(10_000, 12), goal: 1));

        Assert.Equal(StatusCode.AlreadyExists, different.StatusCode);
        Assert.Equal(1, cluster.Nodes[0].Store.Count);
        Assert.Equal(data, (await ChunkUploads.ReadAsync(client, id)).SelectMany(b => b.Data.ToByteArray()).ToArray());
    }

    [Fact]
    public async Task ConcurrentUploadsOfOneChunk_AllSucceed_OneFileKept()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var data = ChunkUploads.Random(2 * 1024 * 1024, 17);
        var id = ChunkId.NewRandom().ToString();
        var client = cluster.ClientFor(cluster.Nodes[0]);

        var replies = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => ChunkUploads.WriteAsync(client, id, data, goal: 1)));

        Assert.All(replies, r => Assert.Equal(1u, r.DurableCopies));
        Assert.Equal(1, cluster.Nodes[0].Store.Count);
        Assert.Equal(data.Length, cluster.Nodes[0].Store.UsedBytes);
        Assert.Empty(cluster.UploadFiles(0));
        Assert.Equal(data, (await ChunkUploads.ReadAsync(client, id)).SelectMany(b => b.Data.ToByteArray()).ToArray());
    }

    [Fact]
    public async Task StoreReplica_StoresWithoutRegistering_AndRejectsBadChecksums()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        var client = cluster.ClientFor(cluster.Nodes[0]);
        var data = ChunkUploads.Random(100_000, 20);
        var good = ChunkId.NewRandom().ToString();
        var bad = ChunkId.NewRandom().ToString();

        using (var call = client.StoreReplica())
        {
            await ChunkUploads.SendAsync(call.RequestStream, good, data, null, null, 3, 1);
            await call.ResponseAsync;
        }
        using var badCall = client.StoreReplica();
        await ChunkUploads.SendAsync(badCall.RequestStream, bad, data, ChunkChecksum.Compute(data) + 1, null, 3, 1);
        var ex = await Assert.ThrowsAsync<RpcException>(() => badCall.ResponseAsync);

        Assert.Equal(StatusCode.DataLoss, ex.StatusCode);
        Assert.True(File.Exists(cluster.ChunkPath(0, good)));
        Assert.False(File.Exists(cluster.ChunkPath(0, bad)));
        Assert.Null(cluster.Meta.GetChunk(good));
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await client.ReplicateChunkAsync(new ReplicateChunkRequest { ChunkId = ChunkId.NewRandom().ToString() }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task DeleteChunk_RemovesFile()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var id = ChunkId.NewRandom().ToString();
        var client = cluster.ClientFor(cluster.Nodes[0]);
        await ChunkUploads.WriteAsync(client, id, ChunkUploads.Random(1000, 13), goal: 1);

        await client.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = id });

        Assert.False(File.Exists(cluster.ChunkPath(0, id)));
        var again = await Assert.ThrowsAsync<RpcException>(async () => await client.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = id }));
        Assert.Equal(StatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task ReplicateChunk_PushesToTargets_AndConfirms()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var data = ChunkUploads.Random(100_000, 14);
        var id = ChunkId.NewRandom().ToString();
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data, goal: 1);
        lock (cluster.Meta.Sync)
            cluster.Meta.GetChunk(id)!.Replicas[cluster.Nodes[2].NodeId] = CopyStatus.Pending;

        var reply = await cluster.ClientFor(cluster.Nodes[0]).ReplicateChunkAsync(new ReplicateChunkRequest
        {
            ChunkId = id, Targets = { new NodeTarget { NodeId = cluster.Nodes[2].NodeId, Address = cluster.Nodes[2].Address } },
        });

        Assert.Equal([cluster.Nodes[2].NodeId], reply.ConfirmedNodeIds);
        Assert.True(File.Exists(cluster.ChunkPath(2, id)));
        lock (cluster.Meta.Sync)
            Assert.Equal(CopyStatus.Available, cluster.Meta.GetChunk(id)!.Replicas[cluster.Nodes[2].NodeId]);
    }

    [Fact]
    public async Task Registration_ReportsFilesystemCapacity_AndLabels()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => { o.CapacityBytes = 0; o.Labels = ["rack1"]; });

        FakeMetadataServer.Node node;
        lock (cluster.Meta.Sync) node = cluster.Meta.Nodes.Single();

        Assert.True(node.CapacityBytes > 1024 * 1024, $"capacity {node.CapacityBytes}");
        Assert.Equal(["rack1"], node.Labels!);
        Assert.Equal(cluster.Nodes[0].Address, node.Address);
    }

    [Fact]
    public async Task A_node_at_its_capacity_refuses_new_chunks_as_ResourceExhausted_and_takes_them_again_once_room_is_freed()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.CapacityBytes = 3L << 20);
        var client = cluster.ClientFor(cluster.Nodes[0]);
        var first = ChunkId.NewRandom().ToString();
        await ChunkUploads.WriteAsync(client, first, ChunkUploads.Random(2 << 20, 1), goal: 1);

        var refused = await Assert.ThrowsAsync<RpcException>(() => ChunkUploads.WriteAsync(client, ChunkId.NewRandom().ToString(), ChunkUploads.Random(2 << 20, 2), goal: 1));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Empty(cluster.UploadFiles(0));   // nothing half-written left behind

        await client.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = first });
        await ChunkUploads.WriteAsync(client, ChunkId.NewRandom().ToString(), ChunkUploads.Random(2 << 20, 3), goal: 1);   // the refused one's reservation was released too
    }

    [Fact]
    public async Task HeartbeatAskingToRegisterAgain_ReRegistersAndReportsInventory()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await Poll.UntilAsync(() => cluster.Meta.Inventories.ContainsKey(cluster.Nodes[0].NodeId), TimeSpan.FromSeconds(20), "first inventory");
        var before = cluster.Meta.Registrations;
        cluster.Meta.Inventories.Clear();

        cluster.Meta.AskToRegisterAgain = true;

        await Poll.UntilAsync(() => cluster.Meta.Registrations > before, TimeSpan.FromSeconds(20), "registered again");
        await Poll.UntilAsync(() => cluster.Meta.Inventories.ContainsKey(cluster.Nodes[0].NodeId), TimeSpan.FromSeconds(20), "inventory after re-registration");
    }

    [Fact]
    public async Task GracefulStop_LetsAnInFlightUploadFinish()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var data = ChunkUploads.Random(4 * ChunkChecksum.BlockSize, 16);
        var id = ChunkId.NewRandom().ToString();
        using var call = cluster.ClientFor(cluster.Nodes[0]).WriteChunk();
        await call.RequestStream.WriteAsync(new ChunkUpload
        {
            Header = new ChunkHeader { ChunkId = id, Size = (ulong)data.Length, Checksum = ChunkChecksum.Compute(data), Goal = 1 },
        });
        await call.RequestStream.WriteAsync(new ChunkUpload { Data = Google.Protobuf.ByteString.CopyFrom(data, 0, 2 * ChunkChecksum.BlockSize) });
        await Poll.UntilAsync(() => cluster.Nodes[0].Store.ReservedBytes > 0, TimeSpan.FromSeconds(20), "upload in progress");

        var stopping = cluster.Nodes[0].StopAsync();
        await call.RequestStream.WriteAsync(new ChunkUpload { Data = Google.Protobuf.ByteString.CopyFrom(data, 2 * ChunkChecksum.BlockSize, 2 * ChunkChecksum.BlockSize) });
        await call.RequestStream.CompleteAsync();
        var reply = await call.ResponseAsync;
        await stopping;

        Assert.Equal(1u, reply.DurableCopies);
        Assert.True(File.Exists(cluster.ChunkPath(0, id)));
        Assert.Empty(cluster.UploadFiles(0));
    }

    [Fact]
    public async Task Restart_SkipsDamagedAndStrayFiles_AndCleansTemporaries()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var good = ChunkId.NewRandom().ToString();
        var damaged = ChunkId.NewRandom().ToString();
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), good, ChunkUploads.Random(5000, 18), goal: 1);
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), damaged, ChunkUploads.Random(5000, 19), goal: 1);
        await cluster.Nodes[0].StopAsync();
        var damagedPath = cluster.ChunkPath(0, damaged);
        await File.WriteAllBytesAsync(damagedPath, (await File.ReadAllBytesAsync(damagedPath))[..100]); // truncated
        await File.WriteAllTextAsync(Path.Combine(cluster.DataDirectories[0], "chunks", good[..2], "stray.txt"), "x");
        await File.WriteAllTextAsync(Path.Combine(cluster.DataDirectories[0], "tmp", "leftover"), "x");
        var oldSpare = Path.Combine(cluster.DataDirectories[0], "tmp", "staged-" + new string('0', 32));
        await File.WriteAllBytesAsync(oldSpare, []);

        var restarted = await StorageNode.StartAsync(cluster.OptionsFor(0));
        cluster.Nodes[0] = restarted;

        Assert.Equal(1, restarted.Store.Count);
        Assert.True(restarted.Store.TryGet(ChunkId.Parse(good), out _));
        Assert.Empty(cluster.UploadFiles(0));
        Assert.False(File.Exists(oldSpare));
        var read = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => ChunkUploads.ReadAsync(cluster.ClientFor(restarted), damaged));
        Assert.Equal(StatusCode.NotFound, read.StatusCode);
    }

    [Fact]
    public async Task SmallUploads_WriteIntoSpareFilesMadeAhead_WhichAreRemovedAtStop()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var tmp = Path.Combine(cluster.DataDirectories[0], "tmp");
        List<string> Spares() => Directory.EnumerateFiles(tmp).Where(StagingFilePool.IsSpare).ToList();
        await Poll.UntilAsync(() => Spares().Count > 1, TimeSpan.FromSeconds(20), "spare files made ahead");
        var before = Spares();

        var small = ChunkUploads.Random(70_000, 30);
        var smallId = ChunkId.NewRandom().ToString();
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), smallId, small, goal: 1);
        var large = ChunkUploads.Random(3_000_000, 31);   // large chunks get a preallocated file of their own
        var largeId = ChunkId.NewRandom().ToString();
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), largeId, large, goal: 1);

        Assert.Single(before, f => !File.Exists(f));   // the small chunk took one spare...
        await Poll.UntilAsync(() => Spares().Count >= before.Count, TimeSpan.FromSeconds(20), "spares made again");   // ...and it was replaced
        Assert.Empty(cluster.UploadFiles(0));
        foreach (var (id, data) in new[] { (smallId, small), (largeId, large) })
        {
            var blocks = await ChunkUploads.ReadAsync(cluster.ClientFor(cluster.Nodes[0]), id);
            Assert.Equal(data, blocks.SelectMany(b => b.Data.ToByteArray()).ToArray());
            Assert.Equal(ChunkFileHeader.DataOffsetFor(data.Length) + data.Length, new FileInfo(cluster.ChunkPath(0, id)).Length);
        }

        await cluster.Nodes[0].StopAsync();
        Assert.Empty(Directory.EnumerateFiles(tmp));
    }

    [Fact]
    public async Task SecondNodeOnSameDataDirectory_FailsClearly()
    {
        await using var cluster = await TestCluster.StartAsync(1);

        var ex = await Assert.ThrowsAsync<IOException>(() => StorageNode.StartAsync(cluster.OptionsFor(0)));

        Assert.Contains("in use", ex.Message);
    }

    [Fact]
    public async Task Restart_KeepsNodeIdAndChunks_AndReportsInventory()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        var id = ChunkId.NewRandom().ToString();
        var doomed = ChunkId.NewRandom().ToString();
        var data = ChunkUploads.Random(1000, 15);
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), id, data, goal: 1);
        await ChunkUploads.WriteAsync(cluster.ClientFor(cluster.Nodes[0]), doomed, data, goal: 1);
        var nodeId = cluster.Nodes[0].NodeId;
        await cluster.Nodes[0].StopAsync();
        cluster.Meta.DeleteOnInventory.Enqueue(doomed);

        var restarted = await StorageNode.StartAsync(cluster.OptionsFor(0));
        cluster.Nodes[0] = restarted;

        Assert.Equal(nodeId, restarted.NodeId);
        await Poll.UntilAsync(() => cluster.Meta.Inventories.TryGetValue(nodeId, out var ids) && ids.Contains(id), TimeSpan.FromSeconds(20), "inventory reported");
        await Poll.UntilAsync(() => !File.Exists(cluster.ChunkPath(0, doomed)), TimeSpan.FromSeconds(20), "inventory deletion");
        Assert.Equal(data, (await ChunkUploads.ReadAsync(cluster.ClientFor(restarted), id)).SelectMany(b => b.Data.ToByteArray()).ToArray());
        await Poll.UntilAsync(() => cluster.Meta.Heartbeats > 0, TimeSpan.FromSeconds(20), "heartbeats");
    }
}
