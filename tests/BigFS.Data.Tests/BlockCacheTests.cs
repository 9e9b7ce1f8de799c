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
        Assert.True(cache.TryCopy("a", 0, 0, static (_, _) => { })); // now most recent

        cache.Add("b", 0, new byte[100]);

        Assert.True(cache.Bytes <= 300);
        Assert.False(cache.Contains("a", 1));
        Assert.True(cache.Contains("a", 0));
        Assert.True(cache.Contains("b", 0));
    }

    [Fact]
    public void EvictedPooledBlocksAreRentedAgain_DuplicatesGoStraightBack()
    {
        var cache = new BlockCache(2 * BlockCache.BlockSize);
        var first = cache.RentBlock();
        var second = cache.RentBlock();
        var third = cache.RentBlock();
        first[0] = 1;
        cache.Add("a", 0, first, first);
        cache.Add("a", 1, second, second);
        cache.Add("a", 2, third, third); // evicts block 0: its array returns to the pool

        Assert.Same(first, cache.RentBlock());
        var duplicate = cache.RentBlock();
        cache.Add("a", 2, duplicate, duplicate); // already cached: the array goes back at once
        Assert.Same(duplicate, cache.RentBlock());
        byte seen = 0;
        Assert.True(cache.TryCopy("a", 1, 0, (data, _) => seen = (byte)(data.Length == BlockCache.BlockSize ? 1 : 0)));
        Assert.Equal(1, seen);
    }

    [Fact]
    public void ALeasedBlockEvictedMeanwhileIsRecycledOnlyWhenItsLastLeaseEnds()
    {
        var cache = new BlockCache(BlockCache.BlockSize);
        var first = cache.RentBlock();
        first[0] = 7;
        cache.Add("a", 0, first, first);
        Assert.True(cache.TryLease("a", 0, out var one));
        Assert.True(cache.TryLease("a", 0, out var two));
        var second = cache.RentBlock();
        cache.Add("a", 1, second, second); // evicts block 0, still leased twice

        Assert.False(cache.Contains("a", 0));
        Assert.NotSame(first, cache.RentBlock());
        cache.Unlease(one);
        Assert.Equal(7, two.Data.Span[0]);
        Assert.NotSame(first, cache.RentBlock());
        cache.Unlease(two);
        Assert.Same(first, cache.RentBlock()); // back in the pool now
        Assert.False(cache.TryLease("a", 0, out _));
    }

    [Fact]
    public void ZeroCapacity_CachesNothing()
    {
        var cache = new BlockCache(0);
        cache.Add("a", 0, new byte[10]);
        Assert.False(cache.Contains("a", 0));
    }
}
