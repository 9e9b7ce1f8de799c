using BigFS.Client;
using BigFS.Metadata;
using BigFS.Protocol;
using static BigFS.Testing.FileHelpers;

namespace BigFS.Integration.Tests;

/// <summary>The whole client over the metadata server's fast listener, over gRPC only, and across a server restart.</summary>
public sealed class FastMetadataTransportTests
{
    /// <summary>Namespace changes, a file written and read back, with every unary metadata call on the given transport.</summary>
    private static async Task ExerciseAsync(BigFsClient client)
    {
        var dir = await client.Namespace.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = TestCluster.Name("d"), Type = InodeType.Directory, Mode = 0x1ed, Exclusive = true });
        Assert.Equal(0, dir.Errno);
        var data = RandomBytes(5 << 20, seed: 11);
        var file = await CreateFileAsync(client, "a.bin", dir.Attr.Ino);
        await WriteAsync(client, file.Ino, 0, data);
        Assert.Equal(data, await ReadAllAsync(client, file.Ino));

        Assert.Equal(Core.Errno.ENOTEMPTY, (await client.Namespace.RemoveDirectoryAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("d") })).Errno);
        var renamed = await client.Namespace.RenameAsync(new RenameRequest { Parent = dir.Attr.Ino, Name = TestCluster.Name("a.bin"), NewParent = 1, NewName = TestCluster.Name("b.bin") });
        Assert.Equal(0, renamed.Errno);
        Assert.Equal(file.Ino, (await client.ResolvePathAsync("/b.bin")).Ino);
        // Errors are errno values in replies on either transport.
        Assert.Equal(Core.Errno.ENOENT, (await client.Namespace.UnlinkAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("missing") })).Errno);
        Assert.Equal(0, (await client.Namespace.RemoveDirectoryAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("d") })).Errno);
        Assert.Equal(0, (await client.Namespace.UnlinkAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("b.bin") })).Errno);
        var gone = await Assert.ThrowsAsync<BigFsException>(() => client.ResolvePathAsync("/b.bin"));
        Assert.Equal(Core.Errno.ENOENT, gone.Errno);
        await client.SyncMetadataAsync();
    }

    [Fact]
    public async Task TheClientMakesItsNamespaceCallsOverTheFastListener()
    {
        await using var cluster = await TestCluster.StartAsync();
        Assert.StartsWith("127.0.0.1:", cluster.Meta.FastAddress);
        var client = await cluster.ClientAsync();
        await ExerciseAsync(client);
        Assert.True(client.FastMetadataCalls >= 10, $"{client.FastMetadataCalls} fast calls");
        cluster.AssertChunkDataWentOverBulkOnly();
    }

    [Fact]
    public async Task ASameHostClientUsesTheServersUnixSocket()
    {
        await using var cluster = await TestCluster.StartAsync();
        Assert.EndsWith(".sock", cluster.Meta.FastUnixPath);
        var client = await cluster.ClientAsync();
        await ExerciseAsync(client);
        Assert.Equal("unix:" + cluster.Meta.FastUnixPath, client.FastMetadataAddress);
    }

    [Fact]
    public async Task WithTheUnixSocketTurnedOffASameHostClientUsesTcp()
    {
        await using var cluster = await TestCluster.StartAsync(configure: o => o.FastListenUnix = false);
        Assert.Equal("", cluster.Meta.FastUnixPath);
        var client = await cluster.ClientAsync();
        await ExerciseAsync(client);
        Assert.Equal(cluster.Meta.FastAddress, client.FastMetadataAddress);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cluster.Root, "meta"), "fast-*.sock"));
    }

    [Fact]
    public async Task StorageNodesRegisterAndConfirmChunksOverTheFastListener()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var data = RandomBytes(3 << 20, seed: 5);
        var file = await CreateFileAsync(client, "c.bin");
        await WriteAsync(client, file.Ino, 0, data);
        Assert.Equal(data, await ReadAllAsync(client, file.Ino));
        // Every chunk was registered by its primary and confirmed on two replicas: at least 3 fast
        // calls in all. The write returned once two copies were durable; the third copy's
        // confirmation may still be on its way.
        long Fast() => cluster.Nodes.OfType<Storage.StorageNode>().Sum(n => n.MetadataCalls.Fast);
        await Poll.UntilAsync(() => Fast() >= 3, TimeSpan.FromSeconds(10), "3 fast calls from the storage nodes (a registration, two confirmations)");
    }

    [Fact]
    public async Task WithoutAFastListenerStorageNodesUseGrpc()
    {
        await using var cluster = await TestCluster.StartAsync(configure: o => o.FastListen = MetadataServerOptions.NoFastListener);
        var client = await cluster.ClientAsync();
        var data = RandomBytes(1 << 20, seed: 6);
        var file = await CreateFileAsync(client, "c.bin");
        await WriteAsync(client, file.Ino, 0, data);
        Assert.Equal(data, await ReadAllAsync(client, file.Ino));
        var nodes = cluster.Nodes.OfType<Storage.StorageNode>().ToList();
        Assert.Equal(0, nodes.Sum(n => n.MetadataCalls.Fast));
        Assert.True(nodes.Sum(n => n.MetadataCalls.Grpc) >= 3);
    }

    [Fact]
    public async Task WithoutAFastListenerEverythingGoesOverGrpc()
    {
        await using var cluster = await TestCluster.StartAsync(configure: o => o.FastListen = MetadataServerOptions.NoFastListener);
        Assert.Equal("", cluster.Meta.FastAddress);
        var client = await cluster.ClientAsync();
        await ExerciseAsync(client);
        Assert.Equal(0, client.FastMetadataCalls);
    }

    [Fact]
    public async Task AClientTurnedToGrpcOnlyMakesNoFastCalls()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync(new BigFsClientOptions { FastMetadataTransport = false });
        await ExerciseAsync(client);
        Assert.Equal(0, client.FastMetadataCalls);
    }

    [Fact]
    public async Task AClientSurvivesAMetadataServerRestartAndFindsTheNewFastListener()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var file = await CreateFileAsync(client, "kept.bin");

        await cluster.RestartMetaAsync();   // the fast listener's port is chosen anew (port 0)
        await cluster.WaitForActiveNodesAsync(3);

        // Calls right after the restart may fail (the old connection is gone) or go over gRPC;
        // then the client is back on the fast listener at its new address.
        var fastBefore = client.FastMetadataCalls;
        await Poll.UntilAsync(async () =>
        {
            try
            {
                var attr = await client.Namespace.GetAttrAsync(new InodeRequest { Ino = file.Ino });
                return attr.Errno == 0 && client.FastMetadataCalls > fastBefore + 1;
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(20), "a fast call after the restart");
        var data = RandomBytes(1 << 20, seed: 3);
        await WriteAsync(client, file.Ino, 0, data);
        Assert.Equal(data, await ReadAllAsync(client, file.Ino));
        // The new run has a socket of its own; the old run's is gone, and the client is on the new one.
        Assert.Equal([cluster.Meta.FastUnixPath], Directory.EnumerateFiles(Path.Combine(cluster.Root, "meta"), "fast-*.sock"));
        Assert.Equal("unix:" + cluster.Meta.FastUnixPath, client.FastMetadataAddress);
    }
}
