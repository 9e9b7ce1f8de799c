using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using BigFS.Core;
using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using BigFS.Protocol.FastMeta;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Client;

/// <summary>
/// A connection to a BigFS cluster: the raw namespace client plus the shared data-path
/// machinery (write budget, uploader, chunk reader and block cache) that every
/// <see cref="BigFsFile"/> uses.
/// </summary>
public sealed class BigFsClient : IAsyncDisposable
{
    public const int DefaultChunkSize = 4 * 1024 * 1024;
    private const ulong RootIno = 1;

    private readonly GrpcChannels _channels;
    private readonly FastMetaCallInvoker? _fastMeta;
    private readonly BulkClient _bulk;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ConcurrentDictionary<BigFsFile, byte> _dirtyFiles = new();
    private long _uploadingBytes;
    private readonly StrongBox<string?> _session;

    private BigFsClient(GrpcChannels channels, FastMetaCallInvoker? fastMeta, Namespace.NamespaceClient ns, StrongBox<string?> session, int chunkSize,
        BigFsClientOptions options, ILoggerFactory loggerFactory)
    {
        _session = session;
        _channels = channels;
        _fastMeta = fastMeta;
        _loggerFactory = loggerFactory;
        Namespace = ns;
        ChunkSize = chunkSize;
        Options = options;
        Budget = new WriteBufferBudget(options.WriteBufferBytes);
        _bulk = new BulkClient();
        // About the metadata server's default heartbeat timeout: by then its layouts list an unreachable node's copies last.
        var failures = new NodeFailureMemory(TimeSpan.FromSeconds(30));
        Uploader = new ChunkUploader(ns, channels, _bulk, options, failures, loggerFactory.CreateLogger<ChunkUploader>());
        Cache = new BlockCache(options.ChunkCacheBytes);
        MergeSlots = new SemaphoreSlim(Math.Max(1, options.MaxInFlightChunkUploads));
        // Merged-chunk assembly (at most MaxInFlightChunkUploads at once) and read-ahead pieces share it.
        AssemblyBuffers = new AssemblyBufferPool(chunkSize, Math.Max(1, options.MaxInFlightChunkUploads) + 4);
        Reader = new ChunkReader(channels, _bulk, ns, Cache, failures, loggerFactory.CreateLogger<ChunkReader>());
    }

    public Namespace.NamespaceClient Namespace { get; }
    public int ChunkSize { get; }
    public BigFsClientOptions Options { get; }

    /// <summary>The mount's session (optional): sent with commits, and as a header with every namespace call.</summary>
    public string? SessionId
    {
        get => _session.Value;
        set => _session.Value = value;
    }

    /// <summary>
    /// Called with (inode, new data version) after each data change this client made itself (a
    /// commit or a truncate answered by the metadata server), so a cache that holds what this
    /// client wrote — a mount's page cache — can stay valid across it.
    /// </summary>
    public Action<ulong, ulong>? OwnDataChange { get; set; }

    internal void ReportOwnDataChange(ulong ino, ulong version) => OwnDataChange?.Invoke(ino, version);

    internal WriteBufferBudget Budget { get; }
    internal ChunkUploader Uploader { get; }
    internal ChunkReader Reader { get; }
    internal BlockCache Cache { get; }
    /// <summary>Merged chunks being assembled and uploaded at once (each holds up to a chunk of memory beyond the write budget).</summary>
    internal SemaphoreSlim MergeSlots { get; }
    internal AssemblyBufferPool AssemblyBuffers { get; }
    internal DirtyPagePool Pages { get; } = new(8L * 1024 * 1024);

