using System.Text;

namespace BigFS.Fuse.Tests;

/// <summary>FUSE_NOTIFY_STORE: data pushed into the kernel's page cache is what reads return, without a READ.</summary>
public class NotifyStoreTests
{
    /// <summary>One 8 KiB file; counts the READs that reach it.</summary>
    private sealed class CountingFs : IFuseFileSystem
    {
        public const int Size = 8192;
        public int Reads;
        public IFuseNotifier? Notifier;

        public void Init(FuseConnectionInfo connection) => Notifier = connection.Notifier;

        private static FuseAttr FileAttr() => new() { Ino = 2, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Size = Size };

        public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) =>
            new(ino == 1 ? new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR | 0x1ED, Nlink = 2 } : FileAttr());

        public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name) =>
            new(name == "file" ? new FuseEntry(2, FileAttr()) { EntryTimeout = TimeSpan.FromHours(1), AttrTimeout = TimeSpan.FromHours(1) } : new FuseError(LinuxErrno.ENOENT));

        public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) =>
            new(new FuseOpenResult(1, Protocol.FuseOpenFlags.KeepCache));

        public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
        {
            Interlocked.Increment(ref Reads);
            int n = (int)Math.Max(0, Math.Min(buffer.Length, Size - offset));
            buffer.Span[..n].Fill((byte)'r');
            return new((ReadOnlyMemory<byte>)buffer[..n]);
        }
    }

    [Fact]
    public async Task Stored_pages_are_read_from_the_page_cache()
    {
        var fs = new CountingFs();
        await using var m = await TestMount.StartAsync(fs, new FuseMountOptions { AttrTimeout = TimeSpan.FromHours(1), EntryTimeout = TimeSpan.FromHours(1) });
        Assert.True(File.Exists(m["file"])); // the kernel knows the inode now
        var stored = Encoding.ASCII.GetBytes(new string('s', CountingFs.Size));
        Assert.Equal(0, fs.Notifier!.Store(2, 0, stored));

        Assert.Equal(new string('s', CountingFs.Size), await File.ReadAllTextAsync(m["file"]));
        Assert.Equal(0, fs.Reads);
        Assert.Equal(CountingFs.Size, new FileInfo(m["file"]).Length);
    }
}
