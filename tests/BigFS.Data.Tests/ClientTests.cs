using BigFS.Client;
using BigFS.Core;
using BigFS.Protocol;

namespace BigFS.Data.Tests;

public class ClientTests
{
    private const int MiB = 1024 * 1024;

    private static async Task WriteInPiecesAsync(BigFsFile file, long offset, byte[] data, int piece)
    {
        for (var at = 0; at < data.Length; at += piece)
            await file.WriteAsync(offset + at, data.AsMemory(at, Math.Min(piece, data.Length - at)));
    }

    private static async Task<byte[]> ReadAllAsync(BigFsFile file, int piece)
    {
        var result = new byte[file.Size];
        for (var at = 0; at < result.Length;)
        {
            var n = await file.ReadAsync(at, result.AsMemory(at, Math.Min(piece, result.Length - at)));
            Assert.True(n > 0, $"short read at {at}");
            at += n;
        }
        return result;
    }

    [Fact]
    public async Task LargeRandomFile_IsWrittenAndReadBackIdentical_WithUploadsBeforeFlush()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("big");
        var data = ChunkUploads.Random(64 * MiB, 100);
        var file = client.OpenFile(ino, 0);

        await WriteInPiecesAsync(file, 0, data, MiB);
        // Full chunks go out while the file is still open and unflushed.
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return cluster.Meta.Chunks.Count >= 8; }, TimeSpan.FromSeconds(20), "background uploads");
        Assert.Equal(0, cluster.Meta.CommitCount);
        await file.FlushAsync();

        Assert.Equal(64L * MiB, file.Size);
        lock (cluster.Meta.Sync)
        {
            Assert.Equal((ulong)data.Length, cluster.Meta.Inodes[ino].Size);
            Assert.Equal(16, cluster.Meta.Inodes[ino].Layout.Extents.Count);
        }
        Assert.Equal(data, await ReadAllAsync(file, MiB));
        await using var client2 = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var attr = await client2.ResolvePathAsync("/big");
        var reopened = client2.OpenFile(attr.Ino, (long)attr.Size);
        Assert.Equal(data, await ReadAllAsync(reopened, 3 * MiB + 12345));
        Assert.Equal(0, client.Budget.Used);
    }

    [Fact]
    public async Task AdoptedCommitsOfAnotherClientAreReadAndOlderOnesIgnored()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var a = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        await using var b = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var first = ChunkUploads.Random(100_000, 1);
        var fa = a.OpenFile(ino, 0);
        await fa.WriteAsync(0, first);
        await fa.FlushAsync();
        var mine = await a.ResolvePathAsync("/f");

        var more = ChunkUploads.Random(50_000, 2);
        var fb = b.OpenFile(ino, first.Length);
        await fb.WriteAsync(first.Length, more);
        await fb.FlushAsync();
        var theirs = await a.ResolvePathAsync("/f");
        Assert.True(theirs.Version > mine.Version);

        fa.AdoptCommitted((long)mine.Size, mine.Version);   // what a's own commit already told it
        Assert.Equal(first.Length, fa.Size);
        fa.AdoptCommitted((long)theirs.Size, theirs.Version);
        Assert.Equal(first.Length + more.Length, fa.Size);
        byte[] expected = [.. first, .. more];
        Assert.Equal(expected, await ReadAllAsync(fa, 64 * 1024));
        fa.AdoptCommitted((long)mine.Size, mine.Version);   // a late reply from before b's commit
        Assert.Equal(first.Length + more.Length, fa.Size);
    }

    [Fact]
    public async Task Overwrite_Truncate_AndHoles_MatchAModelFile()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var model = new List<byte>(ChunkUploads.Random(10 * MiB, 1));
        await WriteInPiecesAsync(file, 0, [.. model], 128 * 1024);
        await file.FlushAsync();
        int chunksBefore;
        lock (cluster.Meta.Sync) chunksBefore = cluster.Meta.Chunks.Count;

        // Overwrite in the middle: only the new bytes become a (small) chunk.
        var patch = ChunkUploads.Random(100_000, 2);
        await file.WriteAsync(3 * MiB + 7, patch);
        for (var i = 0; i < patch.Length; i++) model[3 * MiB + 7 + i] = patch[i];
        Assert.Equal(model.ToArray(), await ReadAllAsync(file, MiB)); // before the flush
        await file.FlushAsync();
        lock (cluster.Meta.Sync)
        {
            Assert.Equal(chunksBefore + 1, cluster.Meta.Chunks.Count);
            Assert.Equal((ulong)patch.Length, cluster.Meta.Chunks.Values.Single(c => c.Size == (ulong)patch.Length).Size);
        }
        Assert.Equal(model.ToArray(), await ReadAllAsync(file, MiB));

        // Shrink.
        await file.TruncateAsync(5 * MiB + 3);
        model.RemoveRange(5 * MiB + 3, model.Count - (5 * MiB + 3));
        Assert.Equal(5L * MiB + 3, file.Size);
        Assert.Equal(model.ToArray(), await ReadAllAsync(file, 700_000));

        // A write past the end leaves a hole that reads as zeros.
        var tail = ChunkUploads.Random(1000, 3);
        await file.WriteAsync(8 * MiB, tail);
        model.AddRange(new byte[8 * MiB - model.Count]);
        model.AddRange(tail);
        Assert.Equal(model.ToArray(), await ReadAllAsync(file, MiB));
        await file.FlushAsync();
        Assert.Equal(model.ToArray(), await ReadAllAsync(file, MiB));

        // Extend by truncate: zeros again; buffered data written before it is kept.
        var before = ChunkUploads.Random(10, 4);
        await file.WriteAsync(100, before);
        for (var i = 0; i < before.Length; i++) model[100 + i] = before[i];
        await file.TruncateAsync(12 * MiB);
        model.AddRange(new byte[12 * MiB - model.Count]);
        Assert.Equal(model.ToArray(), await ReadAllAsync(file, MiB));

        var fresh = client.OpenFile(ino, 12 * MiB);
        Assert.Equal(model.ToArray(), await ReadAllAsync(fresh, 5 * MiB));
    }

    [Fact]
    public async Task SmallAppends_BecomeSmallChunks()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("log");
        var file = client.OpenFile(ino, 0);

        await file.WriteAsync(0, ChunkUploads.Random(100, 1));
        await file.FlushAsync();
        await file.WriteAsync(100, ChunkUploads.Random(50, 2));
        await file.FlushAsync();

        lock (cluster.Meta.Sync)
        {
            Assert.Equal([100ul, 50ul], cluster.Meta.Chunks.Values.Select(c => c.Size).OrderDescending());
            Assert.Equal(150ul, cluster.Meta.Inodes[ino].Size);
            Assert.Equal(2, cluster.Meta.Inodes[ino].Layout.Extents.Count);
        }
    }

    [Fact]
    public async Task Reads_SeeBufferedAndUploadedButUncommittedData()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var data = ChunkUploads.Random(6 * MiB, 5);

        await WriteInPiecesAsync(file, 0, data, MiB);
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return cluster.Meta.Chunks.Count == 1; }, TimeSpan.FromSeconds(20), "first chunk uploaded");
        await Poll.UntilAsync(() => client.Budget.Used <= 2 * MiB + 2 * DirtySegment.PageSize, TimeSpan.FromSeconds(20), "uploaded pages released");

        Assert.Equal(data, await ReadAllAsync(file, 1_000_000));
        Assert.Equal(0, cluster.Meta.CommitCount);
        Assert.Equal(0, await client.OpenFile(ino, 0).ReadAsync(0, new byte[10])); // nothing committed yet
    }

    [Fact]
    public async Task NodeKilledDuringWrite_WriteSucceedsOnOtherNodes_AndReadsBackIdentical()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var victim = cluster.Nodes[1];
        cluster.Meta.FreeBytesOverride[victim.NodeId] = 1UL << 49; // nearly every chunk picks it as primary
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var data = ChunkUploads.Random(40 * MiB, 6);

        var writing = WriteInPiecesAsync(file, 0, data, 256 * 1024);
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return cluster.Meta.Chunks.Values.Any(c => c.Primary == victim.NodeId); }, TimeSpan.FromSeconds(20), "a chunk on the victim");
        await victim.KillAsync();
        await writing;
        await file.FlushAsync();

        Assert.True(client.Uploader.FailedAttempts > 0, "no upload hit the killed node");
        Assert.Equal(data, await ReadAllAsync(file, MiB));
        await using var client2 = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        Assert.Equal(data, await ReadAllAsync(client2.OpenFile(ino, data.Length), 2 * MiB));
    }

    [Fact]
    public async Task CorruptCopies_ReadFallsBackToAGoodOne_AndReportsTheBadOnes()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var writer = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var data = ChunkUploads.Random(MiB, 7);
        var file = writer.OpenFile(ino, 0);
        await file.WriteAsync(0, data);
        await file.FlushAsync();
        var chunk = cluster.Meta.Chunks.Values.Single();
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return chunk.Replicas.Values.All(s => s == CopyStatus.Available) && chunk.Replicas.Count == 2; }, TimeSpan.FromSeconds(20), "replicas");

        // Corrupt the primary and one replica on disk; the good replica is listed last (PENDING) so it is tried last.
        var good = chunk.Replicas.Keys.First();
        var bad = new[] { chunk.Primary, chunk.Replicas.Keys.Last() };
        foreach (var nodeId in bad)
        {
            var path = cluster.ChunkPath(cluster.IndexOf(nodeId), chunk.Id);
            var bytes = await File.ReadAllBytesAsync(path);
            bytes[^1000] ^= 0x55;
            await File.WriteAllBytesAsync(path, bytes);
        }
        lock (cluster.Meta.Sync) chunk.Replicas[good] = CopyStatus.Pending;

        await using var reader = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        Assert.Equal(data, await ReadAllAsync(reader.OpenFile(ino, data.Length), MiB));

        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return bad.All(n => cluster.Meta.BadCopyReports.Contains((n, chunk.Id))); }, TimeSpan.FromSeconds(20), "bad copies reported");
        lock (cluster.Meta.Sync) Assert.DoesNotContain((good, chunk.Id), cluster.Meta.BadCopyReports);
    }

    [Fact]
    public async Task AllCopiesBad_ReadFailsWithEio()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o.MinCopiesBeforeAck = 1);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        await file.WriteAsync(0, ChunkUploads.Random(1000, 8));
        await file.FlushAsync();
        var chunk = cluster.Meta.Chunks.Values.Single();
        var path = cluster.ChunkPath(0, chunk.Id);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^1] ^= 1;
        await File.WriteAllBytesAsync(path, bytes);

        await using var reader = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ex = await Assert.ThrowsAsync<BigFsException>(async () => await reader.OpenFile(ino, 1000).ReadAsync(0, new byte[1000]));
        Assert.Equal(Errno.EIO, ex.Errno);
    }

    [Fact]
    public async Task WriteBuffer_StaysWithinItsBound()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var options = new BigFsClientOptions { WriteBufferBytes = 8 * MiB, MaxInFlightChunkUploads = 2 };
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address, options);
        var inoA = cluster.Meta.CreateFile("a");
        var inoB = cluster.Meta.CreateFile("b");
        var a = client.OpenFile(inoA, 0);
        var b = client.OpenFile(inoB, 0);
        var dataA = ChunkUploads.Random(40 * MiB, 9);
        var dataB = ChunkUploads.Random(17 * MiB + 5, 10);

        await Task.WhenAll(WriteInPiecesAsync(a, 0, dataA, MiB), WriteInPiecesAsync(b, 0, dataB, 300_000));
        await Task.WhenAll(a.FlushAsync(), b.FlushAsync());

        Assert.True(client.Budget.HighWater <= options.WriteBufferBytes, $"high water {client.Budget.HighWater}");
        Assert.Equal(0, client.Budget.Used);
        Assert.True(client.Uploader.MaxObservedInFlight <= 2);
        Assert.Equal(dataA, await ReadAllAsync(a, MiB));
        Assert.Equal(dataB, await ReadAllAsync(b, MiB));
    }

    [Fact]
    public async Task SequentialWriter_UnderATightBudget_StillWritesWholeChunks()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var options = new BigFsClientOptions { WriteBufferBytes = 8 * MiB, MaxInFlightChunkUploads = 2 };
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address, options);
        var ino = cluster.Meta.CreateFile("seq");
        var file = client.OpenFile(ino, 0);
        var data = ChunkUploads.Random(40 * MiB, 12);

        await WriteInPiecesAsync(file, 0, data, 256 * 1024);
        await file.FlushAsync();

        Assert.True(client.Budget.HighWater <= options.WriteBufferBytes);
        lock (cluster.Meta.Sync)
            Assert.All(cluster.Meta.Inodes[ino].Layout.Extents, e => Assert.Equal(4L * MiB, e.Length));
        Assert.Equal(data, await ReadAllAsync(file, MiB));
    }

    [Fact]
    public async Task UploadFailure_SurfacesFromFlushAsEio_AndDataIsKept()
    {
        await using var cluster = await TestCluster.StartAsync(2);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address, new BigFsClientOptions { UploadRetries = 1 });
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        foreach (var node in cluster.Nodes)
            await node.KillAsync();
        var data = ChunkUploads.Random(5000, 11);

        await file.WriteAsync(0, data);
        var ex = await Assert.ThrowsAsync<BigFsException>(() => file.FlushAsync());

        Assert.Equal(Errno.EIO, ex.Errno);
        Assert.Equal(0, cluster.Meta.CommitCount);
        var buffer = new byte[data.Length];
        Assert.Equal(data.Length, await file.ReadAsync(0, buffer));
        Assert.Equal(data, buffer);
        await Assert.ThrowsAsync<BigFsException>(() => file.FlushAsync()); // still failing, still reported
    }

    [Fact]
    public async Task With_no_active_node_an_upload_waits_for_one_and_then_goes_through()
    {
        // The metadata server lists no node while it has heard from none (all restarting, or
        // itself cut off from them for a while): a write's close is then a pause, not EIO.
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address, new BigFsClientOptions { StorageOutageWindow = TimeSpan.FromMinutes(1) });
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var data = ChunkUploads.Random(MiB, 17);
        await file.WriteAsync(0, data);
        cluster.Meta.NoActiveNodes = true;
        var asked = Volatile.Read(ref cluster.Meta.NodeListRequests);

        var flush = file.FlushAsync();
        // A state that must hold, not one to wait for: 5 s is well past the upload's own retries (under 1 s).
        await Task.WhenAny(flush, Task.Delay(TimeSpan.FromSeconds(5)));
        Assert.False(flush.IsCompleted, $"the flush ended while no node was active: {flush.Exception?.InnerException?.Message}");
        Assert.True(Volatile.Read(ref cluster.Meta.NodeListRequests) >= asked + 4, "the upload did not ask for nodes again while waiting");
        cluster.Meta.NoActiveNodes = false;

        Assert.True(await flush.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(1, cluster.Meta.CommitCount);
        await using var other = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        Assert.Equal(data, await ReadAllAsync(other.OpenFile(ino, data.Length), MiB));
    }

    [Fact]
    public async Task With_no_active_node_for_longer_than_the_window_an_upload_fails_with_EIO_and_keeps_its_data()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address,
            new BigFsClientOptions { StorageOutageWindow = TimeSpan.FromSeconds(1), UploadRetries = 1 });
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var data = ChunkUploads.Random(5000, 19);
        await file.WriteAsync(0, data);
        cluster.Meta.NoActiveNodes = true;

        var ex = await Assert.ThrowsAsync<BigFsException>(() => file.FlushAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(Errno.EIO, ex.Errno);
        Assert.Equal(0, cluster.Meta.CommitCount);

        // Back: the data kept in the buffer goes out at the next flush.
        cluster.Meta.NoActiveNodes = false;
        Assert.True(await file.FlushAsync().WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(data, await ReadAllAsync(client.OpenFile(ino, data.Length), 4096));
    }

    [Fact]
    public async Task SequentialReads_PrefetchTheNextChunksIntoTheCache()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var writer = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var data = ChunkUploads.Random(16 * MiB, 13);
        var file = writer.OpenFile(ino, 0);
        await WriteInPiecesAsync(file, 0, data, MiB);
        await file.FlushAsync();

        await using var reader = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var handle = reader.OpenFile(ino, data.Length);
        var buffer = new byte[128 * 1024];
        await handle.ReadAsync(0, buffer);
        await handle.ReadAsync(buffer.Length, buffer);

        await Poll.UntilAsync(() => reader.Cache.Bytes >= 4 * MiB, TimeSpan.FromSeconds(20), "read-ahead filled the cache");
        Assert.Equal(data, await ReadAllAsync(handle, 128 * 1024));
    }

    [Fact]
    public async Task TryReadCached_ServesOnlyVerifiedCachedBlocks_NeverFetchesOrServesBufferedData()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var writer = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var data = ChunkUploads.Random(MiB, 15);
        var file = writer.OpenFile(ino, 0);
        await file.WriteAsync(0, data);
        await file.FlushAsync();

        await using var reader = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var handle = reader.OpenFile(ino, data.Length);
        var buffer = new byte[60 * 1024];
        Assert.False(handle.TryReadCached(4096, buffer)); // no layout, no blocks yet
        Assert.Equal(0, reader.Cache.Bytes);

        await handle.ReadAsync(0, new byte[4096]);      // fetches block 0
        Assert.True(handle.TryReadCached(4096, buffer));
        Assert.Equal(data.AsSpan(4096, buffer.Length).ToArray(), buffer);
        Assert.False(handle.TryReadCached(64 * 1024, new byte[4096]));   // block 1 is not cached
        Assert.False(handle.TryReadCached(data.Length - 100, new byte[4096])); // past the end

        var epoch = handle.ChangeEpoch;
        await handle.WriteAsync(100, new byte[10]);
        Assert.NotEqual(epoch, handle.ChangeEpoch);
        Assert.False(handle.TryReadCached(0, new byte[4096]));           // buffered data there
        Assert.True(handle.TryReadCached(8192, new byte[4096]));
    }

    [Fact]
    public async Task TryReadLeased_GivesTheSameBytesAsAReadWithoutCopying_OrNothing()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var writer = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var data = ChunkUploads.Random(3 * MiB + 5000, 16);
        Array.Clear(data, MiB, MiB); // a hole: written at 0 and at 2 MiB only
        var file = writer.OpenFile(ino, 0);
        await file.WriteAsync(0, data.AsMemory(0, MiB));
        await file.WriteAsync(2 * MiB, data.AsMemory(2 * MiB));
        await file.FlushAsync();

        await using var reader = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var handle = reader.OpenFile(ino, data.Length);
        Assert.Null(handle.TryReadLeased(0, 4096)); // nothing cached yet
        Assert.Equal(data, await ReadAllAsync(handle, MiB)); // fetches (and caches) every block

        foreach (var (offset, length) in new[] { (0L, MiB), (100L, 200_000), (MiB - 10L, 70_000), (2L * MiB + 3, MiB), (3L * MiB, 1 << 20), (data.Length + 10L, 4096) })
        {
            using var read = handle.TryReadLeased(offset, length);
            Assert.NotNull(read);
            var expected = data.AsSpan((int)Math.Min(offset, data.Length), (int)Math.Clamp(data.Length - offset, 0, length)).ToArray();
            Assert.Equal(expected.Length, read.Length);
            Assert.Equal(expected, read.Segments.SelectMany(s => s.ToArray()).ToArray());
        }

        await handle.WriteAsync(10, new byte[1]);
        Assert.Null(handle.TryReadLeased(0, 4096));        // this handle's buffered data is there
        Assert.NotNull(handle.TryReadLeased(MiB, 4096));
    }

    [Fact]
    public async Task ConcurrentWritersToOneFile_DisjointStripes_ReadBackIdentical()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var data = ChunkUploads.Random(24 * MiB, 14);
        const int stripe = 256 * 1024;
        var order = Enumerable.Range(0, data.Length / stripe).OrderBy(i => (i * 7919) % 97).ToArray();

        await Parallel.ForEachAsync(order, new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (i, ct) => await file.WriteAsync((long)i * stripe, data.AsMemory(i * stripe, stripe), ct));
        Assert.Equal(data, await ReadAllAsync(file, MiB));
        await file.FlushAsync();

        Assert.Equal(data, await ReadAllAsync(client.OpenFile(ino, data.Length), MiB));
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, false)]
    [InlineData(4, true)]
    [InlineData(5, true)]
    [InlineData(6, true)]
    public async Task RandomWritesFlushesAndTruncates_MatchAModel(int seed, bool smallWrites)
    {
        await using var cluster = await TestCluster.StartAsync(3);
        cluster.Meta.ChunkSize = 256 * 1024; // many chunk boundaries in a small file
        var options = new BigFsClientOptions { WriteBufferBytes = 2 * MiB, ChunkCacheBytes = MiB };
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address, options);
        Assert.Equal(256 * 1024, client.ChunkSize);
        var ino = cluster.Meta.CreateFile("f");
        var file = client.OpenFile(ino, 0);
        var model = new byte[8 * MiB];
        long modelSize = 0;
        var random = new Random(seed);

        for (var step = 0; step < (smallWrites ? 1500 : 150); step++)
        {
            var action = random.Next(100);
            if (smallWrites && action >= 70)
                action = random.Next(10) == 0 ? random.Next(70, 100) : random.Next(70); // far fewer flushes, truncates and reads
            if (action < 70)
            {
                // Small writes: mostly scattered pieces of a few KiB, so regions get merged and compacted.
                var offset = smallWrites && random.Next(2) == 0 ? random.Next(MiB) : random.Next(6 * MiB);
                var length = random.Next(1, smallWrites || random.Next(2) == 0 ? 5000 : 700_000);
                var bytes = ChunkUploads.Random(length, random.Next());
                await file.WriteAsync(offset, bytes);
                bytes.CopyTo(model, offset);
                modelSize = Math.Max(modelSize, offset + length);
            }
            else if (action < 85)
            {
                await file.FlushAsync();
            }
            else if (action < 92)
            {
                var size = random.Next(7 * MiB);
                await file.TruncateAsync(size);
                if (size < modelSize)
                    Array.Clear(model, size, (int)(modelSize - size));
                modelSize = size;
            }
            else
            {
                var offset = random.Next((int)Math.Max(1, modelSize));
                var buffer = new byte[random.Next(1, 600_000)];
                var n = await file.ReadAsync(offset, buffer);
                Assert.Equal((int)Math.Clamp(modelSize - offset, 0, buffer.Length), n);
                Assert.True(model.AsSpan(offset, n).SequenceEqual(buffer.AsSpan(0, n)), $"step {step}: read at {offset} differs");
            }
            Assert.Equal(modelSize, file.Size);
        }
        Assert.Equal(model.AsSpan(0, (int)modelSize).ToArray(), await ReadAllAsync(file, 300_000));
        await file.FlushAsync();
        Assert.Equal(0, client.Budget.Used);
        Assert.Equal(model.AsSpan(0, (int)modelSize).ToArray(), await ReadAllAsync(client.OpenFile(ino, modelSize), MiB));
        AssertNoRegionDrawsOnTooManyChunks(cluster, ino, client.ChunkSize);
    }

    /// <summary>Compaction after each flush keeps every region at or below the policy's bound.</summary>
    private static void AssertNoRegionDrawsOnTooManyChunks(TestCluster cluster, ulong ino, int regionSize)
    {
        lock (cluster.Meta.Sync)
        {
            var perRegion = cluster.Meta.Inodes[ino].Layout.Extents
                .SelectMany(e => Enumerable.Range(0, (int)((e.End - 1) / regionSize - e.FileOffset / regionSize + 1)).Select(k => (Region: e.FileOffset / regionSize + k, e.ChunkId)))
                .Distinct()
                .GroupBy(x => x.Region)
                .Select(g => (g.Key, Count: g.Count()))
                .ToList();
            Assert.All(perRegion, r => Assert.True(r.Count <= CompactionPolicy.DefaultMaxChunksPerRegion, $"region {r.Key} draws on {r.Count} chunks"));
        }
    }

    [Fact]
    public async Task ThousandsOfScatteredSmallWrites_WithFsyncs_EndInFewChunks_AndReadBackIdentical()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address,
            new BigFsClientOptions { WriteBufferBytes = 4 * MiB, ChunkCacheBytes = 8 * MiB });
        var ino = cluster.Meta.CreateFile("scattered");
        var file = client.OpenFile(ino, 0);
        const int size = 16 * MiB;
        var model = new byte[size];
        var random = new Random(42);
        var writes = 0;
        for (var round = 0; round < 5; round++)
        {
            for (var i = 0; i < 1000; i++, writes++)
            {
                var length = random.Next(1, 4097);
                var offset = random.Next(size - length);
                var bytes = ChunkUploads.Random(length, random.Next());
                await file.WriteAsync(offset, bytes);
                bytes.CopyTo(model, offset);
            }
            await file.FlushAsync();
        }

        Assert.Equal(5000, writes);
        var length0 = file.Size;
        Assert.Equal(model.AsSpan(0, (int)length0).ToArray(), await ReadAllAsync(client.OpenFile(ino, length0), MiB));
        lock (cluster.Meta.Sync)
        {
            var live = cluster.Meta.Inodes[ino].Layout.ChunkIds();
            // Four regions, at most one packed chunk per region per fsync, compacted beyond the bound
            // (without merging, 5,000 scattered writes would leave thousands).
            Assert.True(live.Count <= 4 * CompactionPolicy.DefaultMaxChunksPerRegion, $"{live.Count} chunks referenced");
        }
        AssertNoRegionDrawsOnTooManyChunks(cluster, ino, client.ChunkSize);
    }

    [Fact]
    public async Task ResolvePath_FindsFiles_AndMapsErrno()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var ino = cluster.Meta.CreateFile("x");

        Assert.Equal(1ul, (await client.ResolvePathAsync("/")).Ino);
        Assert.Equal(ino, (await client.ResolvePathAsync("/x")).Ino);
        var missing = await Assert.ThrowsAsync<BigFsException>(() => client.ResolvePathAsync("/nope"));
        Assert.Equal(Errno.ENOENT, missing.Errno);
        Assert.Equal(4 * MiB, client.ChunkSize);
    }
}
