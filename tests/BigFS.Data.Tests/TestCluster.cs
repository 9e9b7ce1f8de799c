using BigFS.Protocol;
using BigFS.Storage;

namespace BigFS.Data.Tests;

/// <summary>A fake metadata server plus N in-process storage nodes, each in its own temp directory.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly string _root;
    public FakeMetadataServer Meta { get; }
    public List<StorageNode> Nodes { get; } = [];
    public List<string> DataDirectories { get; } = [];
    public GrpcChannels Channels { get; } = new();

    private TestCluster(string root, FakeMetadataServer meta)
    {
        _root = root;
        Meta = meta;
    }

    public static async Task<TestCluster> StartAsync(int nodes, Action<StorageNodeOptions>? configure = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "bigfs-test-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(root);
        var cluster = new TestCluster(root, await FakeMetadataServer.StartAsync());
        for (var i = 0; i < nodes; i++)
            await cluster.AddNodeAsync(configure);
        await Poll.UntilAsync(() => { lock (cluster.Meta.Sync) return cluster.Meta.Nodes.Count == nodes; }, TimeSpan.FromSeconds(20), "all nodes registered");
        return cluster;
    }

    public StorageNodeOptions OptionsFor(int index, Action<StorageNodeOptions>? configure = null)
    {
        var options = new StorageNodeOptions
        {
            DataDirectory = Path.Combine(_root, $"node{index}"),
            Listen = "127.0.0.1:0",
            MetadataAddress = Meta.Address,
            CapacityBytes = 1L << 40,
            RegistrationRetryInterval = TimeSpan.FromMilliseconds(100),
        };
        configure?.Invoke(options);
        return options;
    }

    public async Task<StorageNode> AddNodeAsync(Action<StorageNodeOptions>? configure = null)
    {
        var options = OptionsFor(Nodes.Count, configure);
        var node = await StorageNode.StartAsync(options);
        Nodes.Add(node);
        DataDirectories.Add(options.DataDirectory);
        return node;
    }

    public ChunkStore.ChunkStoreClient ClientFor(StorageNode node) => new(Channels.Get(node.Address));

    public int IndexOf(string nodeId) => Nodes.FindIndex(n => n.NodeId == nodeId);

    /// <summary>Upload files in progress or left behind in a node's temporary directory (not the empty spares it makes ahead).</summary>
    public List<string> UploadFiles(int node) =>
        Directory.EnumerateFiles(Path.Combine(DataDirectories[node], "tmp")).Where(f => !StagingFilePool.IsSpare(f)).ToList();

    public string ChunkPath(int node, string chunkId) => Path.Combine(DataDirectories[node], "chunks", chunkId[..2], chunkId);

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
            await node.KillAsync();
        await Meta.DisposeAsync();
        Channels.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
