using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Protocol;
using Microsoft.Extensions.Logging;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Logic;

/// <summary>
/// Node registry, chunk registration with replica designation, replica confirmation,
/// inventory reconciliation and bad-copy reports.
/// </summary>
public sealed class ClusterLogic(MetadataState state, Random random, ILogger logger)
{
    public const int MaxNodeIdLength = 128;
    private readonly MetadataState _s = state;

    /// <summary>
    /// Registrations, confirmations and bad-copy reports are acknowledged once written: losing
    /// one in a power failure only leaves a replica PENDING or a chunk unknown (collected after
    /// the grace period), and a durable commit (fsync) after them covers them anyway. Whatever leads
    /// to deleting data is made durable first (<see cref="SyncAsync"/>, GC's durable phase 1).
    /// </summary>
    private Task<T> MutateAsync<T>(Func<T> op) => _s.MutateAsync(op, Storage.Durability.Written);

    /// <summary>Completes once every change acknowledged so far is durable.</summary>
    public Task SyncAsync() => _s.SyncAsync();

    public Task<RegisterNodeReply> RegisterNodeAsync(RegisterNodeRequest r) => MutateAsync(() =>
    {
        if (string.IsNullOrWhiteSpace(r.NodeId) || r.NodeId.Length > MaxNodeIdLength)
            throw new ArgumentException("node_id must be 1..128 characters");
        if (string.IsNullOrWhiteSpace(r.Address))
            throw new ArgumentException("address is required");
        if (r.DataAddress.Length > 0 && !IsHostPort(r.DataAddress))
            throw new ArgumentException("data_address must be host:port");
        var isNew = !_s.Nodes.TryGetValue(r.NodeId, out var node);
        node ??= new NodeRecord { Id = r.NodeId };
        node.Address = GrpcChannels.Normalize(r.Address);
        node.DataAddress = r.DataAddress;
        node.CapacityBytes = ClampLong(r.CapacityBytes);
        node.UsedBytes = ClampLong(r.UsedBytes);
        node.ChunkCount = ClampLong(r.ChunkCount);
        node.Labels = [.. r.Labels];
        _s.HeardFrom(node);
        _s.Nodes[node.Id] = node;
        _s.MarkNode(node.Id);
        logger.LogInformation("Storage node {NodeId} {Action} at {Address}", node.Id, isNew ? "registered" : "re-registered", node.Address);
        return new RegisterNodeReply
        {
            HeartbeatIntervalMs = (uint)_s.Options.HeartbeatInterval.TotalMilliseconds, ChunkSize = (uint)_s.Options.ChunkSize,
        };
    });

    private static bool IsHostPort(string text)
    {
        var colon = text.LastIndexOf(':');
        return colon > 0 && colon < text.Length - 1 && text.Length <= 300 && !text.Contains('/')
               && int.TryParse(text.AsSpan(colon + 1), out var port) && port is > 0 and <= 65535;
    }

    private static long ClampLong(ulong v) => (long)Math.Min(v, long.MaxValue);

    /// <summary>Heartbeat figures stay in memory (persisting every heartbeat would cost a commit each).</summary>
    public HeartbeatReply Heartbeat(HeartbeatRequest r)
    {
        lock (_s.Sync)
        {
            if (!_s.Nodes.TryGetValue(r.NodeId, out var node))
                return new HeartbeatReply { RegisterAgain = true };
            var was = _s.LivenessOf(node);
            node.CapacityBytes = ClampLong(r.CapacityBytes);
            node.UsedBytes = ClampLong(r.UsedBytes);
            node.ChunkCount = ClampLong(r.ChunkCount);
            _s.HeardFrom(node);
            if (was != NodeLiveness.Active)
                logger.LogInformation("Storage node {NodeId} is active again (was {State})", node.Id, was);
            return new HeartbeatReply();
        }
    }

