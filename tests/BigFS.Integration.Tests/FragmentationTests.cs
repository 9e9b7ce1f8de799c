using BigFS.Client;
using static BigFS.Testing.FileHelpers;

namespace BigFS.Integration.Tests;

/// <summary>Scattered small writes through the client over a real cluster: merged per region, compacted, collected.</summary>
public class FragmentationTests
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task ThousandsOfScatteredSmallWritesWithFsyncsEndInABoundedNumberOfChunksAndReadBackIdentical()
    {
        await using var cluster = await TestCluster.StartAsync(configure: o => o.CleanupInterval = TimeSpan.FromSeconds(1));
        var client = await cluster.ClientAsync(new BigFsClientOptions { WriteBufferBytes = 8 * MiB, ChunkCacheBytes = 16 * MiB });
        var model = RandomBytes(24 * MiB, seed: 20);
        var file = await CreateFileAsync(client, "scattered.bin");
        await WriteAsync(client, file.Ino, 0, model);

        var random = new Random(21);
        await using (var handle = client.OpenFile(file.Ino, model.Length))
        {
            for (var fsync = 0; fsync < 5; fsync++)
            {
                for (var i = 0; i < 1000; i++)
                {
                    var length = random.Next(1, 8193);
                    var offset = random.Next(model.Length - length);
                    var bytes = RandomBytes(length, random.Next());
                    await handle.WriteAsync(offset, bytes);
                    bytes.CopyTo(model, offset);
                }
                await handle.FlushAsync();
            }
        }

        Assert.Equal(Sha256(model), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
        var layout = await LayoutAsync(client, file.Ino);
        // Six 4 MiB regions, none drawing on more chunks than the compaction bound; without
        // merging, 5,000 scattered writes would have left thousands of chunks.
        const int bound = 6 * CompactionPolicy.DefaultMaxChunksPerRegion;
        Assert.True(layout.Chunks.Count <= bound, $"{layout.Chunks.Count} chunks");
        foreach (var region in layout.Extents.GroupBy(e => e.FileOffset / (4 * MiB)))
            Assert.True(region.Select(e => e.ChunkId).Distinct().Count() <= CompactionPolicy.DefaultMaxChunksPerRegion, $"region {region.Key}");
        // The chunks they replaced are garbage and get collected.
        await Poll.UntilAsync(async () => (await cluster.StatusAsync()).ChunksTotal <= bound, TimeSpan.FromSeconds(60), "replaced chunks collected");
    }

    [Fact]
    public async Task ARegionFragmentedByManySmallCommitsIsCompactedOnFlush()
    {
        await using var cluster = await TestCluster.StartAsync();
        var client = await cluster.ClientAsync();
        var model = RandomBytes(8 * MiB, seed: 30);
        var file = await CreateFileAsync(client, "log.bin");
        await WriteAsync(client, file.Ino, 0, model);

        // One small write per flush: never worth merging on its own, so every commit adds a chunk to the region.
        var random = new Random(31);
        await using (var handle = client.OpenFile(file.Ino, model.Length))
        {
            for (var i = 0; i < 3 * CompactionPolicy.DefaultMaxChunksPerRegion; i++)
            {
                var offset = random.Next(4 * MiB - 100);
                var bytes = RandomBytes(100, random.Next());
                await handle.WriteAsync(offset, bytes);
                bytes.CopyTo(model, offset);
                await handle.FlushAsync();
                var chunks = (await LayoutAsync(client, file.Ino)).Extents.Where(e => e.FileOffset < 4 * MiB).Select(e => e.ChunkId).Distinct().Count();
                Assert.True(chunks <= CompactionPolicy.DefaultMaxChunksPerRegion, $"after write {i}: the first region draws on {chunks} chunks");
            }
        }

        Assert.Equal(Sha256(model), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
        var layout = await LayoutAsync(client, file.Ino);
        // The untouched second region still has its original chunk.
        Assert.Single(layout.Extents.Where(e => e.FileOffset >= 4 * MiB).Select(e => e.ChunkId).Distinct());
    }

    [Fact]
    public async Task GapsFilledFromAStaleLayoutNeverOverwriteAnotherWritersCommit()
    {
        await using var cluster = await TestCluster.StartAsync();
        var a = await cluster.ClientAsync();
        var b = await cluster.ClientAsync();
        var model = RandomBytes(1 * MiB, seed: 30);
        var file = await CreateFileAsync(a, "shared.bin");
        await WriteAsync(a, file.Ino, 0, model);

        await using var handle = a.OpenFile(file.Ino, model.Length);
        var read = new byte[64 * 1024];
        await handle.ReadAsync(0, read);                // A caches the committed layout

        var middle = RandomBytes(4096, seed: 31);      // B commits into the gap A is about to fill
        await using (var other = b.OpenFile(file.Ino, model.Length))
        {
            await other.WriteAsync(8192, middle);
            await other.FlushAsync();
        }
        middle.CopyTo(model, 8192);

        var left = RandomBytes(4096, seed: 32);        // two pieces of one region, 8 KiB apart: merged, gap filled
        var right = RandomBytes(4096, seed: 33);
        await handle.WriteAsync(4096, left);
        await handle.WriteAsync(16384, right);
        left.CopyTo(model, 4096);
        right.CopyTo(model, 16384);
        await handle.FlushAsync();

        Assert.Equal(Sha256(model), Sha256(await ReadAllAsync(await cluster.ClientAsync(), file.Ino)));
    }
}
