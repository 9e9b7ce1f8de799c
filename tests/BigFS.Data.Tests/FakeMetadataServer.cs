using System.Collections.Concurrent;
using BigFS.Core;
using BigFS.Protocol;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace BigFS.Data.Tests;

/// <summary>
/// An in-memory stand-in for the metadata server with just what the data path needs:
/// node registry, chunk registration (replicas = other registered nodes), confirmations,
/// corruption reports, file layouts (GetLayout / CommitWrite / SetAttr SIZE) and a flat
/// namespace under the root for path resolution. Everything under one lock.
/// </summary>
public sealed class FakeMetadataServer : IAsyncDisposable
{
    public sealed record Node(string NodeId, string Address, ulong CapacityBytes = 0, string[]? Labels = null, string DataAddress = "");
    public sealed class Chunk
    {
        public required string Id;
        public required ulong Size;
        public required ulong Checksum;
        public required ulong[] BlockChecksums;
        public required ulong Owner;
        public required string Primary;
        public readonly Dictionary<string, CopyStatus> Replicas = [];
    }
    public sealed class Inode
    {
        public required ulong Ino;
        public ulong Size;
        public ulong Version;
        public readonly ExtentMap Layout = new();
    }

    private readonly WebApplication _app;
    public readonly object Sync = new();
    public readonly List<Node> Nodes = [];
    public readonly Dictionary<string, Chunk> Chunks = [];
    public readonly Dictionary<ulong, Inode> Inodes = [];
    public readonly Dictionary<string, ulong> RootEntries = [];
    public readonly List<(string NodeId, string ChunkId)> CorruptReports = [];
    public readonly List<(string NodeId, string ChunkId)> BadCopyReports = [];
    public readonly ConcurrentDictionary<string, List<string>> Inventories = new();
    public readonly ConcurrentQueue<string> DeleteOnInventory = new();
    public readonly ConcurrentDictionary<string, ulong> FreeBytesOverride = new();
    public int Heartbeats;
    /// <summary>The filesystem chunk size handed to clients (small values exercise chunk boundaries).</summary>
    public uint ChunkSize = 4 * 1024 * 1024;
    /// <summary>When set, the next heartbeat answers register_again (a metadata server that lost its state).</summary>
    public volatile bool AskToRegisterAgain;
    public int Registrations;
    public int CommitCount;
    private ulong _nextIno = 100;

    /// <summary>When set, RegisterChunk fails with Unavailable (a metadata server in trouble).</summary>
    public volatile bool FailRegistrations;
    /// <summary>When set, ListWritableNodes lists none (every node Suspect to the metadata server).</summary>
    public volatile bool NoActiveNodes;
    public int NodeListRequests;
    /// <summary>When set, heartbeats fail with Unavailable.</summary>
    public volatile bool FailHeartbeats;
    /// <summary>The heartbeat interval handed to registering nodes.</summary>
    public uint HeartbeatIntervalMs = 200;

    public string Address { get; }

    private FakeMetadataServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public static async Task<FakeMetadataServer> StartAsync()
    {
        FakeMetadataServer? server = null;
        var app = GrpcServerHost.Build("127.0.0.1:0", null,
            services =>
            {
                services.AddSingleton(_ => new ClusterService(server!));
                services.AddSingleton(_ => new NamespaceService(server!));
            },
            endpoints =>
            {
                endpoints.MapGrpcService<ClusterService>();
                endpoints.MapGrpcService<NamespaceService>();
            });
        await app.StartAsync();
        server = new FakeMetadataServer(app, app.BoundAddress());
        return server;
    }

    public ulong CreateFile(string name)
    {
        lock (Sync)
        {
            var ino = _nextIno++;
            Inodes[ino] = new Inode { Ino = ino };
            RootEntries[name] = ino;
            return ino;
        }
    }

