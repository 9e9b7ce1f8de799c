using System.Buffers;
using System.Runtime.CompilerServices;
using BigFS.Core;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>The ChunkStore gRPC service: validates the wire input and delegates.</summary>
public sealed class ChunkStoreService(
    LocalChunkStore store,
    Task<ReplicationCoordinator> replicationReady,
    NodeTraffic traffic,
    ILogger<ChunkStoreService> logger) : ChunkStore.ChunkStoreBase
{
    private static readonly WriteOptions BufferedWrite = new(WriteFlags.BufferHint);

    // The coordinator needs the bound address, known only once the server listens.
    public override Task<WriteChunkReply> WriteChunk(IAsyncStreamReader<ChunkUpload> requestStream, ServerCallContext context) =>
        Guard(async () =>
        {
            traffic.GrpcWrite();
            var (header, writer) = await ReceiveAsync(requestStream, context.CancellationToken);
            await using (writer)
            {
                var replication = await replicationReady;
                return await replication.StoreAndReplicateAsync(writer, header, context.CancellationToken);
            }
        });

    public override Task<StoreReplicaReply> StoreReplica(IAsyncStreamReader<ChunkUpload> requestStream, ServerCallContext context) =>
        Guard(async () =>
        {
            traffic.GrpcReplica();
            var (_, writer) = await ReceiveAsync(requestStream, context.CancellationToken);
            await using (writer)
                await writer.CompleteAsync(context.CancellationToken);
            return new StoreReplicaReply();
        });

    public override async Task ReadChunk(ReadChunkRequest request, IServerStreamWriter<ChunkBlock> responseStream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        await Guard(async () =>
        {
            traffic.GrpcRead();
            var (chunk, first, last) = ServableRange.Resolve(store, request);
            // Read a span of whole blocks per syscall; send it as one message per block.
            var span = (int)Math.Min(LocalChunkStore.ReadSpanBytes, (long)(last - first + 1) * ChunkChecksum.BlockSize);
            var buffer = ArrayPool<byte>.Shared.Rent(span);
            try
            {
                using var handle = LocalChunkStore.OpenForRead(chunk);
                for (var block = first; block <= last;)
                {
                    if (chunk.IsCorrupt)
                        throw new ChunkRejectedException(StatusCode.DataLoss, $"chunk {chunk.Id} is corrupt on this node");
                    var spanOffset = (long)block * ChunkChecksum.BlockSize;
                    var wanted = (int)Math.Min(span, (long)(last - block + 1) * ChunkChecksum.BlockSize);
                    var n = await LocalChunkStore.ReadAsync(handle, chunk, spanOffset, buffer.AsMemory(0, wanted), ct);
                    for (var at = 0; at < n; at += ChunkChecksum.BlockSize, block++)
                    {
                        // One flush (HTTP/2 DATA frame, socket send) per span rather than per block.
                        responseStream.WriteOptions = at + ChunkChecksum.BlockSize < n ? BufferedWrite : null;
                        // Serialized into the response before WriteAsync completes, so the buffer is reused safely.
                        await responseStream.WriteAsync(new ChunkBlock
                        {
                            Offset = (ulong)(spanOffset + at),
                            Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(at, Math.Min(ChunkChecksum.BlockSize, n - at))),
                            Checksum = chunk.Header.BlockChecksums[block],
                        }, ct);
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            return true;
        });
    }

    public override Task<DeleteChunkReply> DeleteChunk(DeleteChunkRequest request, ServerCallContext context) =>
        Guard(() =>
        {
            var id = LocalChunkStore.ParseId(request.ChunkId);
            if (!store.Delete(id))
                throw new ChunkRejectedException(StatusCode.NotFound, $"chunk {id} is not on this node");
            logger.LogDebug("Deleted chunk {ChunkId}", id);
            return Task.FromResult(new DeleteChunkReply());
        });

    public override Task<ReplicateChunkReply> ReplicateChunk(ReplicateChunkRequest request, ServerCallContext context) =>
        Guard(async () =>
        {
            var chunk = store.GetServable(LocalChunkStore.ParseId(request.ChunkId));
            var replication = await replicationReady;
            var confirmed = await replication.ReplicateAsync(chunk, request.Targets, context.CancellationToken);
            var reply = new ReplicateChunkReply();
            reply.ConfirmedNodeIds.AddRange(confirmed);
            return reply;
        });

    /// <summary>Receives an upload into a temporary file; the caller completes and disposes the writer.</summary>
    private async Task<(ChunkHeader Header, ChunkFileWriter Writer)> ReceiveAsync(IAsyncStreamReader<ChunkUpload> stream, CancellationToken ct)
    {
        if (!await stream.MoveNext(ct) || stream.Current.PartCase != ChunkUpload.PartOneofCase.Header)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, "an upload must start with a header");
        var header = stream.Current.Header;
        var id = LocalChunkStore.ParseId(header.ChunkId);
        if (header.Size > LocalChunkStore.MaxChunkSize)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"chunk size {header.Size} exceeds {LocalChunkStore.MaxChunkSize}");
        var writer = await store.ReceiveAsync(id, (long)header.Size, header.Checksum, DataFrames(stream, ct), ct);
        return (header, writer);
    }

    private static async IAsyncEnumerable<ReadOnlyMemory<byte>> DataFrames(IAsyncStreamReader<ChunkUpload> stream, [EnumeratorCancellation] CancellationToken ct)
    {
        while (await stream.MoveNext(ct))
        {
            if (stream.Current.PartCase != ChunkUpload.PartOneofCase.Data)
                throw new ChunkRejectedException(StatusCode.InvalidArgument, "only data frames may follow the header");
            yield return stream.Current.Data.Memory;
        }
    }

    /// <summary>Maps domain rejections and local I/O failures to gRPC statuses.</summary>
    private async Task<T> Guard<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (ChunkRejectedException ex)
        {
            logger.LogDebug("Rejected: {Code} {Message}", ex.Code, ex.Message);
            throw ex.ToRpcException();
        }
        catch (IOException ex)
        {
            logger.LogError(ex, "Local I/O error");
            throw new RpcException(new Status(StatusCode.Internal, "storage I/O error: " + ex.Message));
        }
    }
}
