using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using BigFS.Protocol.FastMeta;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Storage;

/// <summary>A storage node hosted in-process: the ChunkStore gRPC service plus its background loops.</summary>
public sealed class StorageNode : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly DataDirectoryLock _lock;
    private readonly GrpcChannels _channels;
    private readonly FastMetaCallInvoker _metadata;
    private readonly BulkClient _bulk;
    private readonly BackgroundWork _background;
    private readonly ILogger _logger;
    private int _stopped;

    private StorageNode(string nodeId, string address, string dataAddress, NodeTraffic traffic, WebApplication app, DataDirectoryLock dirLock, GrpcChannels channels, FastMetaCallInvoker metadata, BulkClient bulk,
        BackgroundWork background, LocalChunkStore store, ClusterAgent agent, Scrubber scrubber, ILogger logger)
    {
        NodeId = nodeId;
        Address = address;
        DataAddress = dataAddress;
        Traffic = traffic;
        _app = app;
        _lock = dirLock;
        _channels = channels;
        _metadata = metadata;
        _bulk = bulk;
        _background = background;
        Store = store;
        Agent = agent;
        Scrubber = scrubber;
        _logger = logger;
    }

    public string NodeId { get; }
    public string Address { get; }

    /// <summary>host:port of the bulk data listener; empty when it is turned off.</summary>
    public string DataAddress { get; }

    public NodeTraffic Traffic { get; }

    /// <summary>Calls to the metadata server over its fast listener, and over gRPC (for tests and diagnostics).</summary>
    public (long Fast, long Grpc) MetadataCalls => (_metadata.FastCalls, _metadata.FallbackCalls);
    internal LocalChunkStore Store { get; }
    internal ClusterAgent Agent { get; }
    internal Scrubber Scrubber { get; }

    public static async Task<StorageNode> StartAsync(StorageNodeOptions options, ILoggerFactory? loggerFactory = null, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
            throw new ArgumentException("StorageNodeOptions.DataDirectory is required", nameof(options));
        loggerFactory ??= NullLoggerFactory.Instance;
        var logger = loggerFactory.CreateLogger<StorageNode>();
        Directory.CreateDirectory(options.DataDirectory);
        var dirLock = DataDirectoryLock.Acquire(options.DataDirectory);
        var channels = new GrpcChannels();
        var background = new BackgroundWork(logger);
        WebApplication? app = null;
        FastMetaCallInvoker? metadata = null;
        LocalChunkStore? store = null;
        try
        {
            var nodeId = NodeIdentity.LoadOrCreate(options.DataDirectory);
            store = new LocalChunkStore(options.DataDirectory, loggerFactory.CreateLogger<LocalChunkStore>(), options.CapacityBytes);
            store.Load();

            // The advertised address is only known once Kestrel is bound, so services resolve it late.
            var replicationReady = new TaskCompletionSource<ReplicationCoordinator>(TaskCreationOptions.RunContinuationsAsynchronously);
            var traffic = new NodeTraffic();
            var dataListen = options.EffectiveDataListen();
            ListenOptions? dataEndpoint = null;
            app = GrpcServerHost.Build(options.Listen, loggerFactory,
                services =>
                {
                    services.AddSingleton(new ChunkStoreService(store, replicationReady.Task, traffic, loggerFactory.CreateLogger<ChunkStoreService>()));
                    services.AddSingleton(new BulkConnectionHandler(store, replicationReady.Task, traffic, loggerFactory.CreateLogger<BulkConnectionHandler>()));
                },
                endpoints => endpoints.MapGrpcService<ChunkStoreService>(),
                kestrel =>
                {
                    if (dataListen is null)
                        return;
                    var (host, port) = GrpcServerHost.ParseListen(dataListen);
                    void Configure(ListenOptions o)
                    {
                        o.UseConnectionHandler<BulkConnectionHandler>();
                        dataEndpoint = o;
                    }
                    if (host is "*" or "0.0.0.0" or "")
                        kestrel.ListenAnyIP(port, Configure);
                    else
                        kestrel.Listen(System.Net.IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host), port, Configure);
                });
            await app.StartAsync(ct);
            var address = options.AdvertiseAddress ?? app.BoundAddress();
            var dataAddress = dataEndpoint is null ? "" : AdvertisedDataAddress(address, dataListen!, dataEndpoint.IPEndPoint!.Port);
            // Chunk registrations and confirmations (on every write's path) go over the metadata
            // server's fast listener when it has one, gRPC otherwise.
            var grpc = channels.Get(options.MetadataAddress).CreateCallInvoker();
            metadata = new FastMetaCallInvoker(grpc, FastMetaCallInvoker.DiscoverThrough(new Namespace.NamespaceClient(grpc)), () => null,
                loggerFactory.CreateLogger<FastMetaCallInvoker>());
            var cluster = new Cluster.ClusterClient(metadata.Intercept(new OutageRetryInterceptor(options.MetadataOutageWindow,
                loggerFactory.CreateLogger<OutageRetryInterceptor>())));
            var agent = new ClusterAgent(cluster, nodeId, address, dataAddress, options, store, loggerFactory.CreateLogger<ClusterAgent>());
            var bulk = new BulkClient();
            var pusher = new ReplicaPusher(channels, bulk, (chunk, reason) => agent.ReportCorruptAsync(chunk, reason), loggerFactory.CreateLogger<ReplicaPusher>());
            var replication = new ReplicationCoordinator(agent, pusher, background, nodeId, address, dataAddress, options.MinCopiesBeforeAck,
                loggerFactory.CreateLogger<ReplicationCoordinator>());
            agent.OnLateRegistration = (chunk, targets, token) => replication.ReplicateAsync(chunk, targets, token);
            replicationReady.SetResult(replication);
            var scrubber = new Scrubber(store, agent, options, loggerFactory.CreateLogger<Scrubber>());

            background.RunLoop("cluster agent", agent.RunAsync);
            background.RunLoop("registration retries", agent.RetryRegistrationsAsync);
            background.RunLoop("scrubber", scrubber.RunAsync);
            background.RunLoop("staging files", store.MakeStagingFilesAheadAsync);
            logger.LogInformation("Storage node {NodeId} serving {Directory} at {Address} (bulk data at {DataAddress})",
                nodeId, options.DataDirectory, address, dataAddress.Length > 0 ? dataAddress : "none");
            return new StorageNode(nodeId, address, dataAddress, traffic, app, dirLock, channels, metadata, bulk, background, store, agent, scrubber, logger);
        }
        catch
        {
            background.Cancel();
            if (app is not null)
                await app.DisposeAsync();
            metadata?.Dispose();
            channels.Dispose();
            store?.Dispose();
            dirLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The data address other hosts dial: the listen host when it is a specific address,
    /// otherwise the host of the advertised gRPC address; with the bound port.
    /// </summary>
    internal static string AdvertisedDataAddress(string advertisedGrpcAddress, string dataListen, int boundPort)
    {
        var (host, _) = GrpcServerHost.ParseListen(dataListen);
        if (host is "*" or "0.0.0.0" or "" or "[::]")
            host = new Uri(GrpcChannels.Normalize(advertisedGrpcAddress)).Host;
        else if (host == "localhost")
            host = "127.0.0.1";
        return $"{host}:{boundPort}";
    }

    /// <summary>Graceful: lets in-flight uploads and replications finish (bounded), then stops.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            await _app.StopAsync(grace.Token);
        await _background.StopAsync(TimeSpan.FromSeconds(5));
        await ReleaseAsync();
        _logger.LogInformation("Storage node {NodeId} stopped", NodeId);
    }

    /// <summary>Abrupt: aborts every connection and background task now (a node dying).</summary>
    public async Task KillAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        _background.Cancel();
        await _app.StopAsync(new CancellationToken(canceled: true));
        await ReleaseAsync();
        _logger.LogWarning("Storage node {NodeId} killed", NodeId);
    }

    private async Task ReleaseAsync()
    {
        await _app.DisposeAsync();
        _metadata.Dispose();
        _channels.Dispose();
        _bulk.Dispose();
        _background.Dispose();
        Store.Dispose();
        _lock.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
