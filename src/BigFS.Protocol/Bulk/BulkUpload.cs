using Grpc.Core;

namespace BigFS.Protocol.Bulk;

/// <summary>
/// A WriteChunk/StoreReplica in progress on one bulk connection: exactly the announced number
/// of bytes, in order, then <see cref="CompleteAsync"/> for the node's reply. Disposed before
/// completing, the connection is closed (the node then drops the partial upload).
/// </summary>
public sealed class BulkUpload : IAsyncDisposable
{
    private readonly BulkClient _client;
    private readonly string _address;
    private readonly BulkConnection _connection;
    private readonly BulkOp _op;
    private readonly ulong _requestId;
    private readonly long _size;
    private readonly CancellationTokenSource _timer;
    private readonly CancellationToken _callerToken;
    private long _sent;
    private bool _finished;

    internal BulkUpload(BulkClient client, string address, BulkConnection connection, BulkOp op, ulong requestId, long size,
        CancellationTokenSource timer, CancellationToken callerToken)
    {
        _client = client;
        _address = address;
        _connection = connection;
        _op = op;
        _requestId = requestId;
        _size = size;
        _timer = timer;
        _callerToken = callerToken;
    }

    public ValueTask SendAsync(ReadOnlyMemory<byte> data) => Guard(data.Length, () => _connection.SendAsync(data, _timer.Token));

    /// <summary>Several buffers in one gathered send; they are not touched after the call completes.</summary>
    public ValueTask SendAsync(IList<ArraySegment<byte>> segments)
    {
        long bytes = 0;
        foreach (var s in segments)
            bytes += s.Count;
        return Guard(bytes, () => _connection.SendAsync(segments, _timer.Token));
    }

    private async ValueTask Guard(long bytes, Func<ValueTask> send)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (_sent + bytes > _size)
            throw new InvalidOperationException($"upload of {_size} bytes: {_sent + bytes} bytes sent");
        try
        {
            await send();
            _sent += bytes;
        }
        catch (Exception ex) when (BulkClient.IsTransportFailure(ex))
        {
            await DisposeAsync();
            throw BulkClient.Translate(ex, _callerToken, _address);
        }
    }

    /// <summary>Waits for the node's reply: its meta bytes on success, the node's status as an RpcException otherwise.</summary>
    public async Task<byte[]> CompleteAsync()
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (_sent != _size)
            throw new InvalidOperationException($"upload of {_size} bytes completed after {_sent}");
        try
        {
            var reply = await _connection.ReceiveReplyAsync(_op, _requestId, _timer.Token);
            if (reply.DataLength != 0)
                throw new BulkProtocolException($"{_op} reply carries {reply.DataLength} data bytes");
            var meta = new byte[reply.MetaLength];
            await _connection.ReceiveExactlyAsync(meta, _timer.Token);
            _finished = true;
            _timer.Dispose();
            _client.Return(_address, _connection);
            return meta;
        }
        catch (RpcException)
        {
            await DisposeAsync();
            throw;
        }
        catch (Exception ex) when (BulkClient.IsTransportFailure(ex))
        {
            await DisposeAsync();
            throw BulkClient.Translate(ex, _callerToken, _address);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (!_finished)
        {
            _finished = true;
            _connection.Dispose();
            _timer.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
