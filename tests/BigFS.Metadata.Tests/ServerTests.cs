using BigFS.Core;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

/// <summary>The real server: LiteDB on disk, gRPC on a loopback port chosen by the OS.</summary>
public sealed class ServerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bigfs-meta-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private MetadataServerOptions Options(string? dir = null) => new() { DataDirectory = dir ?? _dir, Listen = "127.0.0.1:0" };

    private sealed class Clients(string address) : IDisposable
    {
        private readonly GrpcChannel _channel = GrpcChannels.Create(address);
        public Namespace.NamespaceClient Ns => new(_channel);
        public Cluster.ClusterClient Cluster => new(_channel);
        public void Dispose() => _channel.Dispose();
    }

    [Fact]
    public async Task Serves_namespace_and_cluster_over_grpc()
    {
        await using var server = await MetadataServer.StartAsync(Options());
        Assert.StartsWith("http://127.0.0.1:", server.Address);
        using var c = new Clients(server.Address);

        var root = await c.Ns.GetAttrAsync(new InodeRequest { Ino = 1 });
        Assert.Equal(InodeType.Directory, root.Attr.Type);
        var dir = await c.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name("d"), Type = InodeType.Directory, Mode = 0x1ED });
        Assert.Equal(0, dir.Errno);
        var missing = await c.Ns.LookupAsync(new LookupRequest { Parent = 1, Name = Name("nope") });
        Assert.Equal(Errno.ENOENT, missing.Errno);

        await c.Cluster.RegisterNodeAsync(new RegisterNodeRequest { NodeId = "n1", Address = "127.0.0.1:1", CapacityBytes = 1000, UsedBytes = 100 });
        Assert.False((await c.Cluster.HeartbeatAsync(new HeartbeatRequest { NodeId = "n1", CapacityBytes = 1000, UsedBytes = 200 })).RegisterAgain);
        Assert.True((await c.Cluster.HeartbeatAsync(new HeartbeatRequest { NodeId = "ghost" })).RegisterAgain);
        var statfs = await c.Ns.StatFsAsync(new StatFsRequest());
        Assert.Equal(1000ul, statfs.CapacityBytes);
        Assert.Equal(800ul, statfs.FreeBytes);
        Assert.Equal(255u, statfs.MaxNameLength);

        var chunk = NewChunkId();
        var reg = new RegisterChunkRequest { NodeId = "n1", ChunkId = chunk, Size = 100, Checksum = 1, Goal = 1 };
        reg.BlockChecksums.Add(1);
        Assert.Equal(0, (await c.Cluster.RegisterChunkAsync(reg)).Errno);

        using (var inventory = c.Cluster.ReportInventory())
        {
            var orphan = NewChunkId();
            var batch = new InventoryBatch { NodeId = "n1" };
            batch.Chunks.Add(new InventoryEntry { ChunkId = chunk, CreatedUnixMs = 1 });
            batch.Chunks.Add(new InventoryEntry { ChunkId = orphan, CreatedUnixMs = 1 });
            await inventory.RequestStream.WriteAsync(batch);
            await inventory.RequestStream.CompleteAsync();
            Assert.Equal([orphan], (await inventory).DeleteChunkIds);
        }

        var status = await c.Cluster.GetClusterStatusAsync(new ClusterStatusRequest());
        Assert.Equal("n1", Assert.Single(status.Nodes).NodeId);
        Assert.Equal(1ul, status.ChunksUncommitted);
        Assert.Equal(2ul, status.Inodes);   // root and d
    }

    [Fact]
    public async Task Committed_changes_survive_a_restart()
    {
        var chunk = NewChunkId();
        ulong file;
        await using (var server = await MetadataServer.StartAsync(Options()))
        {
            using var c = new Clients(server.Address);
            await c.Cluster.RegisterNodeAsync(new RegisterNodeRequest { NodeId = "n1", Address = "127.0.0.1:1" });
            var d = (await c.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name("d"), Type = InodeType.Directory, Mode = 0x1ED })).Attr.Ino;
            file = (await c.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = d, Name = Name("f"), Type = InodeType.File, Mode = 0x1A4 })).Attr.Ino;
            await c.Ns.SetXattrAsync(new SetXattrRequest { Ino = file, Name = Name("user.k"), Value = Name("v") });
            var reg = new RegisterChunkRequest { NodeId = "n1", ChunkId = chunk, Size = 70_000, Checksum = 5, OwnerIno = file, Goal = 1 };
            reg.BlockChecksums.AddRange([1, 2]);
            await c.Cluster.RegisterChunkAsync(reg);
            var commit = new CommitWriteRequest { Ino = file };
            // An extent crossing a 64 MiB region boundary is stored in two region documents.
            commit.Extents.Add(new Extent { FileOffset = 64 * 1024 * 1024 - 100, Length = 70_000, ChunkId = chunk });
            Assert.Equal(0, (await c.Ns.CommitWriteAsync(commit)).Errno);
            var temp = (await c.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name("gone"), Type = InodeType.File })).Attr.Ino;
            await c.Ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("gone") });
            Assert.True(temp > file);
        }

        await using (var server = await MetadataServer.StartAsync(Options()))
        {
            using var c = new Clients(server.Address);
            var d = await c.Ns.LookupAsync(new LookupRequest { Parent = 1, Name = Name("d") });
            Assert.Equal(0, d.Errno);
            var f = await c.Ns.LookupAsync(new LookupRequest { Parent = d.Attr.Ino, Name = Name("f") });
            Assert.Equal(file, f.Attr.Ino);
            Assert.Equal(64ul * 1024 * 1024 - 100 + 70_000, f.Attr.Size);
            Assert.Equal(3u, (await c.Ns.GetAttrAsync(new InodeRequest { Ino = 1 })).Attr.Nlink);
            Assert.Equal("v", (await c.Ns.GetXattrAsync(new GetXattrRequest { Ino = file, Name = Name("user.k") })).Value.ToStringUtf8());
            var layout = await c.Ns.GetLayoutAsync(new GetLayoutRequest { Ino = file });
            Assert.Equal(70_000ul, (ulong)layout.Extents.Sum(e => (long)e.Length));
            Assert.All(layout.Extents, e => Assert.Equal(chunk, e.ChunkId));
            Assert.Equal("n1", Assert.Single(Assert.Single(layout.Chunks).Copies).NodeId);
            var status = await c.Cluster.GetClusterStatusAsync(new ClusterStatusRequest());
            Assert.Equal(1ul, status.LiveChunks);
            // Inode ids are never reused, even the one of an inode deleted before the restart.
            var fresh = (await c.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name("new"), Type = InodeType.File })).Attr.Ino;
            Assert.True(fresh > file + 1);
        }
    }

    [Fact]
    public async Task Acknowledged_change_survives_a_crash()
    {
        var crashCopy = Path.Combine(_dir, "crash-copy");
        await using (var server = await MetadataServer.StartAsync(Options(Path.Combine(_dir, "live"))))
        {
            using var c = new Clients(server.Address);
            var r = await c.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name("acked"), Type = InodeType.File, Mode = 0x1A4 });
            Assert.Equal(0, r.Errno);
            // Crash: take the files (LiteDB's and the journal's) as they are right after the
            // acknowledgement, before any clean close (which would apply and remove the journal).
            Directory.CreateDirectory(crashCopy);
            foreach (var file in Directory.GetFiles(Path.Combine(_dir, "live"), "metadata*"))
                if (!file.EndsWith(".lock", StringComparison.Ordinal))
                    File.Copy(file, Path.Combine(crashCopy, Path.GetFileName(file)));
            Assert.NotEmpty(Directory.GetFiles(crashCopy, JournaledMetadataStore.SegmentPrefix + "*"));
        }
        await using (var server = await MetadataServer.StartAsync(Options(crashCopy)))
        {
            using var c = new Clients(server.Address);
            var r = await c.Ns.LookupAsync(new LookupRequest { Parent = 1, Name = Name("acked") });
            Assert.Equal(0, r.Errno);
            Assert.Equal(InodeType.File, r.Attr.Type);
        }
    }

    [Fact]
    public async Task A_second_server_on_the_same_directory_is_refused()
    {
        await using (var first = await MetadataServer.StartAsync(Options()))
        {
            var ex = await Assert.ThrowsAsync<IOException>(() => MetadataServer.StartAsync(Options()));
            Assert.Contains("in use", ex.Message);
            // The first keeps working.
            using var c = new Clients(first.Address);
            Assert.Equal(0, (await c.Ns.GetAttrAsync(new InodeRequest { Ino = 1 })).Errno);
        }
        // Released on stop.
        await using var again = await MetadataServer.StartAsync(Options());
        Assert.NotEmpty(again.Address);
    }

    [Theory]
    [InlineData("DataDirectory")]
    [InlineData("ChunkSize")]
    [InlineData("DefaultGoal")]
    [InlineData("DeadTimeout")]
    [InlineData("CleanupInterval")]
    public async Task Invalid_options_are_rejected_naming_the_option(string option)
    {
        var o = Options();
        switch (option)
        {
            case "DataDirectory": o.DataDirectory = ""; break;
            case "ChunkSize": o.ChunkSize = 1000; break;
            case "DefaultGoal": o.DefaultGoal = 0; break;
            case "DeadTimeout": o.DeadTimeout = TimeSpan.FromSeconds(1); break;   // shorter than HeartbeatTimeout
            case "CleanupInterval": o.CleanupInterval = TimeSpan.Zero; break;
        }
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => MetadataServer.StartAsync(o));
        Assert.Contains(option, ex.Message);
    }

    /// <summary>A storage node's ChunkStore that has no chunks: DeleteChunk answers NOT_FOUND.</summary>
    private sealed class EmptyChunkStore : ChunkStore.ChunkStoreBase
    {
        public int DeleteCalls;
        public override Task<DeleteChunkReply> DeleteChunk(DeleteChunkRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref DeleteCalls);
            throw new RpcException(new Status(StatusCode.NotFound, $"chunk {request.ChunkId} not here"));
        }
    }

    [Fact]
    public async Task Gc_over_grpc_counts_NotFound_from_a_live_node_as_deleted()
    {
        var store = new EmptyChunkStore();
        var node = GrpcServerHost.Build("127.0.0.1:0", null, s => s.AddSingleton(store), e => e.MapGrpcService<EmptyChunkStore>());
        await node.StartAsync();
        try
        {
            var o = Options();
            o.UncommittedChunkGrace = TimeSpan.FromMilliseconds(200);
            o.CleanupInterval = TimeSpan.FromHours(1);   // only explicit passes
            await using var server = await MetadataServer.StartAsync(o);
            using var c = new Clients(server.Address);
            await c.Cluster.RegisterNodeAsync(new RegisterNodeRequest { NodeId = "n1", Address = node.BoundAddress() });
            var chunk = NewChunkId();
            var reg = new RegisterChunkRequest { NodeId = "n1", ChunkId = chunk, Size = 10, Checksum = 1, Goal = 1 };
            reg.BlockChecksums.Add(1);
            await c.Cluster.RegisterChunkAsync(reg);

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while ((await c.Cluster.GetClusterStatusAsync(new ClusterStatusRequest())).ChunksTotal > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the uncommitted chunk was never collected");
                await Task.Delay(50);
                await server.RunMaintenanceOnceAsync();
            }
            Assert.Equal(1, store.DeleteCalls);
        }
        finally
        {
            await node.StopAsync();
            await node.DisposeAsync();
        }
    }
}

