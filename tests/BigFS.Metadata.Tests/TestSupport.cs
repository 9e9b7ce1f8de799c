using BigFS.Metadata.Logic;
using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Metadata.Tests;

/// <summary>A clock that moves only when told to.</summary>
public sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;
    public ManualTimeProvider() : this(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero)) { }
    public override DateTimeOffset GetUtcNow() => _now;
    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>Storage nodes as the maintenance logic sees them: records calls, answers as configured.</summary>
public sealed class FakeNodeClient : IChunkNodeClient
{
    public List<(string Address, string ChunkId)> Deletes { get; } = [];
    public List<(string Address, string ChunkId, List<string> Targets)> Replications { get; } = [];
    /// <summary>Per address: what DeleteChunk does (null = succeed).</summary>
    public Dictionary<string, Func<Exception>> DeleteFailures { get; } = [];
    public bool ConfirmReplications { get; set; }

    public Task DeleteChunkAsync(string address, string chunkId, CancellationToken ct)
    {
        Deletes.Add((address, chunkId));
        return DeleteFailures.TryGetValue(address, out var fail) ? Task.FromException(fail()) : Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> ReplicateChunkAsync(string address, string chunkId, IReadOnlyList<NodeTarget> targets, CancellationToken ct)
    {
        Replications.Add((address, chunkId, targets.Select(t => t.NodeId).ToList()));
        IReadOnlyList<string> confirmed = ConfirmReplications ? targets.Select(t => t.NodeId).ToList() : [];
        return Task.FromResult(confirmed);
    }

    public static Exception NotFound() => new RpcException(new Status(StatusCode.NotFound, "no such chunk"));
    public static Exception Unavailable() => new RpcException(new Status(StatusCode.Unavailable, "connection refused"));
}

/// <summary>The metadata logic wired over an in-memory store, a manual clock and fake nodes.</summary>
public sealed class Harness
{
    public ManualTimeProvider Time { get; } = new();
    public InMemoryMetadataStore Store { get; } = new();
    public MetadataServerOptions Options { get; }
    public MetadataState State { get; }
    public ImmediateChangeLog Log { get; }
    public NamespaceLogic Ns { get; }
    public ClusterLogic Cluster { get; }
    public FakeNodeClient Nodes { get; } = new();
    public ChunkMaintenance Maintenance { get; }

    public Harness(MetadataServerOptions? options = null, int seed = 42)
    {
        Options = options ?? new MetadataServerOptions { DataDirectory = "unused" };
        Log = new ImmediateChangeLog(Store);
        State = new MetadataState(Options, Time, Store.Load(), Log);
        Ns = new NamespaceLogic(State);
        Cluster = new ClusterLogic(State, new Random(seed), NullLogger.Instance);
        Maintenance = new ChunkMaintenance(State, Cluster, Nodes, NullLogger.Instance);
    }

    public static ByteString Name(string s) => ByteString.CopyFromUtf8(s);

    /// <summary>Commits the extents to file <paramref name="ino"/>, as a mount's flush does.</summary>
    public Task<AttrReply> Commit(ulong ino, params Extent[] extents)
    {
        var request = new CommitWriteRequest { Ino = ino };
        request.Extents.AddRange(extents);
        return Ns.CommitWriteAsync(request);
    }

    public async Task<ulong> Create(ulong parent, string name, InodeType type = InodeType.File, uint mode = 0x1A4)
    {
        var r = await Ns.CreateNodeAsync(new CreateNodeRequest
        {
            Parent = parent, Name = Name(name), Type = type, Mode = mode, Uid = 1000, Gid = 1000, Exclusive = true,
            SymlinkTarget = type == InodeType.Symlink ? Name("target") : ByteString.Empty,
        });
        Assert.Equal(0, r.Errno);
        return r.Attr.Ino;
    }

    public InodeAttr Attr(ulong ino)
    {
        var r = Ns.GetAttr(new InodeRequest { Ino = ino });
        Assert.Equal(0, r.Errno);
        return r.Attr;
    }

    public int LookupErrno(ulong parent, string name) => Ns.Lookup(new LookupRequest { Parent = parent, Name = Name(name) }).Errno;

