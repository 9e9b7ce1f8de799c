using System.Buffers;
using BigFS.Core;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// Copies a local chunk to another node (its StoreReplica), 1 MiB frames read into a pooled
/// buffer and sent without copying. Each block is verified before it leaves, so a corrupt
/// local copy is never propagated.
/// </summary>
public sealed class ReplicaPusher(GrpcChannels channels, Func<StoredChunk, string, Task> onCorrupt, ILogger logger)
{
    public async Task PushAsync(StoredChunk chunk, NodeTarget target, CancellationToken ct)
    {
        var client = new ChunkStore.ChunkStoreClient(channels.Get(target.Address));
        using var call = client.StoreReplica(deadline: DateTime.UtcNow.AddMinutes(2), cancellationToken: ct);
        await call.RequestStream.WriteAsync(new ChunkUpload
        {
            Header = new ChunkHeader { ChunkId = chunk.Id.ToString(), Size = (ulong)chunk.Size, Checksum = chunk.Header.Checksum },
        }, ct);
        // Read a span of whole blocks per syscall, verify each block, send the span as one frame.
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
                // The whole verified span is one frame, serialized before WriteAsync completes, so the buffer is reusable after it.
                await call.RequestStream.WriteAsync(new ChunkUpload { Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, n)) }, ct);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        await call.RequestStream.CompleteAsync();
        await call.ResponseAsync;
        logger.LogDebug("Copied chunk {ChunkId} to {Node} ({Address})", chunk.Id, target.NodeId, target.Address);
    }

}