    public Task<RegisterChunkReply> RegisterChunkAsync(RegisterChunkRequest r) => MutateAsync(() =>
    {
        if (!_s.Nodes.TryGetValue(r.NodeId, out var node)) return new RegisterChunkReply { Errno = E.EPERM };
        if (!ChunkId.IsValid(r.ChunkId) || r.Size == 0 || r.Size > (ulong)_s.Options.ChunkSize
            || r.BlockChecksums.Count != ChunkChecksum.BlockCount((long)r.Size) || r.Goal > MetadataServerOptions.MaxGoal)
            return new RegisterChunkReply { Errno = E.EINVAL };
        var reply = new RegisterChunkReply();
        if (_s.Chunks.TryGetValue(r.ChunkId, out var existing))
        {
            // Idempotent re-registration by the node that stored it: hand back the pending replicas.
            var primary = existing.Copies.Find(c => c.Primary);
            if (primary?.NodeId != r.NodeId || existing.Size != (long)r.Size || existing.Checksum != unchecked((long)r.Checksum))
                return new RegisterChunkReply { Errno = E.EEXIST };
            foreach (var c in existing.Copies.Where(c => c.Status == CopyState.Pending))
                reply.Replicas.Add(TargetOf(c.NodeId));
            return reply;
        }
        var goal = r.Goal != 0 ? (int)r.Goal
            : _s.Inodes.TryGetValue((long)r.OwnerIno, out var owner) && owner.Goal > 0 ? owner.Goal
            : _s.Options.DefaultGoal;
        var now = _s.NowMs;
        var chunk = new ChunkRecord
        {
            Id = r.ChunkId, Size = (long)r.Size, Checksum = unchecked((long)r.Checksum),
            BlockChecksums = r.BlockChecksums.Select(b => unchecked((long)b)).ToArray(),
            OwnerIno = (long)r.OwnerIno, CreatedMs = now, State = ChunkState.Uncommitted, Goal = goal,
            Copies = [new CopyRecord { NodeId = node.Id, Status = CopyState.Available, Primary = true }],
        };
        node.UsedBytes += chunk.Size;   // until its next heartbeat
        foreach (var target in Designate(chunk, goal - 1, exclude: []))
            reply.Replicas.Add(TargetOf(target.Id));
        _s.Chunks[chunk.Id] = chunk;
        _s.MarkChunk(chunk.Id);
        return reply;
    });

    /// <summary>Adds up to <paramref name="count"/> PENDING copies on Active nodes not holding one (under the lock).</summary>
    public List<NodeRecord> Designate(ChunkRecord chunk, int count, IReadOnlyCollection<string> exclude)
    {
        if (count <= 0) return [];
        var holders = chunk.Copies.Select(c => c.NodeId).ToHashSet(StringComparer.Ordinal);
        var candidates = _s.Nodes.Values.Where(n =>
            !holders.Contains(n.Id) && !exclude.Contains(n.Id) && _s.LivenessOf(n) == NodeLiveness.Active && !n.IsFull());
        var usedLabels = chunk.Copies.SelectMany(c => _s.Nodes.TryGetValue(c.NodeId, out var n) ? n.Labels : []);
        var chosen = ReplicaPlacement.Choose(candidates, count, usedLabels, random);
        var now = _s.NowMs;
        foreach (var n in chosen)
        {
            chunk.Copies.Add(new CopyRecord { NodeId = n.Id, Status = CopyState.Pending, DesignatedMs = now });
            n.UsedBytes += chunk.Size;   // counted until its next heartbeat says what it really holds
        }
        if (chosen.Count > 0)
            _s.MarkChunk(chunk.Id);
        return chosen;
    }

    public NodeTarget TargetOf(string nodeId) =>
        _s.Nodes.TryGetValue(nodeId, out var n)
            ? new() { NodeId = nodeId, Address = n.Address, DataAddress = n.DataAddress }
            : new() { NodeId = nodeId, Address = "" };

    public Task<ConfirmReplicaReply> ConfirmReplicaAsync(ConfirmReplicaRequest r) => MutateAsync(() =>
        new ConfirmReplicaReply { Errno = Confirm(r.ChunkId, r.ReplicaNodeId) });

    /// <summary>
    /// PENDING → AVAILABLE, only for an existing PENDING assignment of that node (under the lock).
    /// Confirming an AVAILABLE copy again succeeds and changes nothing, so a node may repeat a
    /// confirmation whose reply it lost.
    /// </summary>
    public int Confirm(string chunkId, string replicaNodeId)
    {
        if (!_s.Chunks.TryGetValue(chunkId, out var chunk)) return E.ENOENT;
        var copy = chunk.CopyOn(replicaNodeId);
        if (copy is { Status: CopyState.Available, Primary: false }) return 0;
        if (copy is null || copy.Status != CopyState.Pending) return E.ENOENT;
        copy.Status = CopyState.Available;
        copy.DesignatedMs = 0;
        chunk.ReplacementCount = 0;
        _s.MarkChunk(chunk.Id);
        return 0;
    }

