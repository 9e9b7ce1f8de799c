using System.Collections.Concurrent;
using BigFS.Core;
using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// The node's side of the Cluster service: registration (retried until the metadata server
/// answers), heartbeats, inventory reports (deleting what the reply names), chunk
/// registration with background retries, and corruption reports.
/// </summary>
public sealed class ClusterAgent(
    Cluster.ClusterClient cluster,
    string nodeId,
    string address,
    string dataAddress,
    StorageNodeOptions options,
    LocalChunkStore store,
    ILogger logger)
{
    private const int InventoryBatchSize = 1000;
    private readonly ConcurrentDictionary<ChunkId, (ulong Owner, uint Goal)> _unregistered = new();
    private TimeSpan _heartbeatInterval = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan FirstHeartbeatRetry = TimeSpan.FromSeconds(1);

    /// <summary>Registered chunks whose replicas must now be filled (set by the node).</summary>
    public Func<StoredChunk, IReadOnlyList<NodeTarget>, CancellationToken, Task>? OnLateRegistration { get; set; }

    public int UnregisteredCount => _unregistered.Count;

    public async Task RunAsync(CancellationToken ct)
    {
        await RegisterNodeUntilAnsweredAsync(ct);
        await ReportInventoryQuietlyAsync(ct);
        var nextInventory = DateTime.UtcNow + options.InventoryInterval;
        var wait = _heartbeatInterval;
        var retry = FirstHeartbeatRetry;
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(wait, ct);
            wait = _heartbeatInterval;
            try
            {
                var reply = await cluster.HeartbeatAsync(new HeartbeatRequest
                {
                    NodeId = nodeId, CapacityBytes = (ulong)Capacity(), UsedBytes = (ulong)store.UsedBytes, ChunkCount = (ulong)store.Count,
                }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
                if (reply.RegisterAgain)
                {
                    logger.LogWarning("The metadata server does not know this node; registering again");
                    await RegisterNodeUntilAnsweredAsync(ct);
                    await ReportInventoryQuietlyAsync(ct);
                    nextInventory = DateTime.UtcNow + options.InventoryInterval;
                }
                retry = FirstHeartbeatRetry;
            }
            catch (RpcException ex)
            {
                // Soon again, not a whole interval later: after an outage of the metadata server
                // (or of its network) every node is late at once, and each lost interval keeps
                // them all Suspect, with no node to write to, for that much longer.
                wait = retry < _heartbeatInterval ? retry : _heartbeatInterval;
                retry = wait * 2;
                logger.LogWarning("Heartbeat failed: {Status}; next try in {Wait}", ex.Status, wait);
            }
            if (DateTime.UtcNow >= nextInventory)
            {
                await ReportInventoryQuietlyAsync(ct);
                nextInventory = DateTime.UtcNow + options.InventoryInterval;
            }
        }
    }

    private async Task RegisterNodeUntilAnsweredAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                var request = new RegisterNodeRequest
                {
                    NodeId = nodeId, Address = address, DataAddress = dataAddress, CapacityBytes = (ulong)Capacity(),
                    UsedBytes = (ulong)store.UsedBytes, ChunkCount = (ulong)store.Count,
                };
                request.Labels.AddRange(options.Labels);
                var reply = await cluster.RegisterNodeAsync(request, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
                if (reply.HeartbeatIntervalMs > 0)
                    _heartbeatInterval = TimeSpan.FromMilliseconds(reply.HeartbeatIntervalMs);
                logger.LogInformation("Registered node {NodeId} at {Address} with {Meta}; heartbeat every {Interval}",
                    nodeId, address, options.MetadataAddress, _heartbeatInterval);
                return;
            }
            catch (RpcException ex)
            {
                logger.LogWarning("Registering with the metadata server failed ({Status}); retrying in {Delay}", ex.Status.StatusCode, delay);
            }
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
        }
    }

    private async Task ReportInventoryQuietlyAsync(CancellationToken ct)
    {
        try
        {
            await ReportInventoryAsync(ct);
        }
        catch (RpcException ex)
        {
            logger.LogWarning("Inventory report failed: {Status}", ex.Status);
        }
    }

    public async Task ReportInventoryAsync(CancellationToken ct)
    {
        using var call = cluster.ReportInventory(deadline: DateTime.UtcNow.AddMinutes(5), cancellationToken: ct);
        var batch = new InventoryBatch { NodeId = nodeId };
        foreach (var chunk in store.All)
        {
            if (chunk.IsCorrupt)
                continue;
            batch.Chunks.Add(new InventoryEntry { ChunkId = chunk.Id.ToString(), Size = (ulong)chunk.Size, CreatedUnixMs = chunk.Header.CreatedUnixMs });
            if (batch.Chunks.Count == InventoryBatchSize)
            {
                await call.RequestStream.WriteAsync(batch, ct);
                batch = new InventoryBatch { NodeId = nodeId };
            }
        }
        await call.RequestStream.WriteAsync(batch, ct); // always one batch, so an empty node reports too
        await call.RequestStream.CompleteAsync();
        var reply = await call.ResponseAsync;
        foreach (var text in reply.DeleteChunkIds)
        {
            if (!ChunkId.TryParse(text, out var id))
            {
                logger.LogWarning("Inventory reply named an invalid chunk id; ignored");
                continue;
            }
            _unregistered.TryRemove(id, out _);
            if (store.Delete(id))
                logger.LogInformation("Deleted chunk {ChunkId}: unknown to the metadata server", id);
        }
    }

    /// <summary>Registers a stored chunk; on failure remembers it for background retries and rethrows.</summary>
    public async Task<RegisterChunkReply> RegisterChunkAsync(StoredChunk chunk, ulong ownerIno, uint goal, CancellationToken ct)
    {
        try
        {
            var reply = await cluster.RegisterChunkAsync(RegisterRequest(chunk, ownerIno, goal), deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);
            if (reply.Errno != 0)
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"RegisterChunk returned errno {reply.Errno}"));
            return reply;
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException)
        {
            _unregistered[chunk.Id] = (ownerIno, goal);
            logger.LogWarning("Registering chunk {ChunkId} failed ({Error}); kept locally, will retry", chunk.Id, ex.Message);
            throw;
        }
    }

    /// <summary>Retries failed chunk registrations until they succeed or the chunk is gone.</summary>
    public async Task RetryRegistrationsAsync(CancellationToken ct)
    {
        var delay = options.RegistrationRetryInterval;
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(delay, ct);
            var failed = false;
            foreach (var (id, (owner, goal)) in _unregistered)
            {
                if (!store.TryGet(id, out var chunk) || chunk.IsCorrupt)
                {
                    _unregistered.TryRemove(id, out _);
                    continue;
                }
                try
                {
                    var reply = await cluster.RegisterChunkAsync(RegisterRequest(chunk, owner, goal), deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);
                    if (reply.Errno != 0)
                    {
                        // The metadata server refused it for good; the inventory decides its fate.
                        logger.LogWarning("RegisterChunk {ChunkId} returned errno {Errno}; leaving it to the inventory", id, reply.Errno);
                        _unregistered.TryRemove(id, out _);
                        continue;
                    }
                    _unregistered.TryRemove(id, out _);
                    logger.LogInformation("Chunk {ChunkId} registered on retry", id);
                    if (OnLateRegistration is { } replicate && reply.Replicas.Count > 0)
                        await replicate(chunk, reply.Replicas, ct);
                }
                catch (RpcException)
                {
                    failed = true;
                    break;
                }
            }
            delay = failed
                ? TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks))
                : options.RegistrationRetryInterval;
        }
    }

    /// <summary>Stops serving a corrupt copy and tells the metadata server (best effort).</summary>
    public async Task ReportCorruptAsync(StoredChunk chunk, string reason)
    {
        if (chunk.IsCorrupt)
            return;
        chunk.MarkCorrupt();
        logger.LogError("Chunk {ChunkId} is corrupt: {Reason}", chunk.Id, reason);
        try
        {
            await cluster.ReportCorruptChunkAsync(new ReportCorruptChunkRequest { NodeId = nodeId, ChunkId = chunk.Id.ToString(), Reason = reason },
                deadline: DateTime.UtcNow.AddSeconds(10));
        }
        catch (RpcException ex)
        {
            logger.LogWarning("Reporting corrupt chunk {ChunkId} failed: {Status}", chunk.Id, ex.Status);
        }
    }

    /// <returns>true when the metadata server accepted the confirmation.</returns>
    public async Task<bool> ConfirmReplicaAsync(StoredChunk chunk, string replicaNodeId, CancellationToken ct)
    {
        try
        {
            var reply = await cluster.ConfirmReplicaAsync(
                new ConfirmReplicaRequest { NodeId = nodeId, ChunkId = chunk.Id.ToString(), ReplicaNodeId = replicaNodeId },
                deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);
            if (reply.Errno == 0)
                return true;
            logger.LogWarning("ConfirmReplica {ChunkId} on {Replica} returned errno {Errno}", chunk.Id, replicaNodeId, reply.Errno);
        }
        catch (RpcException ex)
        {
            logger.LogWarning("ConfirmReplica {ChunkId} on {Replica} failed: {Status}", chunk.Id, replicaNodeId, ex.Status);
        }
        return false;
    }

    private RegisterChunkRequest RegisterRequest(StoredChunk chunk, ulong ownerIno, uint goal)
    {
        var request = new RegisterChunkRequest
        {
            NodeId = nodeId, ChunkId = chunk.Id.ToString(), Size = (ulong)chunk.Size, Checksum = chunk.Header.Checksum,
            OwnerIno = ownerIno, Goal = goal,
        };
        request.BlockChecksums.AddRange(chunk.Header.BlockChecksums);
        return request;
    }

    public long Capacity() => store.EffectiveCapacity();
}
