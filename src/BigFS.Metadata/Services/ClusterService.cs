using BigFS.Metadata.Logic;
using BigFS.Protocol;
using Grpc.Core;

namespace BigFS.Metadata.Services;

/// <summary>The Cluster gRPC service (storage nodes and admin tools): a thin adapter over <see cref="ClusterLogic"/>.</summary>
public sealed class ClusterService(ClusterLogic cluster) : Cluster.ClusterBase
{
    private const int MaxInventoryEntries = 10_000_000;

    public override async Task<RegisterNodeReply> RegisterNode(RegisterNodeRequest request, ServerCallContext context)
    {
        try
        {
            return await cluster.RegisterNodeAsync(request);
        }
        catch (ArgumentException ex)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, ex.Message));
        }
    }

    public override Task<HeartbeatReply> Heartbeat(HeartbeatRequest request, ServerCallContext context) =>
        Task.FromResult(cluster.Heartbeat(request));

    public override async Task<InventoryReply> ReportInventory(IAsyncStreamReader<InventoryBatch> requestStream, ServerCallContext context)
    {
        var reply = new InventoryReply();
        long seen = 0;
        var nodeId = "";
        await foreach (var batch in requestStream.ReadAllAsync(context.CancellationToken))
        {
            seen += batch.Chunks.Count;
            if (seen > MaxInventoryEntries)
                throw new RpcException(new Status(StatusCode.ResourceExhausted, "inventory too large"));
            if (batch.NodeId.Length > 0)
                nodeId = batch.NodeId;   // later batches may leave it out
            reply.DeleteChunkIds.AddRange(cluster.ReconcileInventory(nodeId, batch.Chunks));
        }
        // A deletion is irreversible: what made the chunk deletable (an unlink, a dropped copy)
        // must be on disk before the node acts on it.
        if (reply.DeleteChunkIds.Count > 0)
            await cluster.SyncAsync();
        return reply;
    }

    public override Task<RegisterChunkReply> RegisterChunk(RegisterChunkRequest request, ServerCallContext context) =>
        cluster.RegisterChunkAsync(request);

    public override Task<ConfirmReplicaReply> ConfirmReplica(ConfirmReplicaRequest request, ServerCallContext context) =>
        cluster.ConfirmReplicaAsync(request);

    public override async Task<ReportCorruptChunkReply> ReportCorruptChunk(ReportCorruptChunkRequest request, ServerCallContext context)
    {
        await cluster.ReportBadCopyAsync(request.ChunkId, request.NodeId, request.Reason);
        return new ReportCorruptChunkReply();
    }

    public override Task<RemoveNodeReply> RemoveNode(RemoveNodeRequest request, ServerCallContext context) =>
        cluster.RemoveNodeAsync(request.NodeId, request.Force);

    public override Task<ClusterStatusReply> GetClusterStatus(ClusterStatusRequest request, ServerCallContext context) =>
        Task.FromResult(cluster.Status());
}
