using System.Buffers;
using System.Diagnostics;
using BigFS.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// Re-reads every local chunk at a bounded rate and checks each block against its stored
/// checksum; a mismatch marks the copy corrupt (no longer served) and reports it.
/// </summary>
public sealed class Scrubber(LocalChunkStore store, ClusterAgent agent, StorageNodeOptions options, ILogger logger)
{
    public long ChunksVerified => Interlocked.Read(ref _verified);
    private long _verified;

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(options.ScrubInterval, ct);
            var corrupt = await ScrubOnceAsync(ct);
            logger.LogInformation("Scrub pass done: {Chunks} chunks, {Corrupt} corrupt", store.Count, corrupt);
        }
    }

    /// <returns>The number of chunks found corrupt in this pass.</returns>
    public async Task<int> ScrubOnceAsync(CancellationToken ct)
    {
        var corrupt = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkChecksum.BlockSize);
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        try
        {
            foreach (var chunk in store.All.ToList())
            {
                if (chunk.IsCorrupt || !store.TryGet(chunk.Id, out _))
                    continue;
                string? problem = null;
                try
                {
                    using var handle = LocalChunkStore.OpenForRead(chunk);
                    for (var block = 0; block < chunk.Header.BlockChecksums.Length && problem is null; block++)
                    {
                        var n = await LocalChunkStore.ReadAsync(handle, chunk, (long)block * ChunkChecksum.BlockSize, buffer.AsMemory(0, ChunkChecksum.BlockSize), ct);
                        if (ChunkChecksum.Compute(buffer.AsSpan(0, n)) != chunk.Header.BlockChecksums[block])
                            problem = $"scrub: block {block} checksum mismatch";
                        bytes += n;
                        var ahead = TimeSpan.FromSeconds((double)bytes / Math.Max(1, options.ScrubBytesPerSecond)) - clock.Elapsed;
                        if (ahead > TimeSpan.FromMilliseconds(10))
                            await Task.Delay(ahead, ct);
                    }
                }
                catch (FileNotFoundException)
                {
                    continue; // deleted meanwhile
                }
                catch (IOException ex)
                {
                    problem = $"scrub: read failed: {ex.Message}";
                }
                Interlocked.Increment(ref _verified);
                if (problem is not null)
                {
                    corrupt++;
                    await agent.ReportCorruptAsync(chunk, problem);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return corrupt;
    }
}
