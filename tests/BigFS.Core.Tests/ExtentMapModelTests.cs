using BigFS.Core;

namespace BigFS.Core.Tests;

/// <summary>
/// Checks extent splicing against the simplest possible model: a byte array. Each "chunk" is a
/// random byte buffer; reading the extent map back must give exactly the model's bytes.
/// </summary>
public class ExtentMapModelTests
{
    private const int MaxFile = 1 << 16;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomWritesTruncatesAndPunchesMatchAByteArray(int seed)
    {
        var random = new Random(seed);
        var chunks = new Dictionary<string, byte[]>();
        var map = new ExtentMap();
        var model = new byte[MaxFile];
        long size = 0;

        for (var step = 0; step < 3000; step++)
        {
            var op = random.Next(10);
            if (op < 7)
            {
                var offset = random.Next(MaxFile - 1);
                var length = random.Next(1, Math.Min(4096, MaxFile - offset));
                var chunkData = new byte[length + random.Next(64)];
                random.NextBytes(chunkData);
                var chunkOffset = random.Next(chunkData.Length - length + 1);
                var id = ChunkId.NewRandom().ToString();
                chunks[id] = chunkData;
                map.Write(new FileExtent(offset, length, id, chunkOffset));
                Array.Copy(chunkData, chunkOffset, model, offset, length);
                size = Math.Max(size, offset + length);
            }
            else if (op < 9)
            {
                var newSize = random.Next(MaxFile);
                map.Truncate(newSize);
                if (newSize < size)
                    Array.Clear(model, newSize, (int)(size - newSize));
                size = newSize;
            }
            else
            {
                var start = random.Next(MaxFile);
                var end = Math.Min(MaxFile, start + random.Next(8192));
                map.Clear(start, end);
                Array.Clear(model, start, end - start);
            }

            AssertWellFormed(map);
            if (step % 50 == 0 || step == 2999)
                Assert.Equal(model.AsSpan(0, (int)size).ToArray(), Read(map, chunks, 0, size));
        }

        // Random range reads through Find.
        for (var i = 0; i < 200; i++)
        {
            var start = random.Next((int)Math.Max(1, size));
            var end = Math.Min(size, start + random.Next(10000));
            Assert.Equal(model.AsSpan(start, (int)(end - start)).ToArray(), Read(map, chunks, start, end));
        }
    }

    [Fact]
    public void OverwriteInTheMiddleSplitsWithoutTouchingTheRest()
    {
        var map = new ExtentMap();
        map.Write(new FileExtent(0, 100, "a", 0));
        map.Write(new FileExtent(40, 10, "b", 0));
        Assert.Equal(
            [new FileExtent(0, 40, "a", 0), new FileExtent(40, 10, "b", 0), new FileExtent(50, 50, "a", 50)],
            map.Extents);
    }

    private static void AssertWellFormed(ExtentMap map)
    {
        Assert.Equal(map.Extents.Sum(e => e.Length), map.StoredBytes);
        for (var i = 0; i < map.Extents.Count; i++)
        {
            Assert.True(map.Extents[i].Length > 0);
            if (i > 0)
                Assert.True(map.Extents[i - 1].End <= map.Extents[i].FileOffset);
        }
    }

    private static byte[] Read(ExtentMap map, Dictionary<string, byte[]> chunks, long start, long end)
    {
        var result = new byte[end - start];
        foreach (var e in map.Find(start, end))
            Array.Copy(chunks[e.ChunkId], e.ChunkOffset, result, e.FileOffset - start, e.Length);
        return result;
    }
}
