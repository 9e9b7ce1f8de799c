using BigFS.Client;
using BigFS.Core;
using BigFS.Protocol;
using BigFS.Storage;

namespace BigFS.Data.Tests;

public class ChunkFileHeaderTests
{
    [Fact]
    public void RoundTrips_AndPutsDataOnA4KiBBoundary()
    {
        var data = ChunkUploads.Random(3 * ChunkChecksum.BlockSize + 1, 1);
        var header = new ChunkFileHeader(data.Length, ChunkChecksum.Compute(data), 1234, ChunkChecksum.ComputeBlocks(data));

        var bytes = header.Encode();

        Assert.Equal(4096, bytes.Length);
        Assert.True(ChunkFileHeader.TryDecode(bytes, out var decoded, out _));
        Assert.Equal((header.Size, header.Checksum, header.CreatedUnixMs), (decoded!.Size, decoded.Checksum, decoded.CreatedUnixMs));
        Assert.Equal(header.BlockChecksums, decoded.BlockChecksums);
        Assert.Equal(12288, ChunkFileHeader.DataOffsetFor(LocalChunkStore.MaxChunkSize)); // 1024 block checksums
    }

    [Fact]
    public void RejectsBadMagicAndInconsistentSizes()
    {
        var header = new ChunkFileHeader(10, 1, 0, [2]).Encode();
        var badMagic = (byte[])header.Clone();
        badMagic[0] ^= 1;
        var badCount = (byte[])header.Clone();
        badCount[8] = 5;

        Assert.False(ChunkFileHeader.TryDecode(badMagic, out _, out var e1));
        Assert.False(ChunkFileHeader.TryDecode(badCount, out _, out var e2));
        Assert.False(ChunkFileHeader.TryDecode(header.AsSpan(0, 20), out _, out _));
        Assert.Contains("magic", e1);
        Assert.Contains("block count", e2);
    }
}

public class NodeSelectorTests
{
    private static WritableNode Node(string id, ulong freeMiB) => new() { NodeId = id, Address = "http://" + id, FreeBytes = freeMiB << 20 };

    [Fact]
    public void PrefersNodesWithMoreFreeSpace_AndAvoidsExcludedOnes()
    {
        var nodes = new[] { Node("a", 1000), Node("b", 9000), Node("c", 5000) };
        var random = new Random(1);
        var counts = new Dictionary<string, int> { ["a"] = 0, ["b"] = 0, ["c"] = 0 };

        for (var i = 0; i < 3000; i++)
            counts[NodeSelector.Pick(nodes, new HashSet<string> { "c" }, random)!.NodeId]++;

        Assert.Equal(0, counts["c"]);
        Assert.InRange(counts["b"], counts["a"] * 5, counts["a"] * 15); // ~9:1
    }

    [Fact]
    public void FallsBackToExcludedNodes_WhenNothingElseIsLeft_AndNullWithoutNodes()
    {
        var nodes = new[] { Node("a", 1) };

        Assert.Equal("a", NodeSelector.Pick(nodes, new HashSet<string> { "a" }, new Random(1))!.NodeId);
        Assert.Null(NodeSelector.Pick([], new HashSet<string>(), new Random(1)));
    }
}

public class WriteBufferBudgetTests
{
    [Fact]
    public async Task WaitersAreServedInOrder_WhenMemoryIsReleased()
    {
        var budget = new WriteBufferBudget(100);
        Assert.True(budget.TryAcquire(80));
        var first = budget.AcquireAsync(50, CancellationToken.None);
        var second = budget.AcquireAsync(10, CancellationToken.None);

        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted); // would fit, but waits its turn
        Assert.False(budget.TryAcquire(1));

        budget.Release(80);
        await Task.WhenAll(first, second);
        Assert.Equal(60, budget.Used);
        Assert.True(budget.HighWater <= 100);
    }

    [Fact]
    public async Task OversizedRequest_IsGrantedOnlyWhenNothingElseIsHeld()
    {
        var budget = new WriteBufferBudget(100);
        Assert.True(budget.TryAcquire(10));
        var big = budget.AcquireAsync(500, CancellationToken.None);
        Assert.False(big.IsCompleted);

        budget.Release(10);
        await big;

        Assert.Equal(500, budget.Used);
    }

    [Fact]
    public async Task CancelledWaiter_LeavesTheQueue()
    {
        var budget = new WriteBufferBudget(100);
        budget.TryAcquire(100);
        using var cts = new CancellationTokenSource();
        var waiting = budget.AcquireAsync(50, cts.Token);

        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        budget.Release(100);

        Assert.Equal(0, budget.Used);
        Assert.True(budget.TryAcquire(100));
    }
}
