using Microsoft.Win32.SafeHandles;
using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>
/// Small (random) reads through the mount push the rest of their 64 KiB block into the kernel's
/// page cache (FUSE_NOTIFY_STORE) — and never data a later open or a local write would contradict.
/// </summary>
public class PageCacheFillTests
{
    private const int Block = 64 * 1024;

    [Fact]
    public async Task ASmallReadBringsItsWholeBlockIntoThePageCache_WithTheRightBytes()
    {
        await using var m = await MountedCluster.StartAsync();
        var path = $"{m.MountPoint}/r.bin";
        var data = FileHelpers.RandomBytes(4 * Block + 9000, seed: 31);
        await File.WriteAllBytesAsync(path, data);
        await EvictAsync(path);   // the pages written stay cached across the commit: start without them

        using (var handle = OpenForRandomReads(path))
        {
            Assert.Equal(0, await PageCache.ResidentBytesAsync(path));
            var page = new byte[4096];
            Assert.Equal(page.Length, RandomAccess.Read(handle, page, Block + 8192));
            Assert.Equal(data.AsSpan(Block + 8192, 4096).ToArray(), page);
            await WaitForPushAsync(handle, path, [Block + 8192], Block, "the block's other pages pushed");

            // The tail block (9000 bytes, three pages): pushed up to the end of the file, not beyond it.
            Assert.Equal(page.Length, RandomAccess.Read(handle, page, 4 * Block));
            await WaitForPushAsync(handle, path, [Block + 8192, 4 * Block], Block + 3 * 4096, "the tail pushed");
            Assert.Equal(data.Length, new FileInfo(path).Length);

            // Every pushed byte is the file's byte.
            var all = new byte[data.Length];
            Assert.Equal(all.Length, RandomAccess.Read(handle, all, 0));
            Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(all));
        }
    }

    [Fact]
    public async Task NothingIsPushedWhileTheFileIsOpenForWriting_AndWritesStayVisible()
    {
        await using var m = await MountedCluster.StartAsync();
        var path = $"{m.MountPoint}/w.bin";
        var data = FileHelpers.RandomBytes(2 * Block, seed: 32);
        await File.WriteAllBytesAsync(path, data);
        await EvictAsync(path);

        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, options: FileOptions.RandomAccess);
        var page = new byte[4096];
        Assert.Equal(page.Length, RandomAccess.Read(handle, page, 8192));
        var update = FileHelpers.RandomBytes(4096, seed: 33);
        RandomAccess.Write(handle, update, 16384);
        Array.Copy(update, 0, data, 16384, update.Length);
        await Task.Delay(200); // a store would have been queued by now
        Assert.True(await PageCache.ResidentBytesAsync(path) <= 2 * 4096, "pages pushed while open for writing");
        var all = new byte[data.Length];
        Assert.Equal(all.Length, RandomAccess.Read(handle, all, 0));
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(all));
    }

    [Fact]
    public async Task PushedPagesDoNotOutliveAnotherMountsCommit_CloseToOpen()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var first = FileHelpers.RandomBytes(2 * Block, seed: 34);
        await File.WriteAllBytesAsync($"{a}/s.bin", first);
        using (var handle = OpenForRandomReads($"{b}/s.bin"))
        {
            var page = new byte[4096];
            RandomAccess.Read(handle, page, 4096);
            await WaitForPushAsync(handle, $"{b}/s.bin", [4096], Block, "B's block pushed");
        }

        var second = FileHelpers.RandomBytes(2 * Block, seed: 35);
        await File.WriteAllBytesAsync($"{a}/s.bin", second);
        await Poll.UntilAsync(() =>
        {
            using var handle = OpenForRandomReads($"{b}/s.bin");
            var back = new byte[second.Length];
            return RandomAccess.Read(handle, back, 0) == back.Length && FileHelpers.Sha256(back) == FileHelpers.Sha256(second);
        }, TimeSpan.FromSeconds(5), "B's next open to see A's commit in every page");
    }

    /// <summary>Drops the file's clean pages from the page cache (POSIX_FADV_DONTNEED).</summary>
    private static Task EvictAsync(string path) =>
        RunAsync($"python3 -c \"import os; fd = os.open('{path}', os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\"");

    private static SafeFileHandle OpenForRandomReads(string path) =>
        File.OpenHandle(path, FileMode.Open, FileAccess.Read, options: FileOptions.RandomAccess); // POSIX_FADV_RANDOM: no kernel read-ahead

    /// <summary>
    /// Waits until <paramref name="expected"/> bytes of the file are in the page cache. Pages may
    /// be dropped during the wait (see <see cref="PageCache"/>): then the reads at
    /// <paramref name="offsets"/> are made again, so that they push their blocks again.
    /// </summary>
    private static async Task WaitForPushAsync(SafeFileHandle handle, string path, long[] offsets, long expected, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var page = new byte[4096];
        var drops = PageCache.Drops();
        var seen = 0L;
        while (true)
        {
            var resident = await PageCache.ResidentBytesAsync(path);
            if (resident == expected)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"timed out after 10s waiting for {what} ({resident} of {expected} bytes resident)");
            if (PageCache.Drops() != drops || resident < seen)
            {
                drops = PageCache.Drops();
                foreach (var offset in offsets)
                    RandomAccess.Read(handle, page, offset);
            }
            seen = resident;
            await Task.Delay(20);
        }
    }
}

public class PageCacheFillerNeighbourTests
{
    private const int Block = PageCacheFiller.BlockSize;

    [Fact]
    public void TheReadsOwnPagesAreLeftOut_TheRestOfItsBlockIsPushed()
    {
        Assert.Equal([(0L, 8192), (12288L, Block - 12288)], PageCacheFiller.Neighbours(8192, 4096, 10 * Block).ToArray());
        Assert.Equal([(4096L, Block - 4096)], PageCacheFiller.Neighbours(0, 4096, 10 * Block).ToArray());
        Assert.Equal([(Block + 0L, Block - 4096)], PageCacheFiller.Neighbours(2 * Block - 4096, 4096, 10 * Block).ToArray());
    }

    [Fact]
    public void UnalignedReadsKeepTheirWholePages_AndTheFileEndBounds()
    {
        Assert.Equal([(0L, 4096), (3 * 4096L, Block - 3 * 4096)], PageCacheFiller.Neighbours(5000, 4000, 10 * Block).ToArray());
        Assert.Equal([(Block + 4096L, 5000)], PageCacheFiller.Neighbours(Block, 4096, Block + 9096).ToArray());
        Assert.Empty(PageCacheFiller.Neighbours(Block, 4096, Block + 100));
    }

    [Fact]
    public void LargeOrEmptyReadsOrReadsPastTheEndPushNothing()
    {
        Assert.Empty(PageCacheFiller.Neighbours(0, Block, 10 * Block));
        Assert.Empty(PageCacheFiller.Neighbours(0, 0, 10 * Block));
        Assert.Empty(PageCacheFiller.Neighbours(20 * Block, 4096, 10 * Block));
    }
}