public sealed class ConcurrencyTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bigfs-meta-conc-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Concurrent_creates_and_renames_over_grpc_are_all_applied_and_persisted()
    {
        const int files = 200;
        var options = new MetadataServerOptions { DataDirectory = _dir, Listen = "127.0.0.1:0" };
        await using (var server = await MetadataServer.StartAsync(options))
        {
            using var channel = GrpcChannels.Create(server.Address);
            var ns = new Namespace.NamespaceClient(channel);
            var created = await Task.WhenAll(Enumerable.Range(0, files).Select(i =>
                ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name($"f{i}"), Type = InodeType.File, Exclusive = true }).ResponseAsync));
            Assert.All(created, r => Assert.Equal(0, r.Errno));
            Assert.Equal(files, created.Select(r => r.Attr.Ino).Distinct().Count());
            var renamed = await Task.WhenAll(Enumerable.Range(0, files).Select(i =>
                ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name($"f{i}"), NewParent = 1, NewName = Name($"g{i}") }).ResponseAsync));
            Assert.All(renamed, r => Assert.Equal(0, r.Errno));
            // Far fewer flushes to disk than operations: namespace changes share them.
            Assert.True(server.Flushes < 2 * files, $"{server.Flushes} flushes for {2 * files} operations");
        }
        await using (var server = await MetadataServer.StartAsync(options))
        {
            using var channel = GrpcChannels.Create(server.Address);
            var ns = new Namespace.NamespaceClient(channel);
            var names = new List<string>();
            ulong cookie = 0;
            while (true)
            {
                var page = await ns.ReadDirectoryAsync(new ReadDirectoryRequest { Ino = 1, Cookie = cookie, MaxEntries = 64 });
                names.AddRange(page.Entries.Select(e => e.Name.ToStringUtf8()));
                if (page.End) break;
                cookie = page.Entries[^1].Cookie;
            }
            Assert.Equal(Enumerable.Range(0, files).Select(i => $"g{i}").Order(), names.Order());
        }
    }
}
