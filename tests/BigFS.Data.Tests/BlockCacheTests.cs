using BigFS.Client;

namespace BigFS.Data.Tests;

public class BlockCacheTests
{
    [Fact]
    public void EvictsLeastRecentlyUsed_AndStaysWithinCapacity()
    {
        var cache = new BlockCache(3 * 100);
        cache.Add("a", 0, new byte[100]);
        cache.Add("a", 1, new byte[100]);
        cache.Add("a", 2, new byte[100]);
        Assert.True(cache.TryGet("a", 0, out _)); // now most recent

        cache.Add("b", 0, new byte[100]);

        Assert.True(cache.Bytes <= 300);
        Assert.False(cache.TryGet("a", 1, out _));
        Assert.True(cache.TryGet("a", 0, out _));
        Assert.True(cache.TryGet("b", 0, out _));
    }

    [Fact]
    public void ZeroCapacity_CachesNothing()
    {
        var cache = new BlockCache(0);
        cache.Add("a", 0, new byte[10]);
        Assert.False(cache.TryGet("a", 0, out _));
    }
}
