using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using BigFS.Core;
using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// The node's bulk data listener (a Kestrel endpoint next to gRPC): framed requests
/// (<see cref="BulkFrameHeader"/>) one at a time per connection. A thin transport over the same
/// domain code as <see cref="ChunkStoreService"/>: <see cref="LocalChunkStore"/> for storing and
/// serving, <see cref="ReplicationCoordinator"/> for register + replicate. Chunk data moves
/// between the socket pipe's pooled buffers and the file without intermediate copies.
/// A rejected request gets an error reply; its unread data is drained so the connection stays
/// usable. A broken frame header gets an error reply and the connection is closed.
/// </summary>
public sealed class BulkConnectionHandler(
    LocalChunkStore store,
    Task<ReplicationCoordinator> replicationReady,
    NodeTraffic traffic,
    ILogger<BulkConnectionHandler> logger) : ConnectionHandler
{
    /// <summary>Upload data is written to the file in pieces of at least this much (one pwritev each), or the rest of the chunk.</summary>
    private const int WriteBatchBytes = 512 * 1024;

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromMinutes(2);

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        // Graceful stop: idle connections end at once, a request in progress finishes first.
        var closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        var raw = new byte[BulkFrameHeader.Size];
        try
        {
            while (true)
            {
                ReadResult read;
                try
                {
                    read = await input.ReadAtLeastAsync(BulkFrameHeader.Size, closeRequested);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                var buffer = read.Buffer;
                if (buffer.Length < BulkFrameHeader.Size)
                    return; // closed between requests (or mid-header)
                buffer.Slice(0, BulkFrameHeader.Size).CopyTo(raw);
                input.AdvanceTo(buffer.GetPosition(BulkFrameHeader.Size));
                if (!BulkFrameHeader.TryDecode(raw, out var header, out var error))
                {
                    logger.LogDebug("Bulk connection {Connection}: bad frame header ({Error}); closing", connection.ConnectionId, error);
                    var requestId = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(8));
                    var op = Enum.IsDefined((BulkOp)raw[4]) ? (BulkOp)raw[4] : BulkOp.ReadChunk;
                    await ReplyErrorAsync(output, op, requestId, StatusCode.InvalidArgument, "bad frame header: " + error);
                    return;
                }
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
                timeout.CancelAfter(RequestTimeout);
                if (!await HandleAsync(input, output, header, timeout.Token))
                    return;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionResetException or IOException)
        {
            logger.LogDebug("Bulk connection {Connection} ended: {Error}", connection.ConnectionId, ex.Message);
        }
    }

    /// <returns>false when the connection cannot continue (the peer went away mid-frame).</returns>
    private async Task<bool> HandleAsync(PipeReader input, PipeWriter output, BulkFrameHeader header, CancellationToken ct)
    {
        var meta = new byte[header.MetaLength];
        if (!await ReadExactlyAsync(input, meta, ct))
            return false;
        var data = new DataReader(input, header.DataLength);
        try
        {
            switch (header.Op)
            {
                case BulkOp.ReadChunk:
                    if (header.DataLength != 0)
                        throw new ChunkRejectedException(StatusCode.InvalidArgument, "a read request carries no data");
                    traffic.BulkRead();
                    await ServeReadAsync(output, header.RequestId, Parse(ReadChunkRequest.Parser, meta), ct);
                    return true;
                case BulkOp.WriteChunk:
                {
                    traffic.BulkWrite();
                    var chunkHeader = Parse(ChunkHeader.Parser, meta);
                    WriteChunkReply reply;
                    await using (var writer = await ReceiveChunkAsync(chunkHeader, data, ct))
                    {
                        var replication = await replicationReady;
                        reply = await replication.StoreAndReplicateAsync(writer, chunkHeader, ct);
                    }
                    await ReplyAsync(output, header.Op, header.RequestId, reply.ToByteArray());
                    return true;
                }
                case BulkOp.StoreReplica:
                    traffic.BulkReplica();
                    await using (var writer = await ReceiveChunkAsync(Parse(ChunkHeader.Parser, meta), data, ct))
                        await writer.CompleteAsync(ct);
                    await ReplyAsync(output, header.Op, header.RequestId, []);
                    return true;
                default:
                    throw new ChunkRejectedException(StatusCode.InvalidArgument, $"unsupported op {header.Op}");
            }
        }
        catch (ConnectionUnusableException ex)
        {
            logger.LogDebug("Bulk {Op}: {Problem}; closing the connection", header.Op, ex.Message);
            return false;
        }
        catch (ChunkRejectedException ex)
        {
            logger.LogDebug("Bulk {Op} rejected: {Code} {Message}", header.Op, ex.Code, ex.Message);
            return await RejectAsync(output, header, data, ex.Code, ex.Message, ct);
        }
        catch (IOException ex)
        {
            logger.LogError(ex, "Local I/O error serving bulk {Op}", header.Op);
            return await RejectAsync(output, header, data, StatusCode.Internal, "storage I/O error: " + ex.Message, ct);
        }
    }

    private static T Parse<T>(MessageParser<T> parser, byte[] meta) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(meta);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"malformed {typeof(T).Name}: {ex.Message}");
        }
    }

    private async Task<bool> RejectAsync(PipeWriter output, BulkFrameHeader header, DataReader data, StatusCode code, string message, CancellationToken ct)
    {
        // Drain what the peer still sends of this frame so the next request starts on a frame boundary.
        if (!await data.DrainAsync(ct))
            return false;
        await ReplyErrorAsync(output, header.Op, header.RequestId, code, message);
        return true;
    }

    /// <summary>Validates the header, streams the frame's data into a <see cref="ChunkFileWriter"/> (the caller completes and disposes it).</summary>
    private async Task<ChunkFileWriter> ReceiveChunkAsync(ChunkHeader header, DataReader data, CancellationToken ct)
    {
        var id = LocalChunkStore.ParseId(header.ChunkId);
        if (header.Size > LocalChunkStore.MaxChunkSize)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"chunk size {header.Size} exceeds {LocalChunkStore.MaxChunkSize}");
        if ((ulong)data.Length != header.Size)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"the frame carries {data.Length} data bytes, the chunk header says {header.Size}");
        var writer = store.BeginStore(id, (long)header.Size, header.Checksum);
        try
        {
            var segments = new List<ReadOnlyMemory<byte>>(16);
            while (data.Remaining > 0)
            {
                var piece = await data.ReadAsync(WriteBatchBytes, ct);
                segments.Clear();
                foreach (var segment in piece)
                    segments.Add(segment);
                try
                {
                    writer.Append(segments);
                }
                finally
                {
                    data.Consume(piece);
                }
            }
            return writer;
        }
        catch
        {
            await writer.DisposeAsync();
            throw;
        }
    }

    /// <summary>Reply: checksums of the covered blocks as meta, then the blocks read from the file straight into the pipe's buffers.</summary>
    private async Task ServeReadAsync(PipeWriter output, ulong requestId, ReadChunkRequest request, CancellationToken ct)
    {
        var range = ServableRange.Resolve(store, request);
        var (chunk, first, last) = range;
        var (dataStart, dataEnd) = (range.DataStart, range.DataEnd);
        using var handle = LocalChunkStore.OpenForRead(chunk);

        var blocks = last - first + 1;
        var head = output.GetSpan(BulkFrameHeader.Size + 8 * blocks);
        new BulkFrameHeader(BulkOp.ReadChunk, StatusCode.OK, requestId, 8 * blocks, (int)(dataEnd - dataStart)).Encode(head);
        for (var i = 0; i < blocks; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(head[(BulkFrameHeader.Size + 8 * i)..], chunk.Header.BlockChecksums[first + i]);
        output.Advance(BulkFrameHeader.Size + 8 * blocks);
        // From here the reply is committed: a failure can only abort the connection (the client
        // then tries another copy, as after a broken gRPC stream).
        try
        {
            for (var at = dataStart; at < dataEnd;)
            {
                if (chunk.IsCorrupt)
                    throw new ConnectionUnusableException($"chunk {chunk.Id} found corrupt while being served");
                var wanted = (int)Math.Min(LocalChunkStore.ReadSpanBytes, dataEnd - at);
                // A hint above the pool's block size gets one pooled array of that size: one file read per MiB.
                var memory = output.GetMemory(wanted);
                var n = await LocalChunkStore.ReadAsync(handle, chunk, at, memory[..Math.Min(wanted, memory.Length)], ct);
                output.Advance(n);
                at += n;
                await output.FlushAsync(ct);
            }
        }
        catch (Exception ex) when (ex is not ConnectionUnusableException and not OperationCanceledException)
        {
            throw new ConnectionUnusableException($"reading chunk {chunk.Id} failed mid-reply: {ex.Message}");
        }
    }

    private static async ValueTask ReplyAsync(PipeWriter output, BulkOp op, ulong requestId, byte[] meta)
    {
        var span = output.GetSpan(BulkFrameHeader.Size + meta.Length);
        new BulkFrameHeader(op, StatusCode.OK, requestId, meta.Length, 0).Encode(span);
        meta.CopyTo(span[BulkFrameHeader.Size..]);
        output.Advance(BulkFrameHeader.Size + meta.Length);
        await output.FlushAsync();
    }

    private static async ValueTask ReplyErrorAsync(PipeWriter output, BulkOp op, ulong requestId, StatusCode code, string message)
    {
        var text = Encoding.UTF8.GetBytes(message.Length > 4096 ? message[..4096] : message);
        var span = output.GetSpan(BulkFrameHeader.Size + text.Length);
        new BulkFrameHeader(op, code, requestId, text.Length, 0).Encode(span);
        text.CopyTo(span[BulkFrameHeader.Size..]);
        output.Advance(BulkFrameHeader.Size + text.Length);
        await output.FlushAsync();
    }

    private static async ValueTask<bool> ReadExactlyAsync(PipeReader input, Memory<byte> destination, CancellationToken ct)
    {
        if (destination.IsEmpty)
            return true;
        var read = await input.ReadAtLeastAsync(destination.Length, ct);
        if (read.Buffer.Length < destination.Length)
        {
            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            return false;
        }
        read.Buffer.Slice(0, destination.Length).CopyTo(destination.Span);
        input.AdvanceTo(read.Buffer.GetPosition(destination.Length));
        return true;
    }

    /// <summary>The data part of the current frame, handed out in pipe buffers (valid until consumed).</summary>
    private sealed class DataReader(PipeReader input, int length)
    {
        public int Length { get; } = length;
        public long Remaining { get; private set; } = length;

        /// <summary>At least min(<paramref name="atLeast"/>, Remaining) bytes, at most Remaining.</summary>
        public async ValueTask<ReadOnlySequence<byte>> ReadAsync(int atLeast, CancellationToken ct)
        {
            var want = (int)Math.Min(atLeast, Remaining);
            var read = await input.ReadAtLeastAsync(want, ct);
            if (read.Buffer.Length < want)
            {
                input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                throw new ConnectionUnusableException($"the peer closed the connection with {Remaining} bytes of the frame unsent");
            }
            return read.Buffer.Slice(0, Math.Min(read.Buffer.Length, Remaining));
        }

        public void Consume(ReadOnlySequence<byte> piece)
        {
            Remaining -= piece.Length;
            input.AdvanceTo(piece.End);
        }

        /// <returns>false when the peer closed before the frame's end.</returns>
        public async ValueTask<bool> DrainAsync(CancellationToken ct)
        {
            try
            {
                while (Remaining > 0)
                    Consume(await ReadAsync(64 * 1024, ct));
                return true;
            }
            catch (ConnectionUnusableException)
            {
                return false;
            }
        }
    }

    /// <summary>The connection is not on a frame boundary any more (peer gone mid-frame, reply aborted): close it.</summary>
    private sealed class ConnectionUnusableException(string message) : Exception(message);
}
