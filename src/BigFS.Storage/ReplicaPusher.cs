using System.Buffers;
using BigFS.Core;
using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// Copies a local chunk to another node (its StoreReplica): over the target's bulk data
/// listener when it has one, else over gRPC. 1 MiB spans read into a pooled buffer and sent
/// without copying; each block is verified before it leaves, so a corrupt local copy is never
/// propagated.
/// </summary>
public sealed class ReplicaPusher(GrpcChannels channels, BulkClient bulk, Func<StoredChunk, string, Task> onCorrupt, ILogger logger)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// A shared image when several bulk pushes of a chunk small enough to hold in memory are
    /// about to start (the file is then read and verified once for all of them); else null.
    /// </summary>
    public SharedChunkImage? ShareFor(StoredChunk chunk, IReadOnlyCollection<NodeTarget> targets) =>
        targets.Count(t => t.DataAddress.Length > 0) >= 2 && chunk.Size <= VerifiedChunkImage.MaxSharedBytes
            ? new SharedChunkImage(chunk, targets.Count, onCorrupt)
            : null;

    /// <summary>
    /// For a chunk not yet published: an image for pushes to every target, when all of them
    /// take bulk pushes and the chunk is small enough to hold in memory; else null (the pushes
    /// must wait for the published file). The image is the data still in
    /// <paramref name="writer"/>'s memory if it has it, else read through
    /// <paramref name="source"/> (the staged file).
    /// </summary>
    public SharedChunkImage? ShareStaged(StoredChunk staged, IReadOnlyCollection<NodeTarget> targets, Microsoft.Win32.SafeHandles.SafeFileHandle? source, ChunkFileWriter writer)
    {
        if (targets.Count == 0 || !targets.All(t => t.DataAddress.Length > 0) || staged.Size > VerifiedChunkImage.MaxSharedBytes)
            return null;
        return writer.ShareReceived(targets.Count) is { } received
            ? SharedChunkImage.Loaded(staged, received, targets.Count)
            : new SharedChunkImage(staged, targets.Count, onCorrupt, source);
    }

    /// <param name="image">From <see cref="ShareFor"/>: used for a bulk push (the caller releases it).</param>
    public async Task PushAsync(StoredChunk chunk, NodeTarget target, SharedChunkImage? image, CancellationToken ct)
    {
        var header = new ChunkHeader { ChunkId = chunk.Id.ToString(), Size = (ulong)chunk.Size, Checksum = chunk.Header.Checksum };
        if (target.DataAddress.Length > 0 && image is not null)
        {
            var verified = await image.GetAsync(ct);
            await using var upload = await bulk.BeginUploadAsync(target.DataAddress, BulkOp.StoreReplica, header, Timeout, ct);
            for (var at = 0; at < verified.Data.Length; at += DataFrames.MaxUploadFrameBytes)
                await upload.SendAsync(verified.Data.Slice(at, Math.Min(DataFrames.MaxUploadFrameBytes, verified.Data.Length - at)));
            await upload.CompleteAsync();
        }
        else if (target.DataAddress.Length > 0)
        {
            await using var upload = await bulk.BeginUploadAsync(target.DataAddress, BulkOp.StoreReplica, header, Timeout, ct);
            await SendVerifiedSpansAsync(chunk, span => upload.SendAsync(span), ct);
            await upload.CompleteAsync();
        }
        else
        {
            var client = new ChunkStore.ChunkStoreClient(channels.Get(target.Address));
            using var call = client.StoreReplica(deadline: DateTime.UtcNow.Add(Timeout), cancellationToken: ct);
            await call.RequestStream.WriteAsync(new ChunkUpload { Header = header }, ct);
            // The span is serialized before WriteAsync completes, so the buffer is reusable after it.
            await SendVerifiedSpansAsync(chunk, span => new ValueTask(call.RequestStream.WriteAsync(new ChunkUpload { Data = UnsafeByteOperations.UnsafeWrap(span) }, ct)), ct);
            await call.RequestStream.CompleteAsync();
            await call.ResponseAsync;
        }
        logger.LogDebug("Copied chunk {ChunkId} to {Node} ({Address})", chunk.Id, target.NodeId, target.DataAddress.Length > 0 ? target.DataAddress : target.Address);
    }

    /// <summary>Reads a span of whole blocks per syscall, verifies each block, hands the span to <paramref name="send"/> (which must be done with it when it completes).</summary>
    private async Task SendVerifiedSpansAsync(StoredChunk chunk, Func<ReadOnlyMemory<byte>, ValueTask> send, CancellationToken ct)
    {
        var span = (int)Math.Min(Math.Min(LocalChunkStore.ReadSpanBytes, DataFrames.MaxUploadFrameBytes), (long)chunk.Header.BlockChecksums.Length * ChunkChecksum.BlockSize);
        var buffer = ArrayPool<byte>.Shared.Rent(span);
        try
        {
            using var handle = LocalChunkStore.OpenForRead(chunk);
            for (var block = 0; block < chunk.Header.BlockChecksums.Length;)
            {
                var n = await LocalChunkStore.ReadAsync(handle, chunk, (long)block * ChunkChecksum.BlockSize, buffer.AsMemory(0, span), ct);
                for (var at = 0; at < n; at += ChunkChecksum.BlockSize, block++)
                {
                    if (ChunkChecksum.Compute(buffer.AsSpan(at, Math.Min(ChunkChecksum.BlockSize, n - at))) != chunk.Header.BlockChecksums[block])
                    {
                        await onCorrupt(chunk, $"block {block} checksum mismatch while replicating");
                        throw new ChunkRejectedException(StatusCode.DataLoss, $"chunk {chunk.Id} is corrupt here (block {block})");
                    }
                }
                await send(buffer.AsMemory(0, n));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