    public Chunk? GetChunk(string id)
    {
        lock (Sync) return Chunks.GetValueOrDefault(id);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private InodeAttr AttrOf(Inode inode) => new()
    {
        Ino = inode.Ino, Type = inode.Ino == 1 ? InodeType.Directory : InodeType.File, Size = inode.Size,
        Version = inode.Version, Nlink = 1, Mode = inode.Ino == 1 ? 0x41edu : 0x81a4u, Goal = 3,
    };

    private sealed class ClusterService(FakeMetadataServer s) : Cluster.ClusterBase
    {
        public override Task<RegisterNodeReply> RegisterNode(RegisterNodeRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                s.Nodes.RemoveAll(n => n.NodeId == request.NodeId);
                s.Nodes.Add(new Node(request.NodeId, request.Address, request.CapacityBytes, [.. request.Labels], request.DataAddress));
            }
            Interlocked.Increment(ref s.Registrations);
            return Task.FromResult(new RegisterNodeReply { HeartbeatIntervalMs = s.HeartbeatIntervalMs, ChunkSize = s.ChunkSize });
        }

        public override Task<HeartbeatReply> Heartbeat(HeartbeatRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref s.Heartbeats);
            if (s.FailHeartbeats)
                throw new RpcException(new Status(StatusCode.Unavailable, "heartbeats refused by the test"));
            var again = s.AskToRegisterAgain;
            s.AskToRegisterAgain = false;
            return Task.FromResult(new HeartbeatReply { RegisterAgain = again });
        }

        public override async Task<InventoryReply> ReportInventory(IAsyncStreamReader<InventoryBatch> requestStream, ServerCallContext context)
        {
            string? node = null;
            var ids = new List<string>();
            await foreach (var batch in requestStream.ReadAllAsync())
            {
                node = batch.NodeId;
                ids.AddRange(batch.Chunks.Select(c => c.ChunkId));
            }
            if (node is not null)
                s.Inventories[node] = ids;
            var reply = new InventoryReply();
            while (s.DeleteOnInventory.TryDequeue(out var id))
                reply.DeleteChunkIds.Add(id);
            return reply;
        }

        public override Task<RegisterChunkReply> RegisterChunk(RegisterChunkRequest request, ServerCallContext context)
        {
            if (s.FailRegistrations)
                throw new RpcException(new Status(StatusCode.Unavailable, "fake metadata server: registrations disabled"));
            var reply = new RegisterChunkReply();
            lock (s.Sync)
            {
                var goal = request.Goal == 0 ? 3 : (int)request.Goal;
                var chunk = new Chunk
                {
                    Id = request.ChunkId, Size = request.Size, Checksum = request.Checksum, BlockChecksums = [.. request.BlockChecksums],
                    Owner = request.OwnerIno, Primary = request.NodeId,
                };
                foreach (var node in s.Nodes.Where(n => n.NodeId != request.NodeId).Take(goal - 1))
                {
                    chunk.Replicas[node.NodeId] = CopyStatus.Pending;
                    reply.Replicas.Add(new NodeTarget { NodeId = node.NodeId, Address = node.Address, DataAddress = node.DataAddress });
                }
                s.Chunks[request.ChunkId] = chunk;
            }
            return Task.FromResult(reply);
        }

