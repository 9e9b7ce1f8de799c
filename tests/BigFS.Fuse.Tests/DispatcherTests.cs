using System.Runtime.InteropServices;
using System.Text;
using BigFS.Fuse.Protocol;
using BigFS.Fuse.Session;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Fuse.Tests;

/// <summary>The dispatcher without a kernel: requests are fed as bytes, replies read back from a pipe.</summary>
public sealed partial class DispatcherTests : IDisposable
{
    private readonly int _readEnd, _writeEnd;
    private readonly FuseChannel _channel;

    [LibraryImport("libc", SetLastError = true)] private static unsafe partial int pipe(int* fds);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial nint read(int fd, byte* buf, nuint count);
    [LibraryImport("libc")] private static partial int close(int fd);

    public unsafe DispatcherTests()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, pipe(fds));
        (_readEnd, _writeEnd) = (fds[0], fds[1]);
        _channel = new FuseChannel(_writeEnd);
    }

    public void Dispose()
    {
        _channel.Dispose();
        close(_readEnd);
    }

    private sealed class FakeFs : IFuseFileSystem
    {
        public readonly List<ulong> Forgotten = [];
        public TaskCompletionSource<FuseResult<FuseEntry>>? Pending;

        public string? LastLookup;

        public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name)
        {
            LastLookup = name;
            if (name == "boom") throw new InvalidOperationException("handler bug");
            if (name == "later") return new(Pending!.Task);
            return new(name == "known" ? new FuseEntry(5, new FuseAttr { Ino = 5, Mode = ModeBits.S_IFREG, Uid = ctx.Uid }) : new FuseError(LinuxErrno.ENOENT));
        }

        public void Forget(ulong ino) => Forgotten.Add(ino);

        public (uint Mode, uint Umask)? LastMkNod;

        public ValueTask<FuseResult<FuseEntry>> MkNodAsync(FuseRequestContext ctx, ulong parent, string name, uint mode, uint rdev)
        {
            LastMkNod = (mode, ctx.Umask);
            return new(new FuseError(LinuxErrno.EPERM));
        }
    }

    private (FuseDispatcher Dispatcher, LookupCounter Counts, FakeFs Fs) Create()
    {
        var counts = new LookupCounter();
        var fs = new FakeFs();
        return (new FuseDispatcher(fs, new FuseMountOptions(), counts, NullLogger.Instance), counts, fs);
    }

    private FuseRequest Request<T>(FuseOpcode op, ulong unique, ulong nodeId, T body, string? name = null) where T : unmanaged
    {
        var bytes = new List<byte>(new byte[40]);
        bytes.AddRange(MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in body)).ToArray());
        if (name is not null) { bytes.AddRange(Encoding.UTF8.GetBytes(name)); bytes.Add(0); }
        var raw = bytes.ToArray();
        var header = new FuseInHeader { Len = (uint)raw.Length, Opcode = (uint)op, Unique = unique, NodeId = nodeId, Uid = 1000, Gid = 1000, Pid = 1 };
        MemoryMarshal.Write(raw, in header);
        var req = new FuseRequest(_channel, 8192);
        raw.CopyTo(req.Buffer, 0);
        Assert.True(req.Begin(raw.Length));
        return req;
    }

    private FuseRequest Lookup(ulong unique, string name)
    {
        var req = Request(FuseOpcode.Lookup, unique, 1, (byte)0, null);
        // LOOKUP has no fixed part: rebuild with just the name.
        var raw = new byte[40 + Encoding.UTF8.GetByteCount(name) + 1];
        Encoding.UTF8.GetBytes(name, raw.AsSpan(40));
        var header = new FuseInHeader { Len = (uint)raw.Length, Opcode = (uint)FuseOpcode.Lookup, Unique = unique, NodeId = 1, Uid = 1000, Gid = 1000 };
        MemoryMarshal.Write(raw, in header);
        raw.CopyTo(req.Buffer, 0);
        Assert.True(req.Begin(raw.Length));
        return req;
    }

    private unsafe (FuseOutHeader Header, byte[] Payload) ReadReply()
    {
        var buffer = new byte[4096];
        nint n;
        fixed (byte* p = buffer) n = read(_readEnd, p, (nuint)buffer.Length);
        Assert.True(n >= 16, "no reply written");
        var header = MemoryMarshal.Read<FuseOutHeader>(buffer);
        Assert.Equal((uint)n, header.Len);
        return (header, buffer[16..(int)n]);
    }

    [Fact]
    public async Task Lookup_reply_carries_the_entry_and_counts_a_reference_until_forget()
    {
        var (d, counts, fs) = Create();
        await d.HandleAsync(Lookup(10, "known"));
        var (h, payload) = ReadReply();
        Assert.Equal(10UL, h.Unique);
        Assert.Equal(0, h.Error);
        var entry = MemoryMarshal.Read<FuseEntryOut>(payload);
        Assert.Equal(5UL, entry.NodeId);
        Assert.Equal(1000u, entry.Attr.Uid); // the caller's credentials reached the filesystem
        await d.HandleAsync(Lookup(11, "known"));
        ReadReply();
        Assert.Equal(2UL, counts.Get(5));

        await d.HandleAsync(Request(FuseOpcode.Forget, 12, 5, new FuseForgetIn { NLookup = 1 }));
        Assert.Empty(fs.Forgotten);
        var batch = new byte[8 + 16];
        MemoryMarshal.Write(batch, new FuseBatchForgetIn { Count = 1 });
        MemoryMarshal.Write(batch.AsSpan(8), new FuseForgetOne { NodeId = 5, NLookup = 1 });
        var req = Request(FuseOpcode.BatchForget, 13, 0, new FuseBatchForgetIn { Count = 1 });
        var raw = new byte[40 + batch.Length];
        MemoryMarshal.Write(raw, new FuseInHeader { Len = (uint)raw.Length, Opcode = (uint)FuseOpcode.BatchForget, Unique = 13 });
        batch.CopyTo(raw, 40);
        raw.CopyTo(req.Buffer, 0);
        Assert.True(req.Begin(raw.Length));
        await d.HandleAsync(req);
        Assert.Equal([5UL], fs.Forgotten);
        Assert.Equal(0UL, counts.Get(5));
    }

    [Fact]
    public async Task Errors_unknown_opcodes_bad_names_and_throwing_handlers_get_errno_replies()
    {
        var (d, _, _) = Create();
        await d.HandleAsync(Lookup(1, "missing"));
        Assert.Equal(-LinuxErrno.ENOENT, ReadReply().Header.Error);
        await d.HandleAsync(Request(FuseOpcode.Bmap, 2, 1, 0L));
        Assert.Equal(-LinuxErrno.ENOSYS, ReadReply().Header.Error);
        await d.HandleAsync(Request(FuseOpcode.MkDir, 3, 1, new FuseMkDirIn { Mode = 0x1ED }, "d"));
        Assert.Equal(-LinuxErrno.ENOSYS, ReadReply().Header.Error); // not implemented by the filesystem
        await d.HandleAsync(Lookup(4, "boom"));
        Assert.Equal(-LinuxErrno.EIO, ReadReply().Header.Error);
        await d.HandleAsync(Lookup(5, ""));
        Assert.Equal(-LinuxErrno.EINVAL, ReadReply().Header.Error);
    }

    [Fact]
    public async Task A_name_that_is_not_UTF8_reaches_the_filesystem_byte_for_byte()
    {
        var (d, _, fs) = Create();
        var latin1 = Lookup(1, "cafe");
        latin1.Buffer[43] = 0xE9;   // "café" in Latin-1: not UTF-8, still a valid Linux name
        await d.HandleAsync(latin1);
        Assert.Equal(-LinuxErrno.ENOENT, ReadReply().Header.Error);
        Assert.Equal([0x63, 0x61, 0x66, 0xE9], FileNameEncoding.GetBytes(fs.LastLookup!));
    }

    [Fact]
    public async Task The_umask_reaches_the_filesystem_only_when_it_applies_it()
    {
        var (d, _, fs) = Create();
        var mknod = new FuseMkNodIn { Mode = ModeBits.S_IFIFO | 0x1B6, Umask = 0x12 };
        await d.HandleAsync(Request(FuseOpcode.MkNod, 1, 1, mknod, "p"));
        ReadReply();
        Assert.Equal((ModeBits.S_IFIFO | 0x1B6u, 0u), fs.LastMkNod);   // the kernel applied it already

        d.Flags = FuseInitFlags.PosixAcl | FuseInitFlags.DontMask;
        await d.HandleAsync(Request(FuseOpcode.MkNod, 2, 1, mknod, "p"));
        ReadReply();
        Assert.Equal((ModeBits.S_IFIFO | 0x1B6u, 0x12u), fs.LastMkNod);
    }

    [Fact]
    public async Task Asynchronous_handler_replies_from_the_completing_thread()
    {
        var (d, counts, fs) = Create();
        fs.Pending = new TaskCompletionSource<FuseResult<FuseEntry>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = d.HandleAsync(Lookup(21, "later"));
        Assert.False(handled.IsCompleted);
        fs.Pending.SetResult(new FuseEntry(9, new FuseAttr { Ino = 9, Mode = ModeBits.S_IFDIR }));
        await handled;
        var (h, payload) = ReadReply();
        Assert.Equal(21UL, h.Unique);
        Assert.Equal(9UL, MemoryMarshal.Read<FuseEntryOut>(payload).NodeId);
        Assert.Equal(1UL, counts.Get(9));
    }

    [Fact]
    public void A_request_can_be_answered_only_once()
    {
        var req = Lookup(30, "x");
        Assert.Equal(0, req.ReplyError(LinuxErrno.ENOENT));
        ReadReply();
        Assert.Throws<InvalidOperationException>(() => req.ReplyOk());
        req.Reset();
        Assert.True(req.Begin(req.Length)); // reuse for the next request re-arms it
        Assert.Equal(0, req.ReplyOk());
        ReadReply();
    }
}
