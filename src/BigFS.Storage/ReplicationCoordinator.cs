using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// After a chunk is durable here: registration, then copies to the designated replicas in
/// parallel (each confirmed once the replica acked), answering the writer as soon as enough
/// copies are durable and finishing the rest in the background.
/// </summary>
public sealed class ReplicationCoordinator(
    ClusterAgent agent,
    ReplicaPusher pusher,
    BackgroundWork background,
    string nodeId,
    string address,
    string dataAddress,
    int defaultMinCopies,
    ILogger logger)
{
    public async Task<WriteChunkReply> RegisterAndReplicateAsync(StoredChunk chunk, ChunkHeader header, CancellationToken ct)
    {
        RegisterChunkReply registration;
        try
        {
            registration = await agent.RegisterChunkAsync(chunk, header.OwnerIno, header.Goal, ct);
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException)
        {
            throw new ChunkRejectedException(StatusCode.Unavailable,
                $"chunk {chunk.Id} is stored but could not be registered with the metadata server ({ex.Message})");
        }

        var targets = registration.Replicas.Where(t => t.NodeId != nodeId).ToList();
        var wanted = header.MinCopies > 0 ? (int)header.MinCopies : defaultMinCopies;
        if (header.Goal > 0)
            wanted = Math.Min(wanted, (int)header.Goal);
        wanted = Math.Clamp(wanted, 1, 1 + targets.Count);

        var copies = new WriteChunkReply();
        copies.Copies.Add(new ChunkCopy { NodeId = nodeId, Address = address, DataAddress = dataAddress, Status = CopyStatus.Available, Primary = true });
        var durable = 1;
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (durable >= wanted)
            enough.TrySetResult();
        var outstanding = targets.Count;
        var image = pusher.ShareFor(chunk, targets);
        foreach (var target in targets)
        {
            // Not bound to the writer's call: the remaining copies finish after the reply.
            background.Run($"replicate {chunk.Id} to {target.NodeId}", async stopping =>
            {
                var ok = false;
                try
                {
                    ok = await CopyAndConfirmAsync(chunk, target, image, stopping);
                }
                finally
                {
                    // Always counted, so the writer never waits on a copy that was cancelled.
                    lock (copies)
                    {
                        if (ok)
                        {
                            durable++;
                            copies.Copies.Add(new ChunkCopy
                            { NodeId = target.NodeId, Address = target.Address, DataAddress = target.DataAddress, Status = CopyStatus.Available });
                        }
                        outstanding--;
                        if (durable >= wanted || outstanding == 0)
                            enough.TrySetResult();
                    }
                }
            });
        }
        if (targets.Count == 0)
            enough.TrySetResult();

        await enough.Task.WaitAsync(ct);
        lock (copies)
        {
            if (durable < wanted)
                throw new ChunkRejectedException(StatusCode.Unavailable, $"chunk {chunk.Id}: only {durable} of {wanted} copies became durable");
            copies.DurableCopies = (uint)durable;
            return copies.Clone();
        }
    }

    /// <summary>Copies to each target in parallel; returns the node ids whose copy was acked and confirmed.</summary>
    public async Task<List<string>> ReplicateAsync(StoredChunk chunk, IEnumerable<NodeTarget> targets, CancellationToken ct)
    {
        var list = targets.Where(t => t.NodeId != nodeId).ToList();
        var image = pusher.ShareFor(chunk, list);
        var results = await Task.WhenAll(list.Select(t => CopyAndConfirmAsync(chunk, t, image, ct)));
        return list.Where((_, i) => results[i]).Select(t => t.NodeId).ToList();
    }

    private async Task<bool> CopyAndConfirmAsync(StoredChunk chunk, NodeTarget target, SharedChunkImage? image, CancellationToken ct)
    {
        try
        {
            await pusher.PushAsync(chunk, target, image, ct);
        }
        catch (Exception ex) when (ex is RpcException or ChunkRejectedException or IOException)
        {
            logger.LogWarning("Copying chunk {ChunkId} to {Node} at {Address} failed: {Error}", chunk.Id, target.NodeId, target.Address, ex.Message);
            return false;
        }
        finally
        {
            if (image is not null)
                await image.ReleaseAsync();
        }
        // The replica is durable now; a failed confirmation leaves it PENDING for the metadata server to sort out.
        await agent.ConfirmReplicaAsync(chunk, target.NodeId, ct);
        return true;
    }
}
