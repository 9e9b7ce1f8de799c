using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// A new chunk's way to durability on several nodes. Once its data is complete and verified
/// here (sealed, not yet durable), three things run at once: this node makes its copy durable
/// (fsync, rename, directory fsync), the chunk is registered with the metadata server (which
/// designates the replicas, PENDING), and as soon as the replicas are known the data is copied
/// to them from the staged file (each copy confirmed — AVAILABLE — once the replica acked it
/// durable). The writer is answered when this copy is durable and enough copies in all are;
/// the rest finish in the background. Durable copies thus happen side by side, not one after
/// another.
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
    /// <summary>Completes the upload in <paramref name="writer"/> (received, not yet sealed) as described above; the caller disposes the writer afterwards.</summary>
    public async Task<WriteChunkReply> StoreAndReplicateAsync(ChunkFileWriter writer, ChunkHeader header, CancellationToken ct)
    {
        var staged = new StoredChunk(writer.Id, writer.Seal(), writer.StagedPath);
        // Opened before the rename, so the copies can read the data while it is made durable here
        // (not needed when the data is still in the writer's memory).
        var source = writer.IsDirect ? null
            : File.OpenHandle(staged.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);
        // Not cancellable: once started, the local copy is completed (or fails) as a whole.
        var local = Task.Run(() => writer.CompleteAsync(CancellationToken.None));
        try
        {
            RegisterChunkReply registration;
            try
            {
                registration = await agent.RegisterChunkAsync(staged, header.OwnerIno, header.Goal, ct);
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException)
            {
                await local;   // kept and retried by the agent once it is here
                throw new ChunkRejectedException(StatusCode.Unavailable,
                    $"chunk {staged.Id} is stored but could not be registered with the metadata server ({ex.Message})");
            }

            var targets = registration.Replicas.Where(t => t.NodeId != nodeId).ToList();
            var image = pusher.ShareStaged(staged, targets, source, writer);
            StoredChunk pushed = staged;
            if (image is not null)
            {
                try
                {
                    await image.GetAsync(ct);   // read through the handle now; the pushes share it
                }
                catch (Exception ex) when (ex is ChunkRejectedException or IOException)
                {
                    // Each push sees the failure and counts as not durable.
                }
            }
            else
            {
                pushed = await local;   // the pushes read the published file
                image = pusher.ShareFor(pushed, targets);
            }
            source?.Dispose();
            var reply = await ReplicateAndCountAsync(pushed, header, targets, image, ct);
            await local;   // this copy counts only once it is durable
            return reply;
        }
        finally
        {
            source?.Dispose();
            // The caller disposes the writer next: never while it is still completing.
            if (!local.IsCompleted)
                await Task.WhenAny(local);
        }
    }

    /// <summary>Copies to the targets (in the background), returns once enough copies in all — this one counted — are durable.</summary>
    private async Task<WriteChunkReply> ReplicateAndCountAsync(StoredChunk chunk, ChunkHeader header, List<NodeTarget> targets, SharedChunkImage? image, CancellationToken ct)
    {
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
        var full = 0;   // copies refused for want of space: the writer's ENOSPC if they are why too few copies were made
        foreach (var target in targets)
        {
            // Not bound to the writer's call: the remaining copies finish after the reply.
            background.Run($"replicate {chunk.Id} to {target.NodeId}", async stopping =>
            {
                var ok = false;
                try
                {
                    ok = await CopyAndConfirmAsync(chunk, target, image, stopping, () => Interlocked.Increment(ref full));
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
            {
                var outOfSpace = Volatile.Read(ref full);
                throw new ChunkRejectedException(outOfSpace > 0 ? StatusCode.ResourceExhausted : StatusCode.Unavailable,
                    $"chunk {chunk.Id}: only {durable} of {wanted} copies became durable{(outOfSpace > 0 ? $" ({outOfSpace} replica(s) out of space)" : "")}");
            }
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

    private async Task<bool> CopyAndConfirmAsync(StoredChunk chunk, NodeTarget target, SharedChunkImage? image, CancellationToken ct, Action? outOfSpace = null)
    {
        try
        {
            await pusher.PushAsync(chunk, target, image, ct);
        }
        catch (Exception ex) when (ex is RpcException or ChunkRejectedException or IOException)
        {
            if (ex is RpcException { StatusCode: StatusCode.ResourceExhausted } or ChunkRejectedException { Code: StatusCode.ResourceExhausted })
                outOfSpace?.Invoke();
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
