using BigFS.Client;
using BigFS.Core;
using BigFS.Protocol;

namespace BigFS.Data.Tests;

public class CachedLayoutWindowTests
{
    private static CachedLayoutWindow Window(long start, long length, params (long Offset, long Length, string Chunk)[] extents)
    {
        var reply = new LayoutReply();
        foreach (var (offset, len, chunk) in extents)
        {
            reply.Extents.Add(new Extent { FileOffset = (ulong)offset, Length = (ulong)len, ChunkId = chunk, ChunkOffset = 7 });
            if (reply.Chunks.All(c => c.ChunkId != chunk))
                reply.Chunks.Add(new ChunkLocation { ChunkId = chunk, Copies = { new ChunkCopy { NodeId = "n-" + chunk } } });
        }
        return new CachedLayoutWindow(start, length, reply);
    }

    [Fact]
    public void Overlapping_FindsAndClipsOnlyTheExtentsInRange()
    {
        var extents = Enumerable.Range(0, 1000).Select(i => (i * 100L, 50L, $"c{i % 3}")).ToArray();
        var window = Window(0, 1 << 20, extents);

        var found = window.Overlapping(10_020, 10_230).ToList();

        Assert.Equal([new FileExtent(10_020, 30, "c1", 27), new FileExtent(10_100, 50, "c2", 7), new FileExtent(10_200, 30, "c0", 7)], found);
        Assert.Equal("n-c2", Assert.Single(window.CopiesOf("c2")!).NodeId);
        Assert.Null(window.CopiesOf("missing"));
    }

    [Fact]
    public void ExtentsAreClippedToTheWindow()
    {
        var window = Window(1000, 1000, (500, 1000, "a"), (1900, 500, "b"));

        Assert.Equal([new FileExtent(1000, 500, "a", 507), new FileExtent(1900, 100, "b", 7)], window.Extents);
    }
}