    /// <summary>
    /// Drops a corrupt or missing copy so re-replication restores the goal. The last AVAILABLE
    /// copy is kept (a mistaken report must not lose the only known copy).
    /// </summary>
    public Task<int> ReportBadCopyAsync(string chunkId, string nodeId, string reason) => MutateAsync(() =>
    {
        if (!ChunkId.IsValid(chunkId)) return E.EINVAL;
        if (!_s.Chunks.TryGetValue(chunkId, out var chunk)) return E.ENOENT;
        var copy = chunk.CopyOn(nodeId);
        if (copy is null) return E.ENOENT;
        if (copy.Status == CopyState.Available && chunk.Copies.Count(c => c.Status == CopyState.Available) == 1)
        {
            logger.LogWarning("Bad copy of chunk {ChunkId} on {NodeId} reported ({Reason}) but it is the last available copy; kept",
                chunkId, nodeId, reason);
            return 0;
        }
        chunk.Copies.Remove(copy);
        _s.MarkChunk(chunk.Id);
        logger.LogWarning("Dropped bad copy of chunk {ChunkId} on {NodeId}: {Reason}", chunkId, nodeId, reason);
        return 0;
    });

    /// <summary>
    /// Inventory reconciliation. Unknown chunks older than the grace period are returned for
    /// deletion. A known chunk whose record has no copy on this node (a replaced replica, a
    /// dropped bad copy, a garbage chunk's stray copy) is returned for deletion when the chunk is
    /// Garbage or already has its goal of AVAILABLE copies elsewhere; otherwise it is left alone
    /// (never adopted: its content was never confirmed).
    /// </summary>
    public List<string> ReconcileInventory(string nodeId, IEnumerable<InventoryEntry> entries)
    {
        var delete = new List<string>();
        lock (_s.Sync)
        {
            var now = _s.NowMs;
            var grace = (long)_s.Options.UncommittedChunkGrace.TotalMilliseconds;
            foreach (var e in entries)
            {
                if (!ChunkId.IsValid(e.ChunkId))
                    continue;
                if (!_s.Chunks.TryGetValue(e.ChunkId, out var chunk))
                {
                    if (now - e.CreatedUnixMs > grace)
                        delete.Add(e.ChunkId);
                    continue;
                }
                if (chunk.CopyOn(nodeId) is not null)
                    continue;
                var available = chunk.Copies.Count(c => c.Status == CopyState.Available);
                if (chunk.State == ChunkState.Garbage || available >= chunk.Goal)
                    delete.Add(e.ChunkId);
            }
        }
        if (delete.Count > 0)
            logger.LogInformation("Inventory of {NodeId}: {Count} chunks to delete", nodeId, delete.Count);
        return delete;
    }

