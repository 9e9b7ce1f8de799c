namespace BigFS.Fuse.Tests;

/// <summary>IFuseGatherRead: a READ answered with one writev from the filesystem's own buffers.</summary>
public class GatherReadTests
{
    /// <summary>A 300,000-byte file held as 5 separate 60,000-byte buffers; READs below 10,000 take the ordinary path.</summary>
    private sealed class SegmentedFs : IFuseFileSystem, IFuseGatherRead
    {
        public const int Piece = 60_000, Pieces = 5, Size = Piece * Pieces;
        public readonly byte[][] Buffers = Enumerable.Range(0, Pieces).Select(i => Enumerable.Repeat((byte)('a' + i), Piece).ToArray()).ToArray();
        public int Gathered, Released, Copied;

        private static FuseAttr FileAttr() => new() { Ino = 2, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Size = Size };

        public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) =>
            new(ino == 1 ? new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR | 0x1ED, Nlink = 2 } : FileAttr());

        public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name) =>
            new(name == "file" ? new FuseEntry(2, FileAttr()) : new FuseError(LinuxErrno.ENOENT));

        public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) => new(new FuseOpenResult(1));

        public bool TryReadGather(FuseRequestContext ctx, ulong ino, ulong fh, long offset, int size, out FuseGatherData data)
        {
            data = default;
            if (offset < 10_000) return false;
            var segments = new List<ReadOnlyMemory<byte>>();
            for (long at = offset, end = Math.Min(Size, offset + size); at < end;)
            {
                var piece = (int)(at / Piece);
                var from = (int)(at % Piece);
                var n = (int)Math.Min(Piece - from, end - at);
                segments.Add(Buffers[piece].AsMemory(from, n));
                at += n;
            }
            Interlocked.Increment(ref Gathered);
            data = new FuseGatherData(segments, new Release(this));
            return true;
        }

        private sealed class Release(SegmentedFs fs) : IDisposable
        {
            public void Dispose() => Interlocked.Increment(ref fs.Released);
        }

        public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
        {
            Interlocked.Increment(ref Copied);
            var n = (int)Math.Max(0, Math.Min(buffer.Length, Size - offset));
            for (var i = 0; i < n; i++)
                buffer.Span[i] = Buffers[(offset + i) / Piece][(offset + i) % Piece];
            return new((ReadOnlyMemory<byte>)buffer[..n]);
        }
    }

    [Fact]
    public async Task Gathered_replies_read_back_as_the_concatenated_buffers_and_release_their_owner()
    {
        var fs = new SegmentedFs();
        await using var m = await TestMount.StartAsync(fs);
        var whole = fs.Buffers.SelectMany(b => b).ToArray();
        // No kernel read-ahead: each read below is one READ of its own pages.
        using (var handle = File.OpenHandle(m["file"], FileMode.Open, FileAccess.Read, options: FileOptions.RandomAccess))
        {
            var head = new byte[4096];
            Assert.Equal(head.Length, RandomAccess.Read(handle, head, 0));
            Assert.Equal(whole.AsSpan(0, head.Length).ToArray(), head);
            Assert.Equal(1, fs.Copied);

            var middle = new byte[150_000];   // spans four of the buffers
            Assert.Equal(middle.Length, RandomAccess.Read(handle, middle, 100_000));
            Assert.Equal(whole.AsSpan(100_000, middle.Length).ToArray(), middle);
            Assert.True(fs.Gathered > 0, "no READ took the gather path");
        }
        Assert.Equal(whole, await File.ReadAllBytesAsync(m["file"]));
        await Poll.UntilAsync(() => fs.Released == fs.Gathered, TimeSpan.FromSeconds(5), "every gathered reply's owner released");
    }
}
