using BigFS.Metadata.Logic;
using BigFS.Metadata.Services;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using BigFS.Protocol.FastMeta;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Metadata;

/// <summary>
/// The metadata server process: locks its data directory, loads all metadata from LiteDB into
/// memory, serves the Namespace and Cluster gRPC services, and runs the maintenance loop
/// (session expiry, replica confirmation timeouts, re-replication, garbage collection).
/// </summary>
public sealed class MetadataServer : IAsyncDisposable
{
    private readonly MetadataServerOptions _options;
    private readonly ILogger _logger;
    private readonly DataDirectoryLock _dirLock;
    private readonly IMetadataStore _store;
    private readonly GroupCommitWriter _writer;
    private readonly GrpcChannels _channels = new();
    private readonly SemaphoreSlim _maintenanceGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private NamespaceLogic _namespace = null!;
    private ChunkMaintenance _maintenance = null!;
    private WebApplication? _app;
    private FastMetaListener? _fast;
    private FastMetaListener? _fastUnix;
    private Task _maintenanceLoop = Task.CompletedTask;
    private Task? _stopped;

    private MetadataServer(MetadataServerOptions options, ILoggerFactory loggerFactory, DataDirectoryLock dirLock, IMetadataStore store)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger<MetadataServer>();
        _dirLock = dirLock;
        _store = store;
        _writer = new GroupCommitWriter(store, loggerFactory.CreateLogger<GroupCommitWriter>());
    }

    /// <summary>"http://127.0.0.1:PORT" once started.</summary>
    public string Address { get; private set; } = "";

    /// <summary>The fast metadata listener as host:port once started; empty when it is turned off.</summary>
    public string FastAddress => _endpoints.FastAddress;

    /// <summary>The fast listener's Unix socket path, or empty when there is none.</summary>
    public string FastUnixPath => _endpoints.FastUnixPath;

    private readonly MetadataEndpoints _endpoints = new();

    internal MetadataState State { get; private set; } = null!;

    /// <summary>Group commits written so far (each may carry many operations).</summary>
    internal long Commits => _writer.Commits;

    /// <summary>Flushes of the metadata to disk so far (each covers everything written before it).</summary>
    internal long Flushes => _writer.Flushes;

    public static async Task<MetadataServer> StartAsync(MetadataServerOptions options, ILoggerFactory? loggerFactory = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        loggerFactory ??= NullLoggerFactory.Instance;
        var dirLock = DataDirectoryLock.Acquire(options.DataDirectory);
        IMetadataStore store;
        LiteDbMetadataStore? lite = null;
        try
        {
            lite = new LiteDbMetadataStore(options.DataDirectory);
            store = new JournaledMetadataStore(lite, options.DataDirectory, logger: loggerFactory.CreateLogger<JournaledMetadataStore>());
        }
        catch
        {
            lite?.Dispose();
            dirLock.Dispose();
            throw;
        }
        var server = new MetadataServer(options, loggerFactory, dirLock, store);
        try
        {
            await server.StartCoreAsync(loggerFactory, ct).ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.StopAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(ILoggerFactory loggerFactory, CancellationToken ct)
    {
        var snapshot = _store.Load();
        State = new MetadataState(_options, TimeProvider.System, snapshot, _writer);
        Task durable;
        lock (State.Sync)
            durable = State.CommitAsync();   // the root inode on first start
        await durable.ConfigureAwait(false);

        _namespace = new NamespaceLogic(State);
        var cluster = new ClusterLogic(State, Random.Shared, loggerFactory.CreateLogger<ClusterLogic>());
        var callTimeout = TimeSpan.FromSeconds(Math.Clamp(_options.CleanupInterval.TotalSeconds, 2, 30));
        _maintenance = new ChunkMaintenance(State, cluster, new GrpcChunkNodeClient(_channels, callTimeout),
            loggerFactory.CreateLogger<ChunkMaintenance>());

        _app = GrpcServerHost.Build(_options.Listen, loggerFactory,
            services =>
            {
                services.AddSingleton(_namespace);
                services.AddSingleton(cluster);
                services.AddSingleton(_endpoints);
                services.AddGrpc().AddServiceOptions<NamespaceService>(o => o.Interceptors.Add<ChangeOriginInterceptor>());
            },
            endpoints =>
            {
                endpoints.MapGrpcService<NamespaceService>();
                endpoints.MapGrpcService<ClusterService>();
            });
        await _app.StartAsync(ct).ConfigureAwait(false);
        Address = _app.BoundAddress();
        if (_options.EffectiveFastListen() is { } fastListen)
        {
            // The same service class (and so the same handlers) as the gRPC endpoint.
            var dispatcher = new FastMetaDispatcher { OnSession = session => ChangeOrigin.Session = session };
            Namespace.BindService(dispatcher, new NamespaceService(_namespace, cluster, _endpoints));
            Cluster.BindService(dispatcher, new ClusterService(cluster));
            _fast = FastMetaListener.Start(fastListen, dispatcher, loggerFactory.CreateLogger<FastMetaListener>());
            _endpoints.FastAddress = AdvertisedFastAddress(Address, fastListen, _fast.LocalEndPoint!.Port);
            if (_options.FastListenUnix)
                _fastUnix = StartUnixListener(dispatcher, loggerFactory.CreateLogger<FastMetaListener>());
            _endpoints.FastUnixPath = _fastUnix?.UnixPath ?? "";
        }
        _maintenanceLoop = Task.Run(() => MaintenanceLoopAsync(_stopping.Token), CancellationToken.None);
        if (_options.HeartbeatTimeout <= _options.HeartbeatInterval)
            _logger.LogWarning("HeartbeatTimeout {Timeout} is not longer than HeartbeatInterval {Interval}: healthy nodes will turn Suspect",
                _options.HeartbeatTimeout, _options.HeartbeatInterval);
        _logger.LogInformation("Metadata server listening on {Address}, fast metadata transport on {FastAddress} and {FastUnixPath} (data {DataDirectory}, {Inodes} inodes, {Chunks} chunks)",
            Address, _fast is null ? "none" : FastAddress, _fastUnix?.UnixPath ?? "no Unix socket", _options.DataDirectory, snapshot.Inodes.Count, snapshot.Chunks.Count);
    }

    /// <summary>
    /// The fast listener on a Unix socket in the data directory, named uniquely for this run (so
    /// a client never takes another server's socket for this one); sockets of earlier runs are
    /// removed. Null (logged) when the path would be too long or the socket cannot be made.
    /// </summary>
    private FastMetaListener? StartUnixListener(FastMetaDispatcher dispatcher, ILogger<FastMetaListener> logger)
    {
        foreach (var stale in Directory.EnumerateFiles(_options.DataDirectory, "fast-*.sock"))
        {
            try { File.Delete(stale); }
            catch (IOException) { }
        }
        var path = Path.Combine(Path.GetFullPath(_options.DataDirectory), $"fast-{Guid.NewGuid():N}.sock");
        try
        {
            return FastMetaListener.StartUnix(path, dispatcher, logger);
        }
        catch (Exception ex) when (ex is ArgumentException or System.Net.Sockets.SocketException or IOException or UnauthorizedAccessException)
        {
            _logger.LogInformation("No Unix socket for the fast metadata transport ({Reason}); same-host clients use TCP", ex.Message);
            return null;
        }
    }

    /// <summary>host:port clients dial: a wildcard listen is advertised with the host of the advertised gRPC address.</summary>
    internal static string AdvertisedFastAddress(string grpcAddress, string fastListen, int boundPort)
    {
        var (host, _) = GrpcServerHost.ParseListen(fastListen);
        if (host is "*" or "0.0.0.0" or "" or "[::]")
            host = new Uri(grpcAddress).Host;
        else if (host == "localhost")
            host = "127.0.0.1";
        return $"{host}:{boundPort}";
    }

    private async Task MaintenanceLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.CleanupInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await RunMaintenanceOnceAsync(ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    _logger.LogError(ex, "Maintenance pass failed");
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>One session-expiry / replication / GC pass now (passes never overlap).</summary>
    public async Task RunMaintenanceOnceAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_stopped is not null, this);
        await _maintenanceGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await _namespace.ExpireSessionsAsync().ConfigureAwait(false);
            await _maintenance.RunOnceAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _maintenanceGate.Release();
        }
    }

    /// <summary>Graceful stop: in-flight calls finish, queued writes are flushed, LiteDB is closed, the lock released.</summary>
    public Task StopAsync()
    {
        lock (_stopping)
            return _stopped ??= StopCoreAsync();
    }

    private async Task StopCoreAsync()
    {
        _stopping.Cancel();
        try { await _maintenanceLoop.ConfigureAwait(false); }
        catch (Exception ex) { _logger.LogWarning(ex, "Maintenance loop ended with an error"); }
        if (_fastUnix is not null)
            await _fastUnix.StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        if (_fast is not null)
            await _fast.StopAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        State?.Feed.Close();   // change-feed streams would otherwise hold the gRPC shutdown for its full timeout
        State?.Locks.Close();  // so would lock requests waiting for a holder
        if (_app is not null)
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }
        // Wait for a maintenance pass started by a test call before closing the store.
        await _maintenanceGate.WaitAsync().ConfigureAwait(false);
        _writer.Dispose();
        _store.Dispose();
        _channels.Dispose();
        _dirLock.Dispose();
        _logger.LogInformation("Metadata server stopped");
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