        public override Task<ConfirmReplicaReply> ConfirmReplica(ConfirmReplicaRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                if (!s.Chunks.TryGetValue(request.ChunkId, out var chunk) || !chunk.Replicas.ContainsKey(request.ReplicaNodeId))
                    return Task.FromResult(new ConfirmReplicaReply { Errno = Errno.ENOENT });
                chunk.Replicas[request.ReplicaNodeId] = CopyStatus.Available;
            }
            return Task.FromResult(new ConfirmReplicaReply());
        }

        public override Task<ReportCorruptChunkReply> ReportCorruptChunk(ReportCorruptChunkRequest request, ServerCallContext context)
        {
            lock (s.Sync) s.CorruptReports.Add((request.NodeId, request.ChunkId));
            return Task.FromResult(new ReportCorruptChunkReply());
        }
    }

    private sealed class NamespaceService(FakeMetadataServer s) : Namespace.NamespaceBase
    {
        public override Task<ListWritableNodesReply> ListWritableNodes(ListWritableNodesRequest request, ServerCallContext context)
        {
            var reply = new ListWritableNodesReply { ChunkSize = s.ChunkSize };
            Interlocked.Increment(ref s.NodeListRequests);
            if (s.NoActiveNodes)
                return Task.FromResult(reply);
            lock (s.Sync)
                reply.Nodes.AddRange(s.Nodes.Select(n => new WritableNode { NodeId = n.NodeId, Address = n.Address, DataAddress = n.DataAddress, CapacityBytes = 1L << 50,
                    FreeBytes = s.FreeBytesOverride.GetValueOrDefault(n.NodeId, 1UL << 39) }));
            return Task.FromResult(reply);
        }

        public override Task<EntryReply> Lookup(LookupRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                if (request.Parent != 1 || !s.RootEntries.TryGetValue(request.Name.ToStringUtf8(), out var ino))
                    return Task.FromResult(new EntryReply { Errno = Errno.ENOENT });
                return Task.FromResult(new EntryReply { Attr = s.AttrOf(s.Inodes[ino]) });
            }
        }

        public override Task<AttrReply> GetAttr(InodeRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                if (request.Ino == 1)
                    return Task.FromResult(new AttrReply { Attr = s.AttrOf(new Inode { Ino = 1 }) });
                return Task.FromResult(s.Inodes.TryGetValue(request.Ino, out var inode)
                    ? new AttrReply { Attr = s.AttrOf(inode) }
                    : new AttrReply { Errno = Errno.ENOENT });
            }
        }

        public override Task<AttrReply> SetAttr(SetAttrRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                if (!s.Inodes.TryGetValue(request.Ino, out var inode))
                    return Task.FromResult(new AttrReply { Errno = Errno.ENOENT });
                if ((request.Valid & 8) != 0)
                {
                    inode.Layout.Truncate((long)request.Size);
                    inode.Size = request.Size;
                    inode.Version++;
                }
                return Task.FromResult(new AttrReply { Attr = s.AttrOf(inode) });
            }
        }

        public override Task<LayoutReply> GetLayout(GetLayoutRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                if (!s.Inodes.TryGetValue(request.Ino, out var inode))
                    return Task.FromResult(new LayoutReply { Errno = Errno.ENOENT });
                var end = request.Length == 0 ? long.MaxValue : (long)(request.Offset + request.Length);
                var reply = new LayoutReply { Attr = s.AttrOf(inode) };
                foreach (var e in inode.Layout.Find((long)request.Offset, end))
                    reply.Extents.Add(new Extent { FileOffset = (ulong)e.FileOffset, Length = (ulong)e.Length, ChunkId = e.ChunkId, ChunkOffset = (ulong)e.ChunkOffset });
                foreach (var id in reply.Extents.Select(e => e.ChunkId).Distinct())
                {
                    var chunk = s.Chunks[id];
                    var location = new ChunkLocation { ChunkId = id, Size = chunk.Size, Checksum = chunk.Checksum };
                    location.Copies.Add(CopyOf(chunk.Primary, CopyStatus.Available, true));
                    foreach (var (node, status) in chunk.Replicas)
                        location.Copies.Add(CopyOf(node, status, false));
                    reply.Chunks.Add(location);
                }
                return Task.FromResult(reply);
            }
        }

        private ChunkCopy CopyOf(string nodeId, CopyStatus status, bool primary)
        {
            var node = s.Nodes.FirstOrDefault(n => n.NodeId == nodeId);
            return new() { NodeId = nodeId, Address = node?.Address ?? "", DataAddress = node?.DataAddress ?? "", Status = status, Primary = primary };
        }

        public override Task<AttrReply> CommitWrite(CommitWriteRequest request, ServerCallContext context)
        {
            lock (s.Sync)
            {
                if (!s.Inodes.TryGetValue(request.Ino, out var inode))
                    return Task.FromResult(new AttrReply { Errno = Errno.ENOENT });
                foreach (var e in request.Extents)
                {
                    // The real server only accepts registered chunks, and ranges inside them.
                    if (!s.Chunks.TryGetValue(e.ChunkId, out var chunk) || e.ChunkOffset + e.Length > chunk.Size)
                        return Task.FromResult(new AttrReply { Errno = Errno.EINVAL });
                }
                foreach (var e in request.Extents)
                {
                    inode.Layout.Write(new FileExtent((long)e.FileOffset, (long)e.Length, e.ChunkId, (long)e.ChunkOffset));
                    inode.Size = Math.Max(inode.Size, e.FileOffset + e.Length);
                }
                if (request.SetSize)
                {
                    inode.Layout.Truncate((long)request.Size);
                    inode.Size = request.Size;
                }
                inode.Version++;
                s.CommitCount++;
                return Task.FromResult(new AttrReply { Attr = s.AttrOf(inode) });
            }
        }

        public override Task<StatusReply> ReportBadCopy(ReportBadCopyRequest request, ServerCallContext context)
        {
            lock (s.Sync) s.BadCopyReports.Add((request.NodeId, request.ChunkId));
            return Task.FromResult(new StatusReply());
        }
    }
}
