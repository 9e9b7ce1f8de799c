using System.Collections.Concurrent;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;

namespace BigFS.Protocol.Bulk;

/// <summary>
/// Client side of the bulk data protocol: a small pool of persistent connections per node
/// address, and the chunk operations. Failures surface as <see cref="RpcException"/>s with the
/// same status codes the gRPC ChunkStore uses (transport failures are Unavailable, a timeout
/// DeadlineExceeded), so callers keep one error-handling path for both transports.
/// </summary>
public sealed class BulkClient : IDisposable
{
    public const int MaxIdlePerAddress = 8;
    private readonly ConcurrentDictionary<string, ConcurrentQueue<BulkConnection>> _idle = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    /// <summary>
    /// Reads whole 64 KiB blocks covering [offset, offset+length) (length 0 = to the end of the
    /// chunk). Each block is received into an array from <paramref name="rentBlock"/> (asked
    /// for its length, at most 64 KiB) and handed to <paramref name="onBlock"/> with its offset
    /// in the chunk, its length and its stored checksum; the callback owns the array from then
    /// on. An exception from the callback aborts the read and propagates as is.
    /// </summary>
    public async Task ReadChunkAsync(string address, string chunkId, long offset, long length, TimeSpan timeout,
        Func<int, byte[]> rentBlock, Action<long, byte[], int, ulong> onBlock, CancellationToken ct)
    {
        var request = new ReadChunkRequest { ChunkId = chunkId, Offset = (ulong)offset, Length = (ulong)length }.ToByteArray();
        await RunAsync(address, timeout, ct, async (connection, token) =>
        {
            var id = connection.NextRequestId();
            await connection.SendHeaderAsync(new BulkFrameHeader(BulkOp.ReadChunk, StatusCode.OK, id, request.Length, 0), request, token);
            var reply = await connection.ReceiveReplyAsync(BulkOp.ReadChunk, id, token);
            var blocks = reply.MetaLength / 8;
            if (reply.MetaLength % 8 != 0 || blocks == 0 || reply.DataLength <= (long)(blocks - 1) * BlockSize || reply.DataLength > (long)blocks * BlockSize)
                throw new BulkProtocolException($"read reply with {reply.MetaLength} checksum bytes and {reply.DataLength} data bytes");
            var checksums = new byte[reply.MetaLength];
            await connection.ReceiveExactlyAsync(checksums, token);
            var blockOffset = offset / BlockSize * BlockSize;
            for (int i = 0, left = reply.DataLength; i < blocks; i++, blockOffset += BlockSize)
            {
                var size = Math.Min(BlockSize, left);
                var array = rentBlock(size);
                if (array.Length < size)
                    throw new ArgumentException("rentBlock returned a short array");
                await connection.ReceiveExactlyAsync(array.AsMemory(0, size), token);
                left -= size;
                onBlock(blockOffset, array, size, BitConverter.ToUInt64(checksums, i * 8));
            }
            return true;
        });
    }

    private const int BlockSize = 64 * 1024;

    /// <summary>
    /// Starts a WriteChunk or StoreReplica: the header goes out now, then exactly
    /// <c>header.Size</c> bytes through the returned upload, then <see cref="BulkUpload.CompleteAsync"/>.
    /// </summary>
    public async Task<BulkUpload> BeginUploadAsync(string address, BulkOp op, ChunkHeader header, TimeSpan timeout, CancellationToken ct)
    {
        if (op is not (BulkOp.WriteChunk or BulkOp.StoreReplica))
            throw new ArgumentOutOfRangeException(nameof(op));
        if (header.Size > BulkFrameHeader.MaxDataBytes)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"chunk size {header.Size} exceeds {BulkFrameHeader.MaxDataBytes}"));
        var meta = header.ToByteArray();
        var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timer.CancelAfter(timeout);
        BulkConnection? connection = null;
        try
        {
            connection = await RentAsync(address, timer.Token);
            var id = connection.NextRequestId();
            await connection.SendHeaderAsync(new BulkFrameHeader(op, StatusCode.OK, id, meta.Length, (int)header.Size), meta, timer.Token);
            return new BulkUpload(this, address, connection, op, id, (long)header.Size, timer, ct);
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            connection?.Dispose();
            timer.Dispose();
            throw Translate(ex, ct, address);
        }
    }

    internal async Task<T> RunAsync<T>(string address, TimeSpan timeout, CancellationToken ct, Func<BulkConnection, CancellationToken, Task<T>> exchange)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timer.CancelAfter(timeout);
        BulkConnection? connection = null;
        try
        {
            connection = await RentAsync(address, timer.Token);
            var result = await exchange(connection, timer.Token);
            Return(address, connection);
            return result;
        }
        catch (Exception ex)
        {
            connection?.Dispose(); // mid-exchange: its state is unknown
            if (IsTransportFailure(ex))
                throw Translate(ex, ct, address);
            throw;
        }
    }

    internal static bool IsTransportFailure(Exception ex) =>
        ex is SocketException or IOException or ObjectDisposedException or OperationCanceledException;

    internal static Exception Translate(Exception ex, CancellationToken callerToken, string address) => ex switch
    {
        _ when callerToken.IsCancellationRequested => new OperationCanceledException(callerToken),
        OperationCanceledException or ObjectDisposedException => new RpcException(new Status(StatusCode.DeadlineExceeded, $"bulk call to {address} timed out")),
        BulkProtocolException => new RpcException(new Status(StatusCode.Internal, $"bulk protocol error from {address}: {ex.Message}")),
        _ => new RpcException(new Status(StatusCode.Unavailable, $"bulk connection to {address} failed: {ex.Message}")),
    };

    private async ValueTask<BulkConnection> RentAsync(string address, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_idle.TryGetValue(address, out var queue))
        {
            while (queue.TryDequeue(out var idle))
            {
                if (idle.IsReusable)
                    return idle;
                idle.Dispose();
            }
        }
        return await BulkConnection.ConnectAsync(address, ct);
    }

    internal void Return(string address, BulkConnection connection)
    {
        var queue = _idle.GetOrAdd(address, _ => new ConcurrentQueue<BulkConnection>());
        if (_disposed || queue.Count >= MaxIdlePerAddress)
        {
            connection.Dispose();
            return;
        }
        queue.Enqueue(connection);
        if (_disposed && queue.TryDequeue(out var late))
            late.Dispose();
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var queue in _idle.Values)
            while (queue.TryDequeue(out var connection))
                connection.Dispose();
    }
}
