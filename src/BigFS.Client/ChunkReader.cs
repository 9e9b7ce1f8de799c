using System.Collections.Concurrent;
using BigFS.Core;
using BigFS.Protocol;
using BigFS.Protocol.Bulk;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Client;

/// <summary>
/// Reads ranges of chunks: cached blocks first, missing runs fetched from the least-loaded
/// available copy, each block verified against its checksum; on error or mismatch the next
/// copy is tried and a bad copy reported. All copies failing is EIO.
/// </summary>
internal sealed class ChunkReader(GrpcChannels channels, BulkClient bulk, Namespace.NamespaceClient ns, BlockCache cache,
    NodeFailureMemory failures, ILogger logger)
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromMinutes(1);
    private const int BlockSize = ChunkChecksum.BlockSize;
    private readonly ConcurrentDictionary<string, int> _readsInFlight = new(StringComparer.Ordinal);
    /// <summary>Blocks being fetched; each completes as soon as its own block is cached (or its fetch failed).</summary>
    private readonly ConcurrentDictionary<(string Chunk, int Block), TaskCompletionSource> _fetching = new();

    /// <summary>Fills <paramref name="destination"/> with chunk bytes starting at <paramref name="chunkOffset"/>.</summary>
    public Task ReadAsync(string chunkId, IReadOnlyList<ChunkCopy> copies, long chunkOffset, Memory<byte> destination, CancellationToken ct) =>
        destination.IsEmpty ? Task.CompletedTask : ReadCoreAsync(chunkId, copies, chunkOffset, destination.Length, destination, warmOnly: false, ct);

    /// <summary>
    /// Read-ahead: brings the blocks of [chunkOffset, +length) into the cache without copying them
    /// anywhere; blocks already cached or being fetched are skipped.
    /// </summary>
    public Task WarmAsync(string chunkId, IReadOnlyList<ChunkCopy> copies, long chunkOffset, long length, CancellationToken ct) =>
        length <= 0 ? Task.CompletedTask : ReadCoreAsync(chunkId, copies, chunkOffset, length, Memory<byte>.Empty, warmOnly: true, ct);

    private async Task ReadCoreAsync(string chunkId, IReadOnlyList<ChunkCopy> copies, long chunkOffset, long length, Memory<byte> destination, bool warmOnly, CancellationToken ct)
    {
        var end = chunkOffset + length;
        var first = (int)(chunkOffset / BlockSize);
        var last = (int)((end - 1) / BlockSize);
        var block = first;
        var waited = false;
        while (block <= last)
        {
            if (warmOnly ? cache.Contains(chunkId, block)
                : cache.TryCopy(chunkId, block, (block, chunkOffset, destination), static (data, s) => CopyBlock(s.block, data, s.chunkOffset, s.destination)))
            {
                block++;
                waited = false;
                continue;
            }
            if (_fetching.TryGetValue((chunkId, block), out var inFlight))
            {
                if (warmOnly)
                {
                    block++;
                    continue;
                }
                // Another read (often read-ahead) is fetching this block: wait for it once instead of fetching it twice.
                if (!waited)
                {
                    await inFlight.Task.WaitAsync(ct);
                    waited = true;
                    continue;
                }
            }
            waited = false;
            // Claim the run of blocks from here that nobody has and nobody is fetching.
            var claimed = new List<(int Block, TaskCompletionSource Done)>();
            for (var b = block; b <= last; b++)
            {
                if (b > block && cache.Contains(chunkId, b))
                    break;
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (!_fetching.TryAdd((chunkId, b), done))
                    break;
                claimed.Add((b, done));
            }
            if (claimed.Count == 0)
                continue; // lost a race for this block: look again
            var runEnd = claimed[^1].Block;
            try
            {
                var from = Math.Max(chunkOffset, (long)block * BlockSize);
                var to = Math.Min(end, (long)(runEnd + 1) * BlockSize);
                await FetchAsync(chunkId, copies, from, to - from, (index, data, pooled) =>
                {
                    // Copied before it is cached: once cached it may be evicted and its array reused.
                    if (!warmOnly)
                        CopyBlock(index, data, chunkOffset, destination);
                    cache.Add(chunkId, index, data, pooled);
                    if (index >= block && index <= runEnd)
                        Release(chunkId, claimed[index - block]);
                }, ct);
            }
            finally
            {
                foreach (var claim in claimed)
                    Release(chunkId, claim);
            }
            block = runEnd + 1;
        }
    }

    /// <summary>Copies chunk bytes only if every block they need is cached; false (destination partly written) otherwise.</summary>
    public bool TryCopyCached(string chunkId, long chunkOffset, Memory<byte> destination)
    {
        if (destination.IsEmpty)
            return true;
        var last = (int)((chunkOffset + destination.Length - 1) / BlockSize);
        for (var block = (int)(chunkOffset / BlockSize); block <= last; block++)
        {
            if (!cache.TryCopy(chunkId, block, (block, chunkOffset, destination), static (data, s) => CopyBlock(s.block, data, s.chunkOffset, s.destination)))
                return false;
        }
        return true;
    }

    /// <summary>Adds the cached bytes [chunkOffset, +length) to <paramref name="read"/> as leased segments; false if a block is missing.</summary>
    public bool TryLeaseCached(string chunkId, long chunkOffset, long length, LeasedRead read)
    {
        var end = chunkOffset + length;
        for (var block = (int)(chunkOffset / BlockSize); (long)block * BlockSize < end; block++)
        {
            if (!cache.TryLease(chunkId, block, out var lease))
                return false;
            read.Hold(lease);
            var blockStart = (long)block * BlockSize;
            var from = Math.Max(chunkOffset, blockStart);
            var to = Math.Min(end, blockStart + BlockSize);
            if (blockStart + lease.Data.Length < to)
                return false; // shorter than the layout says: the copying path reports it
            read.Add(lease.Data.Slice((int)(from - blockStart), (int)(to - from)));
        }
        return true;
    }

    private void Release(string chunkId, (int Block, TaskCompletionSource Done) claim)
    {
        if (claim.Done.Task.IsCompleted)
            return;
        _fetching.TryRemove(new KeyValuePair<(string, int), TaskCompletionSource>((chunkId, claim.Block), claim.Done));
        claim.Done.TrySetResult();
    }

    private static void CopyBlock(int block, ReadOnlyMemory<byte> data, long chunkOffset, Memory<byte> destination)
    {
        var blockStart = (long)block * BlockSize;
        var start = Math.Max(blockStart, chunkOffset);
        var stop = Math.Min(blockStart + data.Length, chunkOffset + destination.Length);
        var needed = Math.Min((long)(block + 1) * BlockSize, chunkOffset + destination.Length) - start;
        if (stop - start < needed)
            throw BigFsException.Io($"chunk data ends before the layout says (block {block})");
        data.Span.Slice((int)(start - blockStart), (int)(stop - start)).CopyTo(destination.Span[(int)(start - chunkOffset)..]);
    }

    /// <summary>A verified block: its index in the chunk, its bytes, and the cache's array behind them (null: not the cache's to recycle).</summary>
    private delegate void BlockHandler(int block, ReadOnlyMemory<byte> data, byte[]? pooled);

    /// <summary>
    /// Fetches [offset, +length) block by block, handing each verified block to <paramref name="onBlock"/>
    /// as it arrives; a failing copy is left for the next one from the first block not yet delivered.
    /// </summary>
    private async Task FetchAsync(string chunkId, IReadOnlyList<ChunkCopy> copies, long offset, long length, BlockHandler onBlock, CancellationToken ct)
    {
        var end = offset + length;
        var next = offset; // first byte not delivered yet
        BlockHandler deliver = (index, data, pooled) =>
        {
            onBlock(index, data, pooled);
            next = Math.Max(next, (long)(index + 1) * BlockSize);
        };
        Exception? lastError = null;
        var allNotFound = copies.Count > 0;
        foreach (var copy in Order(copies))
        {
            if (next >= end)
                return;
            _readsInFlight.AddOrUpdate(copy.Address, 1, (_, n) => n + 1);
            try
            {
                await FetchFromAsync(copy, chunkId, next, end - next, deliver, ct);
                failures.Clear(copy.NodeId);
                return;
            }
            catch (RpcException ex) when (!ct.IsCancellationRequested)
            {
                lastError = ex;
                allNotFound &= ex.StatusCode == StatusCode.NotFound;
                if (OutageRetryInterceptor.IsTransportFailure(ex) || ex.StatusCode == StatusCode.DeadlineExceeded)
                    failures.Record(copy.NodeId);   // unreachable: the next reads try its copies last
                logger.LogWarning("Reading chunk {ChunkId} from {Node} failed: {Status}; trying the next copy", chunkId, copy.Address, ex.Status);
                if (ex.StatusCode is StatusCode.NotFound or StatusCode.DataLoss or StatusCode.OutOfRange)
                    ReportBadCopy(chunkId, copy, ex.Status.Detail);
            }
            catch (CorruptBlockException ex)
            {
                lastError = ex;
                allNotFound = false;
                logger.LogWarning("Chunk {ChunkId} from {Node}: {Problem}; trying the next copy", chunkId, copy.Address, ex.Message);
                ReportBadCopy(chunkId, copy, ex.Message);
            }
            finally
            {
                _readsInFlight.AddOrUpdate(copy.Address, 0, (_, n) => n - 1);
            }
        }
        if (next < end)
            throw allNotFound ? BigFsException.Gone(chunkId, lastError) : BigFsException.Io($"no readable copy of chunk {chunkId}", lastError);
    }

    private async Task FetchFromAsync(ChunkCopy copy, string chunkId, long offset, long length, BlockHandler onBlock, CancellationToken ct)
    {
        if (copy.DataAddress.Length > 0)
        {
            await FetchBulkAsync(copy.DataAddress, chunkId, offset, length, onBlock, ct);
            return;
        }
        var client = new ChunkStore.ChunkStoreClient(channels.Get(copy.Address));
        using var call = client.ReadChunk(new ReadChunkRequest { ChunkId = chunkId, Offset = (ulong)offset, Length = (ulong)length },
            deadline: DateTime.UtcNow.AddMinutes(1), cancellationToken: ct);
        var expected = (ulong)(offset / BlockSize * BlockSize);
        await foreach (var block in call.ResponseStream.ReadAllAsync(ct))
        {
            if (block.Offset != expected)
                throw new CorruptBlockException($"block at {block.Offset}, expected {expected}");
            // The message's bytes are immutable and under 85 KB: cache them as they are.
            var data = block.Data.Memory;
            if (ChunkChecksum.Compute(data.Span) != block.Checksum)
                throw new CorruptBlockException($"checksum mismatch in block at {block.Offset}");
            onBlock((int)(block.Offset / BlockSize), data, null);
            expected += BlockSize;
        }
        if (expected < (ulong)(offset + length))
            throw new CorruptBlockException($"short read: blocks up to {expected}, needed {offset + length}");
    }

    /// <summary>Over the node's bulk data listener: each block lands in a pooled array from the cache and is verified on arrival.</summary>
    private async Task FetchBulkAsync(string dataAddress, string chunkId, long offset, long length, BlockHandler onBlock, CancellationToken ct)
    {
        var expected = offset / BlockSize * BlockSize;
        await bulk.ReadChunkAsync(dataAddress, chunkId, offset, length, ReadTimeout, _ => cache.RentBlock(), (blockOffset, array, size, checksum) =>
        {
            var data = array.AsMemory(0, size);
            if (blockOffset != expected || ChunkChecksum.Compute(data.Span) != checksum)
            {
                cache.ReturnBlock(array);
                throw new CorruptBlockException(blockOffset != expected ? $"block at {blockOffset}, expected {expected}" : $"checksum mismatch in block at {blockOffset}");
            }
            expected = blockOffset + BlockSize;
            onBlock((int)(blockOffset / BlockSize), data, array);
        }, ct);
        if (expected < offset + length)
            throw new CorruptBlockException($"short read: blocks up to {expected}, needed {offset + length}");
    }

    /// <summary>
    /// AVAILABLE copies (and the primary) first, those on nodes that just failed to answer last
    /// among them, least busy first; the others as a last resort.
    /// </summary>
    private IEnumerable<ChunkCopy> Order(IReadOnlyList<ChunkCopy> copies)
    {
        var usable = copies.Where(c => c.Address.Length > 0).ToList();
        var good = usable.Where(c => c.Status == CopyStatus.Available || c.Primary)
            .OrderBy(c => failures.IsSuspect(c.NodeId))
            .ThenBy(c => _readsInFlight.GetValueOrDefault(c.Address))
            .ThenBy(_ => Random.Shared.Next())
            .ToList();
        return good.Concat(usable.Where(c => !good.Contains(c)));
    }

    private void ReportBadCopy(string chunkId, ChunkCopy copy, string reason)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await ns.ReportBadCopyAsync(new ReportBadCopyRequest { ChunkId = chunkId, NodeId = copy.NodeId, Reason = reason },
                    deadline: DateTime.UtcNow.AddSeconds(10));
            }
            catch (RpcException ex)
            {
                logger.LogWarning("ReportBadCopy for {ChunkId} on {Node} failed: {Status}", chunkId, copy.NodeId, ex.Status);
            }
        });
    }

    private sealed class CorruptBlockException(string message) : Exception(message);
}
