using System.Buffers;
using System.IO.Hashing;
using BigFS.Core;
using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Client;

/// <summary>
/// Uploads new chunks: checksum, primary chosen by free space, WriteChunk with the buffered
/// pages as frames (wrapped, not copied), retried on other nodes with back-off. At most
/// MaxInFlightChunkUploads run at once.
/// </summary>
internal sealed class ChunkUploader(Namespace.NamespaceClient ns, GrpcChannels channels, BulkClient bulk, BigFsClientOptions options,
    NodeFailureMemory failures, ILogger logger)
{
    private static readonly TimeSpan UploadTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan NodeListTtl = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _slots = new(Math.Max(1, options.MaxInFlightChunkUploads));
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private IReadOnlyList<WritableNode> _nodes = [];
    private int _fullNodes;   // active nodes the last list left out for want of room
    private DateTime _nodesFetched = DateTime.MinValue;
    private int _inFlight;
    private int _maxInFlight;

    private int _failedAttempts;

    private static readonly TimeSpan FirstNodeWait = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxNodeWait = TimeSpan.FromSeconds(2);
    private readonly OutageClock _noNode = new();   // no node active since
    private int _waitingForNode;

    /// <summary>After an upload ends in ENOSPC, new writes fail at once for this long (not only at close).</summary>
    private static readonly TimeSpan FullMemory = TimeSpan.FromSeconds(2);
    private long _fullUntilTicks;

    /// <summary>
    /// True shortly after an upload found no node with room: write(2) then answers ENOSPC itself,
    /// as a local filesystem would, instead of buffering data whose close will fail (programs
    /// that ignore close's errors would lose it silently).
    /// </summary>
    public bool RecentlyFull => Environment.TickCount64 < Volatile.Read(ref _fullUntilTicks);

    public int MaxObservedInFlight => Volatile.Read(ref _maxInFlight);
    public int FailedAttempts => Volatile.Read(ref _failedAttempts);

    public sealed record Result(string ChunkId, IReadOnlyList<ChunkCopy> Copies);

    public async Task<Result> UploadAsync(IReadOnlyList<byte[]> pages, int length, ulong ino, CancellationToken ct)
    {
        var checksum = Checksum(pages, length);
        await _slots.WaitAsync(ct);
        var now = Interlocked.Increment(ref _inFlight);
        InterlockedMax(ref _maxInFlight, now);
        try
        {
            // Nodes that failed recently (for any chunk) are avoided while others are available.
            var failedNodes = failures.Suspects();
            Exception? last = null;
            var attempts = 1 + Math.Max(0, options.UploadRetries);
            for (var attempt = 0; attempt < attempts; attempt++)
            {
                if (attempt > 0)
                    await Task.Delay(TimeSpan.FromMilliseconds(50 * (1 << Math.Min(attempt, 6))), ct);
                if (await PickNodeAsync(failedNodes, refresh: attempt > 0, ct) is not { } node)
                {
                    if (Volatile.Read(ref _fullNodes) > 0)
                    {
                        Volatile.Write(ref _fullUntilTicks, Environment.TickCount64 + (long)FullMemory.TotalMilliseconds);
                        throw new BigFsException(Errno.ENOSPC, "every active storage node is full");
                    }
                    last = BigFsException.Io("no storage node is active");
                    continue;
                }
                // A fresh id per attempt: a failed attempt may still have stored (and registered) its chunk.
                var id = ChunkId.NewRandom().ToString();
                try
                {
                    var reply = node.DataAddress.Length > 0
                        ? await WriteChunkBulkAsync(node.DataAddress, id, pages, length, checksum, ino, ct)
                        : await WriteChunkAsync(node.Address, id, pages, length, checksum, ino, ct);
                    failures.Clear(node.NodeId);
                    return new Result(id, reply.Copies.ToList());
                }
                catch (RpcException ex) when (!ct.IsCancellationRequested)
                {
                    last = ex;
                    Interlocked.Increment(ref _failedAttempts);
                    failedNodes.Add(node.NodeId);
                    failures.Record(node.NodeId);
                    logger.LogWarning("Upload of chunk {ChunkId} ({Length} bytes) to {Node} failed: {Status}; attempt {Attempt} of {Attempts}",
                        id, length, node.Address, ex.Status, attempt + 1, attempts);
                }
            }
            if (last is RpcException { StatusCode: StatusCode.ResourceExhausted } full)
            {
                Volatile.Write(ref _fullUntilTicks, Environment.TickCount64 + (long)FullMemory.TotalMilliseconds);
                throw new BigFsException(Errno.ENOSPC, $"no storage node has room for the chunk: {full.Status.Detail}", full);
            }
            throw BigFsException.Io($"chunk upload failed after {attempts} attempts: {last?.Message}", last);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            _slots.Release();
        }
    }

    /// <summary>
    /// Over the node's bulk data listener: the buffered pages go out as they are, gathered
    /// 1 MiB per send call (no copy into frames).
    /// </summary>
    private async Task<WriteChunkReply> WriteChunkBulkAsync(string dataAddress, string id, IReadOnlyList<byte[]> pages, int length, ulong checksum, ulong ino, CancellationToken ct)
    {
        var header = new ChunkHeader { ChunkId = id, Size = (ulong)length, Checksum = checksum, OwnerIno = ino };
        await using var upload = await bulk.BeginUploadAsync(dataAddress, BulkOp.WriteChunk, header, UploadTimeout, ct);
        var segments = new List<ArraySegment<byte>>(DataFrames.MaxUploadFrameBytes / DirtySegment.PageSize);
        for (int page = 0, sent = 0; sent < length;)
        {
            segments.Clear();
            var batch = 0;
            while (sent < length && batch < DataFrames.MaxUploadFrameBytes)
            {
                var n = Math.Min(DirtySegment.PageSize, length - sent);
                segments.Add(new ArraySegment<byte>(pages[page++], 0, n));
                sent += n;
                batch += n;
            }
            await upload.SendAsync(segments);
        }
        return WriteChunkReply.Parser.ParseFrom(await upload.CompleteAsync());
    }

    private async Task<WriteChunkReply> WriteChunkAsync(string address, string id, IReadOnlyList<byte[]> pages, int length, ulong checksum, ulong ino, CancellationToken ct)
    {
        var client = new ChunkStore.ChunkStoreClient(channels.Get(address));
        using var call = client.WriteChunk(deadline: DateTime.UtcNow.AddMinutes(2), cancellationToken: ct);
        try
        {
            await call.RequestStream.WriteAsync(new ChunkUpload
            {
                Header = new ChunkHeader { ChunkId = id, Size = (ulong)length, Checksum = checksum, OwnerIno = ino },
            }, ct);
            // Pages are gathered into frames of up to 1 MiB (one copy, far cheaper than 16× the
            // per-message cost); the frame is serialized before WriteAsync completes, so it is reused.
            var frame = ArrayPool<byte>.Shared.Rent(Math.Min(length, DataFrames.MaxUploadFrameBytes));
            try
            {
                for (var sent = 0; sent < length;)
                {
                    var n = Math.Min(Math.Min(frame.Length, DataFrames.MaxUploadFrameBytes), length - sent);
                    DirtySegment.CopyOut(pages, sent, frame.AsSpan(0, n));
                    await call.RequestStream.WriteAsync(new ChunkUpload { Data = UnsafeByteOperations.UnsafeWrap(frame.AsMemory(0, n)) }, ct);
                    sent += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(frame);
            }
            await call.RequestStream.CompleteAsync();
        }
        catch (InvalidOperationException)
        {
            // The server ended the call early; its status is in the response.
        }
        return await call.ResponseAsync;
    }

    /// <summary>
    /// A primary for the next attempt, or null when no node is active. While none is, it waits
    /// for one (back-off, a fresh list each time) until <see cref="BigFsClientOptions.StorageOutageWindow"/>
    /// after the list first came back empty: every node restarting at once, or the metadata
    /// server cut off from all of them for a while (which turns them all Suspect until their
    /// next heartbeats), is then a pause and not EIO. Once such an outage has lasted the whole
    /// window, uploads fail at once until a node is back, as metadata calls do.
    /// </summary>
    private async Task<WritableNode?> PickNodeAsync(IReadOnlySet<string> avoid, bool refresh, CancellationToken ct)
    {
        var delay = FirstNodeWait;
        var waited = false;
        var found = false;
        try
        {
            while (true)
            {
                IReadOnlyList<WritableNode> nodes;
                try
                {
                    nodes = await NodesAsync(refresh, ct);
                }
                catch (BigFsException) when (DateTime.UtcNow is var failedAt && failedAt < NodeWaitEnd(failedAt))
                {
                    nodes = [];   // the metadata server is unreachable too, and we have no list yet
                }
                if (NodeSelector.Pick(nodes, avoid, Random.Shared) is { } node)
                {
                    _noNode.End();
                    found = true;
                    return node;
                }
                if (Volatile.Read(ref _fullNodes) > 0)
                    return null;   // nodes are up but full: ENOSPC, nothing to wait for
                var now = DateTime.UtcNow;
                var giveUpAt = NodeWaitEnd(now);
                if (now >= giveUpAt)
                    return null;
                if (!waited)
                {
                    waited = true;
                    if (Interlocked.Increment(ref _waitingForNode) == 1)
                        logger.LogWarning("No storage node is active; uploads wait for one for up to {Window}s", options.StorageOutageWindow.TotalSeconds);
                }
                await Task.Delay(giveUpAt - now < delay ? giveUpAt - now : delay, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxNodeWait.Ticks));
                refresh = true;
            }
        }
        finally
        {
            if (waited && Interlocked.Decrement(ref _waitingForNode) == 0 && found)
                logger.LogInformation("Storage nodes are active again; uploads go on");
        }
    }

    /// <summary>Until when uploads wait for a node in the current no-node outage (begun at <paramref name="now"/> if none is on).</summary>
    private DateTime NodeWaitEnd(DateTime now) => _noNode.Start(now) + options.StorageOutageWindow;

    private async Task<IReadOnlyList<WritableNode>> NodesAsync(bool refresh, CancellationToken ct)
    {
        if (!refresh && DateTime.UtcNow - _nodesFetched < NodeListTtl && _nodes.Count > 0)
            return _nodes;
        await _refresh.WaitAsync(ct);
        try
        {
            if (!refresh && DateTime.UtcNow - _nodesFetched < NodeListTtl && _nodes.Count > 0)
                return _nodes;
            try
            {
                var reply = await ns.ListWritableNodesAsync(new ListWritableNodesRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
                _nodes = reply.Nodes.ToList();
                Volatile.Write(ref _fullNodes, (int)reply.FullNodes);
                _nodesFetched = DateTime.UtcNow;
            }
            catch (RpcException ex) when (_nodes.Count > 0)
            {
                logger.LogWarning("ListWritableNodes failed ({Status}); using the last list", ex.Status);
            }
            catch (RpcException ex)
            {
                throw BigFsException.Io("cannot list writable nodes: " + ex.Status.Detail, ex);
            }
            return _nodes;
        }
        finally
        {
            _refresh.Release();
        }
    }

    public static ulong Checksum(IReadOnlyList<byte[]> pages, int length)
    {
        var hash = new XxHash3();
        for (int page = 0, done = 0; done < length; page++)
        {
            var n = Math.Min(DirtySegment.PageSize, length - done);
            hash.Append(pages[page].AsSpan(0, n));
            done += n;
        }
        return hash.GetCurrentHashAsUInt64();
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }
}
