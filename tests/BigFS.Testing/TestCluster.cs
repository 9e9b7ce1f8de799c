using BigFS.Client;
using BigFS.Metadata;
using BigFS.Protocol;
using BigFS.Storage;
using Google.Protobuf;

namespace BigFS.Testing;

/// <summary>A metadata server and storage nodes on loopback, with data in a fresh temp folder.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    public string Root { get; }
    public MetadataServer Meta { get; private set; } = null!;
    public List<StorageNode?> Nodes { get; } = [];
    public List<string> NodeDirectories { get; } = [];
    public MetadataServerOptions MetaOptions { get; }
    private readonly List<BigFsClient> _clients = [];
    private readonly GrpcChannels _channels = new();

    private TestCluster(string root, MetadataServerOptions metaOptions)
    {
        Root = root;
        MetaOptions = metaOptions;
    }

    /// <summary>Applied to every storage node's options (e.g. DataListen = "none" for a gRPC-only cluster).</summary>
    public Action<StorageNodeOptions>? ConfigureNode { get; set; }

    public static async Task<TestCluster> StartAsync(int nodes = 3, Action<MetadataServerOptions>? configure = null, Action<StorageNodeOptions>? configureNode = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "bigfs-it-" + Guid.NewGuid().ToString("n")[..12]);
        Directory.CreateDirectory(root);
        var options = new MetadataServerOptions
        {
            DataDirectory = Path.Combine(root, "meta"),
            Listen = "127.0.0.1:0",
            HeartbeatInterval = TimeSpan.FromMilliseconds(500),
            HeartbeatTimeout = TimeSpan.FromSeconds(2),
            DeadTimeout = TimeSpan.FromSeconds(4),
            CleanupInterval = TimeSpan.FromMilliseconds(300),
            ReplicaConfirmationTimeout = TimeSpan.FromSeconds(5),
            TimestampHeuristicThreshold = TimeSpan.FromSeconds(10),
        };
        configure?.Invoke(options);
        var cluster = new TestCluster(root, options) { ConfigureNode = configureNode };
        cluster.Meta = await MetadataServer.StartAsync(options);
        for (var i = 0; i < nodes; i++)
            await cluster.AddNodeAsync();
        await cluster.WaitForActiveNodesAsync(nodes);
        return cluster;
    }

    public async Task<StorageNode> AddNodeAsync()
    {
        NodeDirectories.Add(Path.Combine(Root, $"node{NodeDirectories.Count + 1}"));
        Nodes.Add(null);
        return await RestartNodeAsync(Nodes.Count - 1);
    }

    /// <summary>Starts node <paramref name="index"/> on its data directory (again, after a stop or a kill).</summary>
    public async Task<StorageNode> RestartNodeAsync(int index)
    {
        var options = new StorageNodeOptions
        {
            DataDirectory = NodeDirectories[index],
            Listen = "127.0.0.1:0",
            MetadataAddress = Meta.Address,
        };
        ConfigureNode?.Invoke(options);
        return Nodes[index] = await StorageNode.StartAsync(options);
    }

    public async Task RestartMetaAsync()
    {
        await StopMetaAsync();
        await StartMetaAsync();
    }

    /// <summary>Stops the metadata server; <see cref="StartMetaAsync"/> brings it back on the same gRPC address and data.</summary>
    public async Task StopMetaAsync()
    {
        MetaOptions.Listen = Meta.Address.Replace("http://", "");
        await Meta.StopAsync();
    }

    public async Task StartMetaAsync() => Meta = await MetadataServer.StartAsync(MetaOptions);

    public async Task<BigFsClient> ClientAsync(BigFsClientOptions? options = null)
    {
        var client = await BigFsClient.ConnectAsync(Meta.Address, options);
        _clients.Add(client);
        return client;
    }

    public async Task<ClusterStatusReply> StatusAsync() =>
        await new Cluster.ClusterClient(_channels.Get(Meta.Address)).GetClusterStatusAsync(new ClusterStatusRequest());

    public async Task WaitForActiveNodesAsync(int count)
    {
        await Poll.UntilAsync(async () =>
        {
            try
            {
                var status = await StatusAsync();
                return status.Nodes.Count(n => n.State == NodeState.Active) >= count;
            }
            catch (Grpc.Core.RpcException)
            {
                return false; // e.g. the first call after a metadata server restart meets the old connection's GOAWAY
            }
        }, TimeSpan.FromSeconds(20), $"{count} active nodes");
    }

    /// <summary>Every file under a node's data dir whose name contains the chunk id.</summary>
    public IEnumerable<string> ChunkFiles(int node, string chunkId) =>
        Directory.Exists(NodeDirectories[node])
            ? Directory.EnumerateFiles(NodeDirectories[node], "*", SearchOption.AllDirectories)
                .Where(f => Path.GetFileName(f).Contains(chunkId, StringComparison.Ordinal))
            : [];

    /// <summary>
    /// Chunk data moved only over the nodes' bulk listeners (reads, uploads, replica copies):
    /// the gRPC ChunkStore carried none of it.
    /// </summary>
    public void AssertChunkDataWentOverBulkOnly()
    {
        var live = Nodes.OfType<StorageNode>().ToList();
        var grpc = live.Sum(n => n.Traffic.GrpcReads + n.Traffic.GrpcWrites + n.Traffic.GrpcReplicas);
        var bulk = live.Sum(n => n.Traffic.BulkReads + n.Traffic.BulkWrites + n.Traffic.BulkReplicas);
        if (grpc != 0 || bulk == 0)
            throw new Xunit.Sdk.XunitException($"chunk data calls: {grpc} over gRPC, {bulk} over bulk (expected bulk only)");
    }

    public int NodesHolding(string chunkId) => Enumerable.Range(0, NodeDirectories.Count).Count(i => ChunkFiles(i, chunkId).Any());

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _clients)
            await c.DisposeAsync();
        foreach (var n in Nodes)
            if (n is not null) await n.DisposeAsync();
        await Meta.DisposeAsync();
        _channels.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    public static ByteString Name(string name) => ByteString.CopyFromUtf8(name);
}
