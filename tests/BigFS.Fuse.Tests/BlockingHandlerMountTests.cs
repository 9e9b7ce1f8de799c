using System.Text;

namespace BigFS.Fuse.Tests;

/// <summary>Handlers that block their reader thread synchronously (what the README tells filesystems
/// not to do) must not stall the session: another reader must serve other requests, INTERRUPT and
/// FORGET meanwhile.</summary>
public class BlockingHandlerMountTests
{
    /// <summary>"block" reads block the reader thread until released or interrupted; "free" reads at once.</summary>
    private sealed class BlockingFs : IFuseFileSystem
    {
        public readonly ManualResetEventSlim Release = new(false);
        public int Blocked, Interrupted;

        private static FuseAttr Attr(ulong ino) => ino == 1
            ? new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR | 0x1ED, Nlink = 2 }
            : new FuseAttr { Ino = ino, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Size = 4 };

        public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) => new(Attr(ino));

        public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name) =>
            new(name switch
            {
                "block" => new FuseEntry(2, Attr(2)),
                "free" => new FuseEntry(3, Attr(3)),
                _ => new FuseError(LinuxErrno.ENOENT),
            });

        public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) =>
            new(new FuseOpenResult(1, Protocol.FuseOpenFlags.DirectIo));

        public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
        {
            if (offset >= 4) return new(ReadOnlyMemory<byte>.Empty);
            if (ino == 2)
            {
                Interlocked.Increment(ref Blocked);
                try
                {
                    Release.Wait(ctx.CancellationToken); // blocks this reader thread: no await
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref Interrupted);
                    return new(new FuseError(LinuxErrno.EINTR));
                }
            }
            Encoding.ASCII.GetBytes(ino == 2 ? "blk\n" : "ok!\n").CopyTo(buffer.Span);
            return new((ReadOnlyMemory<byte>)buffer[..4]);
        }
    }

    [Fact]
    public async Task A_handler_blocking_its_thread_does_not_stall_other_requests_or_interrupts()
    {
        var fs = new BlockingFs();
        // Two readers: the blocked one and exactly one more.
        await using var m = await TestMount.StartAsync(fs, new FuseMountOptions { AllowOther = true, ReaderThreads = 2 });

        var blockedCat = Task.Run(() => Shell.Run($"cat '{m["block"]}'"));
        await Poll.UntilAsync(() => Volatile.Read(ref fs.Blocked) == 1, TimeSpan.FromSeconds(20), "the READ to block its reader");
        for (int i = 0; i < 20; i++) Assert.Equal("ok!", Shell.Out($"cat '{m["free"]}'"));
        Assert.Equal("directory", Shell.Out($"stat -c %F '{m.Path}'"));
        Assert.False(blockedCat.IsCompleted);

        fs.Release.Set();
        Assert.Equal("blk\n", (await blockedCat.WaitAsync(TimeSpan.FromSeconds(20))).Out);
        fs.Release.Reset();

        // Blocked again: the INTERRUPT for it can only be read by the other reader.
        var r = Shell.Run($"timeout -s INT 1 cat '{m["block"]}'", check: false);
        Assert.NotEqual(0, r.Exit);
        await Poll.UntilAsync(() => Volatile.Read(ref fs.Interrupted) == 1, TimeSpan.FromSeconds(20), "the blocked READ to be interrupted");
        Assert.Equal("ok!", Shell.Out($"cat '{m["free"]}'"));
    }
}