    public async Task RegisterNode(string id, ulong capacity = 100UL << 30, ulong used = 0, params string[] labels)
    {
        var r = new RegisterNodeRequest { NodeId = id, Address = $"http://node-{id}:7000", CapacityBytes = capacity, UsedBytes = used };
        r.Labels.AddRange(labels);
        await Cluster.RegisterNodeAsync(r);
    }

    /// <summary>
    /// Lets <paramref name="span"/> pass while only <paramref name="heartbeating"/> send heartbeats
    /// (every 10 s): the others fall silent while the server keeps hearing from the rest, which is
    /// how it tells a node's failure from its own silence.
    /// </summary>
    public void PassTime(TimeSpan span, params string[] heartbeating)
    {
        var step = TimeSpan.FromSeconds(10);
        for (var passed = TimeSpan.Zero; passed < span; passed += step)
        {
            Time.Advance(passed + step <= span ? step : span - passed);
            foreach (var id in heartbeating)
                Assert.False(Heartbeat(id).RegisterAgain);
        }
    }

    /// <summary>A file <paramref name="name"/> holding one chunk that <paramref name="primary"/> registered, every designated replica confirmed, committed (Live).</summary>
    public async Task<(ulong File, string Chunk, List<string> Replicas)> LiveChunk(string primary, uint goal, string name = "f")
    {
        var f = await Create(1, name);
        var c = NewChunkId();
        var reply = await RegisterChunk(primary, c, owner: f, goal: goal);
        foreach (var replica in reply.Replicas)
            await Cluster.ConfirmReplicaAsync(new ConfirmReplicaRequest { NodeId = primary, ChunkId = c, ReplicaNodeId = replica.NodeId });
        await Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = c });
        return (f, c, [.. reply.Replicas.Select(r => r.NodeId).Order()]);
    }

    public string AddressOf(string nodeId)
    {
        lock (State.Sync) return State.Nodes[nodeId].Address;
    }

    public async Task<RegisterChunkReply> RegisterChunk(string nodeId, string chunkId, ulong size = 1000, ulong owner = 0, uint goal = 0)
    {
        var r = new RegisterChunkRequest { NodeId = nodeId, ChunkId = chunkId, Size = size, Checksum = 7, OwnerIno = owner, Goal = goal };
        r.BlockChecksums.AddRange(Enumerable.Repeat(1UL, BigFS.Core.ChunkChecksum.BlockCount((long)size)));
        return await Cluster.RegisterChunkAsync(r);
    }

    public ChunkRecord Chunk(string id)
    {
        lock (State.Sync) return State.Chunks[id];
    }

    public bool HasChunk(string id)
    {
        lock (State.Sync) return State.Chunks.ContainsKey(id);
    }

    /// <summary>Keeps every node alive in the manual clock's eyes.</summary>
    public void HeartbeatAll()
    {
        List<string> ids;
        lock (State.Sync) ids = [.. State.Nodes.Keys];
        foreach (var id in ids)
            Heartbeat(id);
    }

    /// <summary>A heartbeat from <paramref name="id"/>: 100 GiB of capacity, <paramref name="used"/> of it used.</summary>
    public HeartbeatReply Heartbeat(string id, ulong used = 0) =>
        Cluster.Heartbeat(new HeartbeatRequest { NodeId = id, CapacityBytes = 100UL << 30, UsedBytes = used });

    public static string NewChunkId() => BigFS.Core.ChunkId.NewRandom().ToString();
}

/// <summary>Applies every change to the store at once: written and durable are the same here.</summary>
public sealed class ImmediateChangeLog(IMetadataStore store) : IChangeLog
{
    public List<Durability> Appends { get; } = [];
    public int Syncs { get; private set; }

    public Task AppendAsync(IReadOnlyList<StoreChange> changes, Durability durability, bool callerWrites = false)
    {
        store.Apply(changes);
        Appends.Add(durability);
        return Task.CompletedTask;
    }

    public void WriteQueued() { }

    public Task SyncAsync()
    {
        Syncs++;
        return Task.CompletedTask;
    }
}
