using System.Diagnostics;
using System.Text;
using BigFS.Fuse.MemoryFs;
using BigFS.Fuse.Mounting;

namespace BigFS.Fuse.Tests;

/// <summary>Mounting, unmounting, stale mounts, fusermount3, ENOSYS defaults, notifications, interrupts.</summary>
public class MountLifecycleTests
{
    [Fact]
    public async Task Unmount_while_idle_ends_the_session()
    {
        Prerequisites.Require();
        var path = TestMount.NewMountPoint();
        try
        {
            var mount = await FuseMount.MountAsync(path, new MemoryFileSystem());
            Assert.True(MountInfo.IsMounted(path));
            await File.WriteAllTextAsync(Path.Combine(path, "f"), "x");
            await mount.UnmountAsync();
            await mount.Completion.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(MountInfo.IsMounted(path));
            Assert.False(File.Exists(Path.Combine(path, "f")));
        }
        finally { Directory.Delete(path); }
    }

    [Fact]
    public async Task Unmount_with_open_files_detaches_and_ends_when_they_close()
    {
        Prerequisites.Require();
        var path = TestMount.NewMountPoint();
        try
        {
            var mount = await FuseMount.MountAsync(path, new MemoryFileSystem());
            await File.WriteAllTextAsync(Path.Combine(path, "open"), "readable after detach");
            var stream = new FileStream(Path.Combine(path, "open"), FileMode.Open, FileAccess.Read);
            await mount.UnmountAsync(TimeSpan.FromMilliseconds(500));
            Assert.False(MountInfo.IsMounted(path)); // gone from the namespace at once
            Assert.False(mount.Completion.IsCompleted); // but still serving the open file
            using (var reader = new StreamReader(stream)) Assert.Equal("readable after detach", await reader.ReadToEndAsync());
            await mount.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally { Directory.Delete(path); }
    }

    [Fact]
    public async Task Killed_daemon_leaves_a_stale_mount_that_the_next_mount_replaces()
    {
        Prerequisites.Require();
        var path = TestMount.NewMountPoint();
        var dll = Path.Combine(AppContext.BaseDirectory, "BigFS.Fuse.MemoryFs.dll");
        Assert.True(File.Exists(dll), $"{dll} missing");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add(path);
        using var daemon = Process.Start(psi)!;
        try
        {
            var line = await daemon.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal($"mounted {path}", line);
            await File.WriteAllTextAsync(Path.Combine(path, "before"), "x");
            daemon.Kill();
            Assert.True(daemon.WaitForExit(30_000));
            await Poll.UntilAsync(() => Native_StatErrno(path) == Posix.ENOTCONN, TimeSpan.FromSeconds(10), "the mount to go stale");
            Assert.Contains("not connected", Shell.Run($"ls '{path}'", check: false).Err);

            await using var m = await FuseMount.MountAsync(path, new MemoryFileSystem());
            Assert.Equal(0, Native_StatErrno(path));
            await File.WriteAllTextAsync(Path.Combine(path, "after"), "fresh");
            Assert.Equal(["after"], Directory.EnumerateFileSystemEntries(path).Select(Path.GetFileName));
            await m.UnmountAsync();
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            Posix.umount2(path, 2);
            Directory.Delete(path);
        }
    }

    private static int Native_StatErrno(string path) => Posix.access(path, 0) == 0 ? 0 : Posix.Errno;

    [Fact]
    public async Task Mount_through_fusermount3_with_fd_passing()
    {
        await using var m = await TestMount.StartAsync(options: new FuseMountOptions { UseFusermount = true, FsName = "viafusermount", Subtype = "memfm" });
        Assert.Equal("fuse.memfm", Shell.Out($"findmnt -n -o FSTYPE '{m.Path}'"));
        await File.WriteAllTextAsync(m["f"], "over fusermount");
        Assert.Equal("over fusermount", await File.ReadAllTextAsync(m["f"]));
    }

    [Fact]
    public async Task Read_only_mount_rejects_writes()
    {
        await using var m = await TestMount.StartAsync(options: new FuseMountOptions { ReadOnly = true });
        var r = Shell.Run($"touch '{m["nope"]}'", check: false);
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("Read-only file system", r.Err);
        Assert.Contains("ro", Shell.Out($"findmnt -n -o OPTIONS '{m.Path}'").Split(','));
    }

    [Fact]
    public async Task Read_ahead_is_raised_to_one_MiB()
    {
        await using var m = await TestMount.StartAsync();
        var device = MountInfo.FindDevice(m.Path);
        Assert.NotNull(device);
        Assert.Equal("1024", (await File.ReadAllTextAsync($"/sys/class/bdi/{device}/read_ahead_kb")).Trim());
        Assert.Equal(1u << 20, m.Mount.Connection.MaxWrite);
    }

    private sealed class FailingInitFs : IFuseFileSystem
    {
        public void Init(FuseConnectionInfo connection) => throw new InvalidOperationException("cannot start");
    }

    [Fact]
    public async Task Failed_init_fails_the_mount_and_leaves_nothing_mounted()
    {
        Prerequisites.Require();
        var path = TestMount.NewMountPoint();
        try
        {
            var e = await Assert.ThrowsAsync<IOException>(() => FuseMount.MountAsync(path, new FailingInitFs()));
            Assert.Contains("cannot start", e.Message);
            Assert.False(MountInfo.IsMounted(path));
        }
        finally { Directory.Delete(path); }
    }

    /// <summary>Implements only the root's attributes: everything else must come back ENOSYS.</summary>
    private sealed class RootOnlyFs : IFuseFileSystem
    {
        public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) =>
            new(new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR | 0x1ED, Nlink = 2 });
    }

    [Fact]
    public async Task Unimplemented_operations_answer_ENOSYS()
    {
        await using var m = await TestMount.StartAsync(new RootOnlyFs());
        Assert.Contains("Function not implemented", Shell.Run($"mkdir '{m["d"]}'", check: false).Err);
        Assert.Contains("Function not implemented", Shell.Run($"stat '{m["x"]}'", check: false).Err);
        Assert.Equal("directory", Shell.Out($"stat -c %F '{m.Path}'"));
    }

    /// <summary>One file whose content and one name the test changes behind the kernel's cache.</summary>
    private sealed class MutableFs : IFuseFileSystem
    {
        public volatile string Content = "version-1";
        public volatile bool NamePresent = true;
        public IFuseNotifier? Notifier;

        public void Init(FuseConnectionInfo connection) => Notifier = connection.Notifier;

        private static FuseAttr FileAttr(int size) => new() { Ino = 2, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Size = (ulong)size };

        public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) =>
            new(ino == 1 ? new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR | 0x1ED, Nlink = 2 } : FileAttr(Content.Length));

        public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name) =>
            new(name == "file" && NamePresent
                ? new FuseEntry(2, FileAttr(Content.Length)) { EntryTimeout = TimeSpan.FromHours(1), AttrTimeout = TimeSpan.FromHours(1) }
                : new FuseError(LinuxErrno.ENOENT));

        public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) =>
            new(new FuseOpenResult(1, Protocol.FuseOpenFlags.KeepCache));

        public ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
        {
            var bytes = Encoding.ASCII.GetBytes(Content);
            int n = (int)Math.Max(0, Math.Min(buffer.Length, bytes.Length - offset));
            bytes.AsSpan((int)Math.Min(offset, bytes.Length), n).CopyTo(buffer.Span);
            return new((ReadOnlyMemory<byte>)buffer[..n]);
        }
    }

    [Fact]
    public async Task Invalidate_inode_and_entry_notifications_reach_the_kernel()
    {
        var fs = new MutableFs();
        await using var m = await TestMount.StartAsync(fs, new FuseMountOptions { AttrTimeout = TimeSpan.FromHours(1), EntryTimeout = TimeSpan.FromHours(1) });
        Assert.Equal("version-1", await File.ReadAllTextAsync(m["file"]));
        fs.Content = "version-2"; // same length: only the page cache can hide it
        Assert.Equal("version-1", await File.ReadAllTextAsync(m["file"]));
        Assert.Equal(0, m.Mount.InvalidateInode(2));
        Assert.Equal("version-2", await File.ReadAllTextAsync(m["file"]));

        fs.NamePresent = false;
        Assert.True(File.Exists(m["file"])); // cached dentry
        Assert.Equal(0, fs.Notifier!.InvalidateEntry(1, "file")); // the filesystem's own handle, from Init
        Assert.False(File.Exists(m["file"]));
    }

    /// <summary>A READ that only finishes when cancelled: exercises FUSE_INTERRUPT.</summary>
    private sealed class StuckReadFs : IFuseFileSystem
    {
        public int Interrupted;

        public ValueTask<FuseResult<FuseAttr>> GetAttrAsync(FuseRequestContext ctx, ulong ino, ulong? fh) =>
            new(ino == 1 ? new FuseAttr { Ino = 1, Mode = ModeBits.S_IFDIR | 0x1ED, Nlink = 2 } : new FuseAttr { Ino = 2, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Size = 10 });

        public ValueTask<FuseResult<FuseEntry>> LookupAsync(FuseRequestContext ctx, ulong parent, string name) =>
            new(name == "stuck" ? new FuseEntry(2, new FuseAttr { Ino = 2, Mode = ModeBits.S_IFREG | 0x1A4, Nlink = 1, Size = 10 }) : new FuseError(LinuxErrno.ENOENT));

        public ValueTask<FuseResult<FuseOpenResult>> OpenAsync(FuseRequestContext ctx, ulong ino, int flags) =>
            new(new FuseOpenResult(1, Protocol.FuseOpenFlags.DirectIo));

        public async ValueTask<FuseResult<ReadOnlyMemory<byte>>> ReadAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, Memory<byte> buffer)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref Interrupted);
            }
            return new FuseError(LinuxErrno.EINTR);
        }
    }

    [Fact]
    public async Task Interrupt_cancels_the_handlers_token()
    {
        var fs = new StuckReadFs();
        await using var m = await TestMount.StartAsync(fs);
        var r = Shell.Run($"timeout -s INT 1 cat '{m["stuck"]}'", check: false);
        Assert.NotEqual(0, r.Exit);
        await Poll.UntilAsync(() => Volatile.Read(ref fs.Interrupted) == 1, TimeSpan.FromSeconds(20), "the READ to be interrupted");
        Assert.Equal("directory", Shell.Out($"stat -c %F '{m.Path}'")); // the session carries on
    }
}