    /// <summary>
    /// Forgets a node that is gone for good (design §5 leaves a dead node's copies in the map
    /// forever otherwise: re-replication works around them, but GC can never finish a garbage
    /// chunk whose copy sits there). Refused without <paramref name="force"/> while the node is
    /// not Dead, or when it holds the last AVAILABLE copy of a live chunk. A primary copy that
    /// goes is handed to another AVAILABLE copy. Durable before the reply: the change lets GC
    /// delete records and re-replication copy data.
    /// </summary>
    public Task<RemoveNodeReply> RemoveNodeAsync(string nodeId, bool force) => _s.MutateAsync(() =>
    {
        if (!_s.Nodes.TryGetValue(nodeId, out var node))
            return new RemoveNodeReply { Errno = E.ENOENT, Message = $"no storage node '{nodeId}'" };
        var liveness = _s.LivenessOf(node);
        if (liveness != NodeLiveness.Dead && !force)
            return new RemoveNodeReply
            {
                Errno = E.EBUSY,
                Message = $"node {nodeId} is {liveness.ToString().ToLowerInvariant()} (last heartbeat {(_s.NowMs - node.LastHeartbeatMs) / 1000}s ago); " +
                          $"stop it and wait until it is dead ({_s.Options.DeadTimeout.TotalSeconds:0}s without a heartbeat), or force",
            };
        var holding = _s.Chunks.Values.Where(c => c.CopyOn(nodeId) is not null).ToList();
        var lost = holding.Count(c => c.State == ChunkState.Live
            && !c.Copies.Exists(x => x.NodeId != nodeId && x.Status == CopyState.Available));
        if (lost > 0 && !force)
            return new RemoveNodeReply
            {
                Errno = E.EBUSY,
                Message = $"node {nodeId} holds the only available copy of {lost} live chunk(s); bring it back so they can be re-replicated, or force (they are lost)",
            };
        foreach (var chunk in holding)
        {
            var copy = chunk.CopyOn(nodeId)!;
            chunk.Copies.Remove(copy);
            if (copy.Primary && chunk.Copies.Find(x => x.Status == CopyState.Available) is { } heir)
                heir.Primary = true;
            _s.MarkChunk(chunk.Id);
        }
        _s.Nodes.Remove(nodeId);
        _s.ForgetNode(nodeId);
        _s.MarkNode(nodeId);
        logger.LogWarning("Storage node {NodeId} removed ({Liveness}): {Copies} copies dropped, {Lost} live chunks lost",
            nodeId, liveness, holding.Count, lost);
        return new RemoveNodeReply { CopiesDropped = (ulong)holding.Count, ChunksLost = (ulong)lost };
    }, Storage.Durability.Durable);

    public ListWritableNodesReply ListWritableNodes()
    {
        lock (_s.Sync)
        {
            var reply = new ListWritableNodesReply { ChunkSize = (uint)_s.Options.ChunkSize };
            var active = _s.Nodes.Values.Where(n => _s.LivenessOf(n) == NodeLiveness.Active).ToList();
            reply.FullNodes = (uint)active.Count(n => n.IsFull());
            foreach (var n in active.Where(n => !n.IsFull()).OrderByDescending(n => n.FreeBytes()))
            {
                var w = new WritableNode
                    {
                        NodeId = n.Id, Address = n.Address, DataAddress = n.DataAddress,
                        CapacityBytes = (ulong)n.CapacityBytes, FreeBytes = (ulong)n.FreeBytes(),
                    };
                w.Labels.AddRange(n.Labels);
                reply.Nodes.Add(w);
            }
            return reply;
        }
    }

    public ClusterStatusReply Status()
    {
        lock (_s.Sync)
        {
            var reply = new ClusterStatusReply { ChunksTotal = (ulong)_s.Chunks.Count, Inodes = (ulong)_s.Inodes.Count };
            foreach (var n in _s.Nodes.Values.OrderBy(n => n.Id, StringComparer.Ordinal))
            {
                var status = new NodeStatus
                {
                    NodeId = n.Id, Address = n.Address, DataAddress = n.DataAddress, State = (NodeState)(int)_s.LivenessOf(n),
                    CapacityBytes = (ulong)n.CapacityBytes, UsedBytes = (ulong)n.UsedBytes, ChunkCount = (ulong)n.ChunkCount,
                    LastHeartbeatUnixMs = n.LastHeartbeatMs,
                };
                status.Labels.AddRange(n.Labels);
                reply.Nodes.Add(status);
            }
            foreach (var c in _s.Chunks.Values)
            {
                foreach (var copy in c.Copies)
                {
                    switch (copy.Status)
                    {
                        case CopyState.Pending: reply.CopiesPending++; break;
                        case CopyState.Available: reply.CopiesAvailable++; break;
                        case CopyState.Deleting: reply.CopiesDeleting++; break;
                    }
                }
                // As re-replication counts: a copy on a dead node does not count toward the goal.
                var healthy = _s.HealthyCopies(c);
                switch (c.State)
                {
                    case ChunkState.Uncommitted: reply.ChunksUncommitted++; break;
                    case ChunkState.Garbage: reply.ChunksGarbage++; break;
                    case ChunkState.Live:
                        reply.LiveChunks++;
                        if (healthy < c.Goal) reply.ChunksBelowGoal++;
                        if (healthy == 0) reply.ChunksUnavailable++;
                        break;
                }
            }
            return reply;
        }
    }
}