    public static async Task<BigFsClient> ConnectAsync(string metadataAddress, BigFsClientOptions? options = null, ILoggerFactory? loggerFactory = null, CancellationToken ct = default)
    {
        options ??= new BigFsClientOptions();
        loggerFactory ??= NullLoggerFactory.Instance;
        var channels = new GrpcChannels();
        var session = new StrongBox<string?>();
        var grpc = channels.Get(metadataAddress).Intercept(headers =>
        {
            if (session.Value is { } id)
                (headers ??= []).Add(SessionHeader.Name, id);
            return headers;
        });
        var grpcNamespace = new Namespace.NamespaceClient(grpc);
        // Unary namespace calls go over the server's fast listener when it has one (gRPC otherwise).
        var fastMeta = options.FastMetadataTransport
            ? new FastMetaCallInvoker(grpc, FastMetaCallInvoker.DiscoverThrough(grpcNamespace),
                () => session.Value, loggerFactory.CreateLogger<FastMetaCallInvoker>(), options.InlineMetadataCompletions)
            : null;
        try
        {
            var reply = await grpcNamespace.ListWritableNodesAsync(new ListWritableNodesRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
            var chunkSize = reply.ChunkSize is > 0 and <= 64 * 1024 * 1024 ? (int)reply.ChunkSize : DefaultChunkSize;
            fastMeta?.UseAddress(FastMetaCallInvoker.AddressFrom(reply));
            CallInvoker invoker = fastMeta is null ? grpc : fastMeta;
            if (options.MetadataOutageWindow > TimeSpan.Zero)
            {
                invoker = invoker.Intercept(new OutageRetryInterceptor(options.MetadataOutageWindow, loggerFactory.CreateLogger<OutageRetryInterceptor>()));
                // Outermost: a change repeated through an outage keeps its slot, so the server runs it once.
                invoker = invoker.Intercept(new ReplaySlotInterceptor(() => session.Value is not null));
            }
            var ns = new Namespace.NamespaceClient(invoker);
            return new BigFsClient(channels, fastMeta, ns, session, chunkSize, options, loggerFactory);
        }
        catch (RpcException ex)
        {
            fastMeta?.Dispose();
            channels.Dispose();
            throw BigFsException.Io($"cannot reach the metadata server at {metadataAddress}: {ex.Status.Detail}", ex);
        }
    }

    public BigFsFile OpenFile(ulong ino, long knownSize) => new(this, ino, knownSize, _loggerFactory.CreateLogger<BigFsFile>());

    /// <summary>Waits until every namespace change acknowledged so far is durable on the metadata server.</summary>
    public async Task SyncMetadataAsync(CancellationToken ct = default)
    {
        StatusReply reply;
        try
        {
            reply = await Namespace.SyncAsync(new SyncRequest(), cancellationToken: ct);
        }
        catch (RpcException ex)
        {
            throw BigFsException.Io("metadata sync failed: " + ex.Status.Detail, ex);
        }
        if (reply.Errno != 0)
            throw new BigFsException(reply.Errno, $"metadata sync failed: errno {reply.Errno}");
    }

    public async Task<InodeAttr> ResolvePathAsync(string path, CancellationToken ct = default)
    {
        try
        {
            var attr = await CheckAsync(Namespace.GetAttrAsync(new InodeRequest { Ino = RootIno }, cancellationToken: ct).ResponseAsync, r => (r.Errno, r.Attr));
            foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                var name = Encoding.UTF8.GetBytes(part);
                var invalid = EntryName.Validate(name);
                if (invalid != 0)
                    throw new BigFsException(invalid, $"bad path component in '{path}'");
                attr = await CheckAsync(Namespace.LookupAsync(new LookupRequest { Parent = attr.Ino, Name = Google.Protobuf.ByteString.CopyFrom(name) },
                    cancellationToken: ct).ResponseAsync, r => (r.Errno, r.Attr));
            }
            return attr;
        }
        catch (RpcException ex)
        {
            throw BigFsException.Io("metadata server call failed: " + ex.Status.Detail, ex);
        }

        static async Task<InodeAttr> CheckAsync<T>(Task<T> call, Func<T, (int Errno, InodeAttr Attr)> parts)
        {
            var (errno, attr) = parts(await call);
            if (errno != 0)
                throw new BigFsException(errno, $"errno {errno}");
            return attr;
        }
    }

    /// <summary>
    /// Takes write-buffer memory. When the budget is exhausted and the uploads already running
    /// will not free enough, part of the buffered data is sealed so its upload frees it.
    /// </summary>
    internal async ValueTask AcquireBufferAsync(long bytes, CancellationToken ct)
    {
        var stuckRounds = 0;
        while (!Budget.TryAcquire(bytes))
        {
            if (Interlocked.Read(ref _uploadingBytes) < bytes)
            {
                // Seal about a quarter of the budget, cheapest uploads first (dense regions, whole
                // segments); sparse regions stay buffered and keep gathering writes.
                var target = Math.Max(bytes, Budget.Capacity / 4);
                long sealedBytes = 0;
                foreach (var file in _dirtyFiles.Keys)
                {
                    if (sealedBytes >= target)
                        break;
                    sealedBytes += file.SealCheapest(target - sealedBytes);
                    UntrackIfClean(file);
                }
                // Nothing buffered, nothing uploading, still no room, for several rounds: the
                // memory is held by chunks whose upload failed (kept for the next flush).
                var stuck = Interlocked.Read(ref _uploadingBytes) == 0 && Budget.Used + bytes > Budget.Capacity;
                stuckRounds = stuck ? stuckRounds + 1 : 0;
                if (stuckRounds >= 3)
                    throw BigFsException.Io("the write buffer is full of data whose upload failed; flush to retry or report it");
            }
            // Wait a bounded time, then look again: uploads may fail rather than free memory.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                await Budget.AcquireAsync(bytes, wait.Token);
                return;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>Bytes of sealed data whose upload is running (they return to the budget when it succeeds).</summary>
    internal void AddUploading(long bytes) => Interlocked.Add(ref _uploadingBytes, bytes);

    internal void TrackDirty(BigFsFile file) => _dirtyFiles.TryAdd(file, 0);

    internal void UntrackIfClean(BigFsFile file)
    {
        if (!file.HasDirtyData)
            _dirtyFiles.TryRemove(file, out _);
    }

    /// <summary>Unary namespace calls made over the fast metadata transport so far (diagnostics, tests).</summary>
    public long FastMetadataCalls => _fastMeta?.FastCalls ?? 0;

    /// <summary>Where the fast metadata connection goes (host:port or unix:/path); null when there is none.</summary>
    public string? FastMetadataAddress => _fastMeta?.ConnectedAddress;

    public ValueTask DisposeAsync()
    {
        _fastMeta?.Dispose();
        _channels.Dispose();
        _bulk.Dispose();
        return ValueTask.CompletedTask;
    }
}
