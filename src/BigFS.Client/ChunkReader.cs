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
internal sealed class ChunkReader(GrpcChannels channels, BulkClient bulk, Namespace.NamespaceClient ns, BlockCache cache, ILogger logger)
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromMinutes(1);
    private const int BlockSize = ChunkChecksum.BlockSize;
    private readonly ConcurrentDictionary<string, int> _readsInFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Chunk, int Block), Task> _fetching = new();

    /// <summary>Fills <paramref name="destination"/> with chunk bytes starting at <paramref name="chunkOffset"/>.</summary>
    public async Task ReadAsync(string chunkId, IReadOnlyList<ChunkCopy> copies, long chunkOffset, Memory<byte> destination, CancellationToken ct)
    {
        if (destination.IsEmpty)
            return;
        var end = chunkOffset + destination.Length;
        var first = (int)(chunkOffset / BlockSize);
        var last = (int)((end - 1) / BlockSize);
        var block = first;
        var waited = false;
        while (block <= last)
        {
            if (cache.TryCopy(chunkId, block, (block, chunkOffset, destination), static (data, s) => CopyBlock(s.block, data, s.chunkOffset, s.destination)))
            {
                block++;
                waited = false;
                continue;
            }
            // Another read (often read-ahead) is fetching this block: wait for it once instead of fetching it twice.
            if (!waited && _fetching.TryGetValue((chunkId, block), out var inFlight))
            {
                await inFlight.WaitAsync(ct);
                waited = true;
                continue;
            }
            waited = false;
            var runEnd = block;
            while (runEnd < last && !cache.Contains(chunkId, runEnd + 1) && !_fetching.ContainsKey((chunkId, runEnd + 1)))
                runEnd++;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var claimed = new List<int>();
            for (var b = block; b <= runEnd; b++)
                if (_fetching.TryAdd((chunkId, b), done.Task))
                    claimed.Add(b);
            try
            {
                var from = Math.Max(chunkOffset, (long)block * BlockSize);
                var to = Math.Min(end, (long)(runEnd + 1) * BlockSize);
                var blocks = await FetchAsync(chunkId, copies, from, to - from, ct);
                foreach (var (index, data, pooled) in blocks)
                {
                    // Copied before it is cached: once cached it may be evicted and its array reused.
                    CopyBlock(index, data, chunkOffset, destination);
                    cache.Add(chunkId, index, data, pooled);
                }
            }
            finally
            {
                foreach (var b in claimed)
                    _fetching.TryRemove((chunkId, b), out _);
                done.TrySetResult();
            }
            block = runEnd + 1;
        }
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

    private async Task<List<(int Block, ReadOnlyMemory<byte> Data, byte[]? Pooled)>> FetchAsync(string chunkId, IReadOnlyList<ChunkCopy> copies, long offset, long length, CancellationToken ct)
    {
        Exception? lastError = null;
        foreach (var copy in Order(copies))
        {
            _readsInFlight.AddOrUpdate(copy.Address, 1, (_, n) => n + 1);
            try
            {
                return await FetchFromAsync(copy, chunkId, offset, length, ct);
            }
            catch (RpcException ex) when (!ct.IsCancellationRequested)
            {
                lastError = ex;
                logger.LogWarning("Reading chunk {ChunkId} from {Node} failed: {Status}; trying the next copy", chunkId, copy.Address, ex.Status);
                if (ex.StatusCode is StatusCode.NotFound or StatusCode.DataLoss or StatusCode.OutOfRange)
                    ReportBadCopy(chunkId, copy, ex.Status.Detail);
            }
            catch (CorruptBlockException ex)
            {
                lastError = ex;
                logger.LogWarning("Chunk {ChunkId} from {Node}: {Problem}; trying the next copy", chunkId, copy.Address, ex.Message);
                ReportBadCopy(chunkId, copy, ex.Message);
            }
            finally
            {
                _readsInFlight.AddOrUpdate(copy.Address, 0, (_, n) => n - 1);
            }
        }
        throw BigFsException.Io($"no readable copy of chunk {chunkId}", lastError);
    }

    private async Task<List<(int, ReadOnlyMemory<byte>, byte[]?)>> FetchFromAsync(ChunkCopy copy, string chunkId, long offset, long length, CancellationToken ct)
    {
        if (copy.DataAddress.Length > 0)
            return await FetchBulkAsync(copy.DataAddress, chunkId, offset, length, ct);
        var client = new ChunkStore.ChunkStoreClient(channels.Get(copy.Address));
        using var call = client.ReadChunk(new ReadChunkRequest { ChunkId = chunkId, Offset = (ulong)offset, Length = (ulong)length },
            deadline: DateTime.UtcNow.AddMinutes(1), cancellationToken: ct);
        var result = new List<(int, ReadOnlyMemory<byte>, byte[]?)>();
        var expected = (ulong)(offset / BlockSize * BlockSize);
        await foreach (var block in call.ResponseStream.ReadAllAsync(ct))
        {
            if (block.Offset != expected)
                throw new CorruptBlockException($"block at {block.Offset}, expected {expected}");
            // The message's bytes are immutable and under 85 KB: cache them as they are.
            var data = block.Data.Memory;
            if (ChunkChecksum.Compute(data.Span) != block.Checksum)
                throw new CorruptBlockException($"checksum mismatch in block at {block.Offset}");
            result.Add(((int)(block.Offset / BlockSize), data, null));
            expected += BlockSize;
        }
        if (expected < (ulong)(offset + length))
            throw new CorruptBlockException($"short read: blocks up to {expected}, needed {offset + length}");
        return result;
    }

    /// <summary>Over the node's bulk data listener: each block lands in a pooled array from the cache and is verified on arrival.</summary>
    private async Task<List<(int, ReadOnlyMemory<byte>, byte[]?)>> FetchBulkAsync(string dataAddress, string chunkId, long offset, long length, CancellationToken ct)
    {
        var result = new List<(int, ReadOnlyMemory<byte>, byte[]?)>();
        var expected = offset / BlockSize * BlockSize;
        try
        {
            await bulk.ReadChunkAsync(dataAddress, chunkId, offset, length, ReadTimeout, _ => cache.RentBlock(), (blockOffset, array, size, checksum) =>
            {
                var data = array.AsMemory(0, size);
                if (ChunkChecksum.Compute(data.Span) != checksum)
                {
                    cache.ReturnBlock(array);
                    throw new CorruptBlockException($"checksum mismatch in block at {blockOffset}");
                }
                result.Add(((int)(blockOffset / BlockSize), data, array));
                expected = blockOffset + BlockSize;
            }, ct);
            if (expected < offset + length)
                throw new CorruptBlockException($"short read: blocks up to {expected}, needed {offset + length}");
            return result;
        }
        catch
        {
            foreach (var (_, _, array) in result)
                cache.ReturnBlock(array!);
            throw;
        }
    }

    /// <summary>AVAILABLE copies (and the primary) first, least busy first; the others as a last resort.</summary>
    private IEnumerable<ChunkCopy> Order(IReadOnlyList<ChunkCopy> copies)
    {
        var usable = copies.Where(c => c.Address.Length > 0).ToList();
        var good = usable.Where(c => c.Status == CopyStatus.Available || c.Primary)
            .OrderBy(c => _readsInFlight.GetValueOrDefault(c.Address))
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
