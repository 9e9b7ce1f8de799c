using System.Runtime.InteropServices;
using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>POSIX corner cases through real syscalls and shell tools on one mount.</summary>
public class PosixCornerCaseTests : IAsyncLifetime
{
    [DllImport("libc", SetLastError = true)]
    private static extern int renameat2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);
    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;

    private MountedCluster _m = null!;
    private string Mnt => _m.MountPoint;

    public async Task InitializeAsync() => _m = await MountedCluster.StartAsync();

    public async Task DisposeAsync() => await _m.DisposeAsync();

    [Fact]
    public async Task RenameOverAnOpenFileKeepsTheOpenHandleReadingTheOldData()
    {
        await File.WriteAllTextAsync($"{Mnt}/target", "old contents");
        await using var open = new FileStream($"{Mnt}/target", FileMode.Open, FileAccess.Read);
        await File.WriteAllTextAsync($"{Mnt}/new", "new contents");
        File.Move($"{Mnt}/new", $"{Mnt}/target", overwrite: true);
        using var reader = new StreamReader(open);
        Assert.Equal("old contents", await reader.ReadToEndAsync());
        Assert.Equal("new contents", await File.ReadAllTextAsync($"{Mnt}/target"));
    }

    [Fact]
    public async Task UnlinkWhileOpenStaysReadableAndWritableUntilLastClose()
    {
        var data = FileHelpers.RandomBytes(6 << 20, seed: 11);
        await File.WriteAllBytesAsync($"{Mnt}/ghost", data);
        var before = await _m.Cluster.StatusAsync();
        await using (var fs = new FileStream($"{Mnt}/ghost", FileMode.Open, FileAccess.ReadWrite))
        {
            File.Delete($"{Mnt}/ghost");
            Assert.False(File.Exists($"{Mnt}/ghost"));
            var back = new byte[data.Length];
            await fs.ReadExactlyAsync(back);
            Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(back));
            fs.Position = data.Length;
            await fs.WriteAsync("tail"u8.ToArray());
            await fs.FlushAsync();
            fs.Position = data.Length;
            var tail = new byte[4];
            await fs.ReadExactlyAsync(tail);
            Assert.Equal("tail"u8.ToArray(), tail);
        }
        // After the last close its space is reclaimed.
        await Poll.UntilAsync(async () => (await _m.Cluster.StatusAsync()).ChunksTotal == 0, TimeSpan.FromSeconds(60), "chunks of the unlinked file collected");
        Assert.True(before.ChunksTotal > 0);
    }

    [Fact]
    public async Task FileUnlinkedWhileStillOpenFromItsCreateStaysUsableUntilClose()
    {
        // The open comes from CREATE (registered by the same CreateNode call), not from a later OPEN.
        var data = FileHelpers.RandomBytes(1 << 20, seed: 12);
        await using (var fs = new FileStream($"{Mnt}/fresh", FileMode.CreateNew, FileAccess.ReadWrite))
        {
            await fs.WriteAsync(data);
            await fs.FlushAsync();
            fs.Flush(flushToDisk: true);
            File.Delete($"{Mnt}/fresh");
            Assert.False(File.Exists($"{Mnt}/fresh"));
            fs.Position = 0;
            var back = new byte[data.Length];
            await fs.ReadExactlyAsync(back);
            Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(back));
            Assert.True((await _m.Cluster.StatusAsync()).ChunksTotal > 0);
        }
        await Poll.UntilAsync(async () => (await _m.Cluster.StatusAsync()).ChunksTotal == 0, TimeSpan.FromSeconds(60), "chunks of the unlinked file collected");
    }

    /// <summary>Python helpers for O_TMPFILE: linkat(fd, "", dir, name, AT_EMPTY_PATH) names an open file.</summary>
    private const string TmpFilePrelude = """
        import ctypes, errno, hashlib, os
        libc = ctypes.CDLL(None, use_errno=True)
        def link_fd(fd, path):
            if libc.linkat(fd, b"", -100, path.encode(), 0x1000) != 0:
                return errno.errorcode[ctypes.get_errno()]
            return "ok"
        """;

    [Fact]
    public async Task AnOTmpFileIsUnnamedUntilLinkatNamesIt()
    {
        var script = TmpFilePrelude + "\n" + $$"""
            d = "{{Mnt}}/tmpdir"
            os.mkdir(d)
            data = os.urandom(3 << 20)
            fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
            st = os.fstat(fd)
            os.write(fd, data)
            os.fsync(fd)
            os.lseek(fd, 0, 0)
            same = os.read(fd, len(data) + 1) == data
            print(st.st_nlink, oct(st.st_mode & 0o777), same, os.listdir(d))
            print(link_fd(fd, d + "/kept"), os.fstat(fd).st_nlink, os.listdir(d))
            os.close(fd)
            print(hashlib.sha256(open(d + "/kept", "rb").read()).hexdigest() == hashlib.sha256(data).hexdigest())
            fd = os.open(d, os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, 0o600)
            print(link_fd(fd, d + "/never"), link_fd(os.open(d + "/kept", os.O_RDONLY), d + "/kept"))
            os.close(fd)
            print(sorted(os.listdir(d)))
            """;
        var lines = (await RunAsync($"umask 022; python3 -c {Quote(script)}")).Trim().Split('\n');
        Assert.Equal(["0 0o640 True []", "ok 1 ['kept']", "True", "ENOENT EEXIST", "['kept']"], lines);
        // Named, it is an ordinary file, also after the kernel's caches are gone.
        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        Assert.Equal(3 << 20, new FileInfo($"{Mnt}/tmpdir/kept").Length);
    }

    [Fact]
    public async Task AnOTmpFileNeverLinkedIsReclaimedAtItsLastClose()
    {
        var script = TmpFilePrelude + "\n" + $$"""
            fd = os.open("{{Mnt}}", os.O_TMPFILE | os.O_RDWR, 0o600)
            os.write(fd, os.urandom(2 << 20))
            os.fsync(fd)
            print(os.fstat(fd).st_size)
            """;
        Assert.Equal("2097152", (await RunAsync($"python3 -c {Quote(script)}")).Trim());
        // The root alone once the kernel's release (sent after the process exits) arrives.
        await Poll.UntilAsync(async () => (await _m.Cluster.StatusAsync()).Inodes == 1, TimeSpan.FromSeconds(30), "the never-linked O_TMPFILE to go at its last close");
        await Poll.UntilAsync(async () => (await _m.Cluster.StatusAsync()).ChunksTotal == 0, TimeSpan.FromSeconds(60), "chunks of the never-linked O_TMPFILE collected");
    }

    [Fact]
    public async Task AProcessInsideADirectoryThatWasRemovedListsItEmptyAsOnExt4() => await InsideARemovedDirectory(Mnt);

    [Fact]
    public async Task AProcessInsideADirectoryThatWasRemovedListsItEmpty_WhateverTheLookupCacheHeld()
    {
        // The removed directory is known from the rmdir's reply: a change racing the mkdir (or a
        // change-feed notice, or no cache at all) can keep it out of the lookup cache.
        await using var uncached = await MountedCluster.StartAsync(mountArgs: "--lookup_cache_entries 0");
        await InsideARemovedDirectory(uncached.MountPoint);
    }

    /// <summary>ext4: the removed working directory still stats (no links) and lists empty.</summary>
    private static async Task InsideARemovedDirectory(string mnt)
    {
        var output = await RunAsync($"mkdir {Quote(mnt)}/cwd && cd {Quote(mnt)}/cwd && rmdir ../cwd && ls -A && stat -c '%h %F' .");
        Assert.Equal("0 directory", output.Trim());
    }

    [Fact]
    public async Task HardLinksAcrossDirectoriesShareDataAndCountLinks()
    {
        await RunAsync($"mkdir {Quote(Mnt)}/a {Quote(Mnt)}/b && echo shared > {Quote(Mnt)}/a/f && ln {Quote(Mnt)}/a/f {Quote(Mnt)}/b/g");
        Assert.Equal("2", (await RunAsync($"stat -c %h {Quote(Mnt)}/a/f")).Trim());
        Assert.Equal(await RunAsync($"stat -c %i {Quote(Mnt)}/a/f"), await RunAsync($"stat -c %i {Quote(Mnt)}/b/g"));
        await RunAsync($"echo more >> {Quote(Mnt)}/b/g");
        Assert.Equal("shared\nmore\n", await File.ReadAllTextAsync($"{Mnt}/a/f"));
        await RunAsync($"rm {Quote(Mnt)}/a/f");
        Assert.Equal("1", (await RunAsync($"stat -c %h {Quote(Mnt)}/b/g")).Trim());
        Assert.Equal("shared\nmore\n", await File.ReadAllTextAsync($"{Mnt}/b/g"));
    }

    [Fact]
    public async Task NamesThatAFailedOrSwappingChangeLeavesInPlaceAreStillFound()
    {
        // A directory made through this mount is known completely here, so a name missing from
        // the mount's cache is answered absent without asking the server. A change that fails,
        // swaps two names or renames between two links of one inode leaves its names in place.
        var d = $"{Mnt}/known";
        await RunAsync($"mkdir {Quote(d)} {Quote(d)}/full && touch {Quote(d)}/full/f {Quote(d)}/one && ln {Quote(d)}/one {Quote(d)}/two"
            + $" && echo data > {Quote(d)}/file && ln -s nowhere {Quote(d)}/link");
        var rmdir = await TryRunAsync($"rmdir {Quote(d)}/full");
        Assert.Contains("Directory not empty", rmdir.Stderr);
        Assert.Equal(0, renameat2(AtFdCwd, $"{d}/file", AtFdCwd, $"{d}/link", RenameExchange));
        File.Move($"{d}/one", $"{d}/two", overwrite: true);   // rename(2) between two links of one inode changes nothing

        await RunAsync("echo 2 > /proc/sys/vm/drop_caches");   // the kernel forgets its dentries: each name is looked up again
        Assert.Equal("directory", (await RunAsync($"stat -c %F {Quote(d)}/full")).Trim());
        Assert.Equal("symbolic link", (await RunAsync($"stat -c %F {Quote(d)}/file")).Trim());
        Assert.Equal("data\n", await File.ReadAllTextAsync($"{d}/link"));
        Assert.Equal("2 2", (await RunAsync($"stat -c %h {Quote(d)}/one && stat -c %h {Quote(d)}/two")).Replace('\n', ' ').Trim());
        var mkdirBelowFile = await TryRunAsync($"mkdir {Quote(d)}/link/sub");
        Assert.Contains("Not a directory", mkdirBelowFile.Stderr);
    }

    [Fact]
    public async Task StickyDirectoryStopsOthersFromRemovingYourFiles()
    {
        await RunAsync($"mkdir {Quote(Mnt)}/tmp && chmod 1777 {Quote(Mnt)}/tmp");
        await RunAsync($"setpriv --reuid=1001 --regid=1001 --clear-groups touch {Quote(Mnt)}/tmp/mine");
        Assert.Equal("1001", (await RunAsync($"stat -c %u {Quote(Mnt)}/tmp/mine")).Trim());
        var other = await TryRunAsync($"setpriv --reuid=1002 --regid=1002 --clear-groups rm -f {Quote(Mnt)}/tmp/mine");
        Assert.NotEqual(0, other.ExitCode);
        Assert.Contains("Operation not permitted", other.Stderr);
        await RunAsync($"setpriv --reuid=1001 --regid=1001 --clear-groups rm {Quote(Mnt)}/tmp/mine");
    }

    [Fact]
    public async Task ChmodAndChownAreEnforcedAndChownClearsSetuid()
    {
        await RunAsync($"echo secret > {Quote(Mnt)}/s && chmod 600 {Quote(Mnt)}/s");
        var denied = await TryRunAsync($"setpriv --reuid=1001 --regid=1001 --clear-groups cat {Quote(Mnt)}/s");
        Assert.Contains("Permission denied", denied.Stderr);
        await RunAsync($"chown 1001:1001 {Quote(Mnt)}/s");
        Assert.Equal("secret\n", await RunAsync($"setpriv --reuid=1001 --regid=1001 --clear-groups cat {Quote(Mnt)}/s"));

        await RunAsync($"echo x > {Quote(Mnt)}/suid && chmod 6755 {Quote(Mnt)}/suid");
        Assert.Equal("6755", (await RunAsync($"stat -c %a {Quote(Mnt)}/suid")).Trim());
        await RunAsync($"chown 1001:1001 {Quote(Mnt)}/suid");
        Assert.Equal("755", (await RunAsync($"stat -c %a {Quote(Mnt)}/suid")).Trim());
    }

    [Fact]
    public async Task AnotherUsersWriteOrTruncateClearsTheSetIdBitsAsOnExt4()
    {
        // Each way another user can change a set-id program's contents takes the bits away: a
        // cached write, an O_APPEND write (direct I/O: the filesystem's job), truncate, and
        // open with O_TRUNC (atomic in FUSE: the filesystem's job too). Root keeps them, unless
        // it runs without CAP_FSETID (the kernel says so with HANDLE_KILLPRIV_V2).
        string User(string command) => $"setpriv --reuid=1001 --regid=1001 --clear-groups {command}";
        string NoFsetid(string command) => $"setpriv --inh-caps=-fsetid --bounding-set=-fsetid {command}";
        var copy = await CopyFileRangeScript();
        var ways = new Dictionary<string, string>
        {
            ["copy_file_range"] = User(copy),
            ["root copy_file_range"] = copy,
            ["write"] = User("dd conv=notrunc status=none if=/dev/zero bs=1 count=1 of=FILE"),
            ["append"] = User("sh -c 'echo x >> FILE'"),
            ["truncate"] = User("truncate -s 1 FILE"),
            ["o_trunc"] = User("sh -c ': > FILE'"),
            ["root append"] = "sh -c 'echo x >> FILE'",
            ["o_trunc by root without CAP_FSETID"] = NoFsetid("sh -c ': > FILE'"),
            ["truncate by root without CAP_FSETID"] = NoFsetid("truncate -s 1 FILE"),
            ["write by root without CAP_FSETID"] = NoFsetid("dd conv=notrunc status=none if=/dev/zero bs=1 count=1 of=FILE"),
        };
        foreach (var (way, command) in ways)
        {
            var file = $"{Quote(Mnt)}/setid-{way.Replace(' ', '-')}";
            await RunAsync($"echo program > {file} && chmod 6777 {file} && stat -c %a {file}");
            await RunAsync(command.Replace("FILE", file));
            var expected = way.StartsWith("root") ? "6777" : "777";
            Assert.True(expected == (await RunAsync($"stat -c %a {file}")).Trim(), $"{way}: mode {(await RunAsync($"stat -c %a {file}")).Trim()}, expected {expected}");
        }
    }

    /// <summary>A command that copies one byte into FILE with copy_file_range (the mount's COPY_FILE_RANGE).</summary>
    private async Task<string> CopyFileRangeScript()
    {
        var script = "import os, sys\nsrc = os.open(sys.argv[0], os.O_RDONLY)\ndst = os.open(sys.argv[1], os.O_WRONLY)\n"
            + "assert os.copy_file_range(src, dst, 1, 0, 0) == 1\n";
        await File.WriteAllTextAsync($"{Mnt}/copy.py", script);
        return $"/usr/bin/python3 {Quote(Mnt)}/copy.py FILE";   // not a root-only PATH entry: other users run it too
    }

    [Fact]
    public async Task AWriteTruncateOrChownTakesAFilesCapabilitiesAway()
    {
        // Whoever does it, root included, as on ext4. With FUSE_HANDLE_KILLPRIV_V2 the kernel
        // leaves this to the filesystem, and stops checking before each write once a file had
        // none: "again" sets them between two writes through one descriptor.
        string User(string command) => $"setpriv --reuid=1001 --regid=1001 --clear-groups {command}";
        var again = "import os, sys\nfd = os.open(sys.argv[1], os.O_WRONLY)\nos.write(fd, b'a')\n"
            + $"{Capabilities.SetInPython}\nos.write(fd, b'b')\nos.close(fd)\n";
        await File.WriteAllTextAsync($"{Mnt}/again.py", again);
        var copy = await CopyFileRangeScript();
        var ways = new Dictionary<string, string>
        {
            ["copy_file_range"] = copy,
            ["write"] = "dd conv=notrunc status=none if=/dev/zero bs=1 count=1 of=FILE",
            ["user write"] = User("dd conv=notrunc status=none if=/dev/zero bs=1 count=1 of=FILE"),
            ["append"] = "sh -c 'echo x >> FILE'",
            ["truncate"] = "truncate -s 1 FILE",
            ["o_trunc"] = "sh -c ': > FILE'",
            ["chown"] = "chown 1001 FILE",
            ["again"] = $"python3 {Quote(Mnt)}/again.py FILE",
        };
        foreach (var (way, command) in ways)
        {
            var file = $"{Quote(Mnt)}/caps-{way.Replace(' ', '-')}";
            await RunAsync($"echo program > {file} && chmod 777 {file}");
            await Capabilities.SetAsync(file);
            Assert.True(await Capabilities.HaveAsync(file), $"{way}: capabilities not set");
            await RunAsync(command.Replace("FILE", file));
            Assert.False(await Capabilities.HaveAsync(file), $"{way}: capabilities kept");
        }
    }

    [Fact]
    public async Task TruncateUpAndDownReadsZerosInTheGap()
    {
        await RunAsync($"printf 'abcdefghij' > {Quote(Mnt)}/t && truncate -s 4 {Quote(Mnt)}/t && truncate -s 10 {Quote(Mnt)}/t");
        var bytes = await File.ReadAllBytesAsync($"{Mnt}/t");
        Assert.Equal("abcd\0\0\0\0\0\0"u8.ToArray(), bytes);
        await RunAsync($"truncate -s 0 {Quote(Mnt)}/t");
        Assert.Empty(await File.ReadAllBytesAsync($"{Mnt}/t"));
    }

    [Fact]
    public async Task SparseFilesHaveHolesFoundBySeekDataAndSeekHole()
    {
        await RunAsync($"dd if=/dev/urandom of={Quote(Mnt)}/sparse bs=1M count=1 seek=100 status=none conv=fsync");
        Assert.Equal((101L << 20).ToString(), (await RunAsync($"stat -c %s {Quote(Mnt)}/sparse")).Trim());
        var blocks = long.Parse((await RunAsync($"stat -c %b {Quote(Mnt)}/sparse")).Trim());
        Assert.True(blocks * 512 < 10L << 20, $"a 101 MiB file with 1 MiB of data uses {blocks} blocks");
        var fd = Native.Open($"{Mnt}/sparse", 0);
        Assert.True(fd >= 0);
        try
        {
            Assert.Equal(100L << 20, Native.Lseek(fd, 0, Native.SEEK_DATA));
            Assert.Equal(0L, Native.Lseek(fd, 0, Native.SEEK_HOLE));
            Assert.Equal(101L << 20, Native.Lseek(fd, 100L << 20, Native.SEEK_HOLE));
        }
        finally { Native.Close(fd); }
        Assert.Equal("0", (await RunAsync($"head -c 104857600 {Quote(Mnt)}/sparse | tr -d '\\0' | wc -c")).Trim());
    }

    [Fact]
    public async Task ACommitMadeForCopyFileRangeOrSeekDataLeavesNoStaleSizeBehind()
    {
        // copy_file_range commits its source's buffered writes, SEEK_DATA its file's. Once the
        // kernel forgets the inode, its next lookup is answered from the mount's cache: that
        // must not be the size from before the commit (found by fsx under drop_caches).
        var script = """
            import os, sys
            d = sys.argv[1]
            for how in ("copy", "seek"):
                fd = os.open(f"{d}/{how}", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, b"x" * 100)
                os.close(fd)
                fd = os.open(f"{d}/{how}", os.O_RDWR)   # the mount learns its attributes: 100 bytes
                os.pwrite(fd, b"y" * 50, 100)             # buffered in the mount
                if how == "copy":
                    dst = os.open(f"{d}/copied", os.O_RDWR | os.O_CREAT, 0o644)
                    assert os.copy_file_range(fd, dst, 10, 0, 0) == 10
                    os.close(dst)
                else:
                    assert os.lseek(fd, 0, os.SEEK_DATA) == 0
                os.close(fd)                              # nothing left to commit
            """;
        await RunAsync($"python3 -c {Quote(script)} {Quote(Mnt)}");
        for (var round = 0; round < 3; round++)
        {
            // The kernel forgets inodes it no longer uses (these go once their release is answered).
            await RunAsync("echo 2 > /proc/sys/vm/drop_caches");
            Assert.Equal("150 150", (await RunAsync($"stat -c %s {Quote(Mnt)}/copy {Quote(Mnt)}/seek")).Replace('\n', ' ').Trim());
        }
        Assert.Equal(new string('x', 100) + new string('y', 50), await File.ReadAllTextAsync($"{Mnt}/copy"));
    }

    [Fact]
    public async Task FallocatePunchHoleAndZeroRangeLeaveHolesThatReadAsZeros()
    {
        var file = $"{Mnt}/punched";
        var expected = FileHelpers.RandomBytes(12 << 20, seed: 41);
        await File.WriteAllBytesAsync(file, expected);
        async Task<long> BlocksAsync() => long.Parse((await RunAsync($"stat -c %b {Quote(file)}")).Trim());
        var before = await BlocksAsync();

        // An unaligned hole inside the data, and one running past the end (the size stays).
        await RunAsync($"fallocate --punch-hole --offset 3000001 --length 5000000 {Quote(file)}");
        Array.Clear(expected, 3000001, 5000000);
        await RunAsync($"fallocate --punch-hole --offset {(12 << 20) - 100} --length 1000000 {Quote(file)}");
        Array.Clear(expected, (12 << 20) - 100, 100);
        Assert.Equal(expected.Length.ToString(), (await RunAsync($"stat -c %s {Quote(file)}")).Trim());
        var after = await BlocksAsync();
        Assert.True(after * 512 <= before * 512 - 4_000_000, $"{before} blocks before the punch, {after} after");
        Assert.Equal(FileHelpers.Sha256(expected), FileHelpers.Sha256(await File.ReadAllBytesAsync(file)));
        var fd = Native.Open(file, 0);
        Assert.True(fd >= 0);
        try
        {
            Assert.Equal(3000001L, Native.Lseek(fd, 0, Native.SEEK_HOLE));
            Assert.Equal(8000001L, Native.Lseek(fd, 3000001, Native.SEEK_DATA));
        }
        finally { Native.Close(fd); }

        // Zeroing a range past the end grows the file unless told to keep its size.
        await RunAsync($"fallocate --zero-range --offset {(12 << 20) + 4096} --length 8192 {Quote(file)}");
        Assert.Equal(((12 << 20) + 12288).ToString(), (await RunAsync($"stat -c %s {Quote(file)}")).Trim());
        await RunAsync($"fallocate --zero-range --keep-size --offset 0 --length 10 {Quote(file)}");
        Array.Clear(expected, 0, 10);
        Array.Resize(ref expected, (12 << 20) + 12288);
        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        Assert.Equal(FileHelpers.Sha256(expected), FileHelpers.Sha256(await File.ReadAllBytesAsync(file)));

        // Modes BigFS does not implement are refused, not half done.
        var collapse = await TryRunAsync($"fallocate --collapse-range --offset 0 --length 4096 {Quote(file)}");
        Assert.Contains("Operation not supported", collapse.Stderr);
    }

    [Fact]
    public async Task AppendFromTwoProcessesLosesNoLine()
    {
        var writer = $"for i in $(seq 1 500); do echo \"$1-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" >> {Quote(Mnt)}/log; done";
        await Task.WhenAll(RunAsync($"bash -c {Quote(writer)} _ a"), RunAsync($"bash -c {Quote(writer)} _ b"));
        var lines = await File.ReadAllLinesAsync($"{Mnt}/log");
        Assert.Equal(1000, lines.Length);
        Assert.All(lines, l => Assert.Matches("^[ab]-[0-9]+-x{32}$", l));
        Assert.Equal(500, lines.Count(l => l.StartsWith("a-")));
    }

    [Fact]
    public async Task AnAppendOnlyDescriptorCanStillBeMappedShared()
    {
        // O_APPEND descriptors bypass the page cache (FOPEN_DIRECT_IO); a shared mapping of one
        // must still work and stay coherent with reads and appends, as on ext4.
        var script = $$"""
            import mmap, os
            p = "{{Mnt}}/mapped"
            open(p, "wb").write(b"0123456789" * 1000)
            fd = os.open(p, os.O_RDWR | os.O_APPEND)
            m = mmap.mmap(fd, 4096)
            m[0:3] = b"abc"
            m.flush()
            m.close()
            os.write(fd, b"TAIL")
            os.close(fd)
            data = open(p, "rb").read()
            print(len(data), data[:10].decode(), data[-6:].decode())
            """;
        Assert.Equal("10004 abc3456789 89TAIL", (await RunAsync($"python3 -c {Quote(script)}")).Trim());
    }

    [Fact]
    public async Task FifoXattrsAndDeviceNodes()
    {
        await RunAsync($"mkfifo {Quote(Mnt)}/pipe");
        Assert.Equal("fifo", (await RunAsync($"stat -c %F {Quote(Mnt)}/pipe")).Trim());
        var reader = RunAsync($"cat {Quote(Mnt)}/pipe");
        await RunAsync($"echo through-the-pipe > {Quote(Mnt)}/pipe");
        Assert.Equal("through-the-pipe\n", await reader);

        await RunAsync($"mknod {Quote(Mnt)}/null c 1 3");
        Assert.Equal("character special file 1 3", (await RunAsync($"stat -c '%F %t %T' {Quote(Mnt)}/null")).Trim());

        await RunAsync($"touch {Quote(Mnt)}/x && setfattr -n user.color -v blue {Quote(Mnt)}/x && setfattr -n user.size -v 42 {Quote(Mnt)}/x");
        Assert.Equal("blue", (await RunAsync($"getfattr --only-values -n user.color {Quote(Mnt)}/x")).Trim());
        Assert.Contains("user.size", await RunAsync($"getfattr -d {Quote(Mnt)}/x"));
        await RunAsync($"setfattr -x user.color {Quote(Mnt)}/x");
        var missing = await TryRunAsync($"getfattr -n user.color {Quote(Mnt)}/x");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("No such attribute", missing.Stderr);
        // Names outside the user, trusted and security namespaces are refused, as by ext4.
        foreach (var command in new[] { $"setfattr -n bogus.a -v 1 {Quote(Mnt)}/x", $"getfattr -n bogus.a {Quote(Mnt)}/x" })
        {
            var refused = await TryRunAsync(command);
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("Operation not supported", refused.Stderr);
        }
    }

    /// <summary>
    /// Entry names, symlink targets and xattr names are bytes: Latin-1, stray continuation bytes,
    /// UTF-8's encoding of a surrogate. Every one is created, listed, linked, renamed, read back,
    /// archived and extracted with tar, exactly as on the local disk.
    /// </summary>
    private const string ByteNamesScript = """
        import os, subprocess, sys
        root = sys.argv[1].encode()
        d = os.path.join(root, b"n\xe9s")
        os.mkdir(d)
        names = [b"caf\xe9", b"\xff\xfe", b"ok-\xc3\xa9", b"\xc3(", b"\xed\xb2\x80", b"x" * 254 + b"\xe9"]
        for n in names:
            with open(os.path.join(d, n), "wb") as f:
                f.write(n)
        os.symlink(b"\x80target\xff", os.path.join(d, b"link\xa0"))
        os.link(os.path.join(d, b"caf\xe9"), os.path.join(d, b"hard\xe9"))
        os.rename(os.path.join(d, b"\xff\xfe"), os.path.join(d, b"\xfe\xff"))
        os.setxattr(os.path.join(d, b"caf\xe9"), b"user.\xe9t\xe9", b"v")
        print(sorted(os.listdir(d)))
        print(os.readlink(os.path.join(d, b"link\xa0")))
        print([open(os.path.join(d, n), "rb").read() == n for n in [b"caf\xe9", b"\xc3(", b"\xed\xb2\x80", b"x" * 254 + b"\xe9"]], open(os.path.join(d, b"\xfe\xff"), "rb").read() == b"\xff\xfe")
        print(os.stat(os.path.join(d, b"hard\xe9")).st_nlink, [x.encode("utf-8", "surrogateescape") for x in os.listxattr(os.path.join(d, b"caf\xe9"))])
        try:
            open(os.path.join(d, b"y" * 255 + b"\xe9"), "wb")
        except OSError as e:
            print("too long:", e.errno)
        subprocess.run([b"tar", b"-C", root, b"-cf", os.path.join(root, b"t.tar"), b"n\xe9s"], check=True)
        os.mkdir(os.path.join(root, b"x"))
        subprocess.run([b"tar", b"-C", os.path.join(root, b"x"), b"-xf", os.path.join(root, b"t.tar")], check=True)
        print(sorted(os.listdir(os.path.join(root, b"x", b"n\xe9s"))) == sorted(os.listdir(d)))
        """;

    [Fact]
    public async Task NamesThatAreNotUtf8WorkAsOnTheLocalDisk()
    {
        var local = Directory.CreateTempSubdirectory("bigfs-names-").FullName;
        try
        {
            var expected = await RunAsync($"python3 -c {Quote(ByteNamesScript)} {Quote(local)}");
            var actual = await RunAsync($"python3 -c {Quote(ByteNamesScript)} {Quote(Mnt)}");
            Assert.Equal(expected, actual);
            Assert.Contains(@"b'caf\xe9'", actual);
            Assert.Contains("[True, True, True, True] True", actual);
            // The names are the same bytes after the kernel's caches are gone.
            await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
            Assert.Equal("2", (await RunAsync($"stat -c %h {Quote(Mnt)}/n$'\\xe9's/hard$'\\xe9'")).Trim());
        }
        finally
        {
            await RunAsync($"rm -rf {Quote(local)}");   // .NET cannot name what is not UTF-8
        }
    }

    [Fact]
    public async Task AccessAclsAndTheModeStayOneThing()
    {
        // cp -a copies a file's ACL (a minimal one for a plain 0644 file): it is the mode, not an
        // xattr, so a later chmod is what the next cp -a out of the mount copies.
        var local = Directory.CreateTempSubdirectory("bigfs-acl-").FullName;
        try
        {
            await RunAsync($"echo hi > {Quote(local)}/f && chmod 644 {Quote(local)}/f && cp -a {Quote(local)}/f {Quote(Mnt)}/acl");
            Assert.DoesNotContain("posix_acl", await RunAsync($"getfattr -d -m - {Quote(Mnt)}/acl"));
            Assert.DoesNotContain("+", (await RunAsync($"ls -l {Quote(Mnt)}/acl")).Split(' ')[0]);
            await RunAsync($"chmod 600 {Quote(Mnt)}/acl && cp -a {Quote(Mnt)}/acl {Quote(local)}/back");
            Assert.Equal("600", (await RunAsync($"stat -c %a {Quote(local)}/back")).Trim());

            // An extended ACL (user:1000:r-x, mask r-x) sets the group triad to its mask, seen at once;
            // a chmod rewrites the ACL's owner, mask and other entries.
            await RunAsync($"setfattr -n system.posix_acl_access -v 0sAgAAAAEABgD/////AgAFAOgDAAAEAAQA/////xAABQD/////IAAAAP////8= {Quote(Mnt)}/acl");
            Assert.Equal("650", (await RunAsync($"stat -c %a {Quote(Mnt)}/acl")).Trim());
            await RunAsync($"chmod 741 {Quote(Mnt)}/acl");
            Assert.Contains("system.posix_acl_access=0x0200000001000700ffffffff02000500e803000004000400ffffffff10000400ffffffff20000100ffffffff",
                await RunAsync($"getfattr -e hex -n system.posix_acl_access {Quote(Mnt)}/acl"));
            // Removing the ACL leaves the mode as it is (removing it again is no error either).
            await RunAsync($"setfattr -x system.posix_acl_access {Quote(Mnt)}/acl && setfattr -x system.posix_acl_access {Quote(Mnt)}/acl");
            Assert.DoesNotContain("posix_acl", await RunAsync($"getfattr -d -m - {Quote(Mnt)}/acl"));
            Assert.Equal("741", (await RunAsync($"stat -c %a {Quote(Mnt)}/acl")).Trim());
        }
        finally
        {
            Directory.Delete(local, recursive: true);
        }
    }

    [Fact]
    public async Task ADirectoryOfTenThousandEntriesIsListedCompletely()
    {
        await RunAsync($"mkdir {Quote(Mnt)}/many && cd {Quote(Mnt)}/many && seq 1 10000 | xargs touch", timeout: TimeSpan.FromMinutes(5));
        Assert.Equal("10000", (await RunAsync($"ls -f {Quote(Mnt)}/many | grep -v '^\\.\\.\\?$' | wc -l")).Trim());
        Assert.Equal(await RunAsync("seq 1 10000 | sort"), await RunAsync($"ls {Quote(Mnt)}/many | sort"));
        await RunAsync($"rm -rf {Quote(Mnt)}/many", timeout: TimeSpan.FromMinutes(5));
    }

    [Fact]
    public async Task StatfsReportsClusterCapacity()
    {
        var df = await RunAsync($"df -B1 --output=size,avail {Quote(Mnt)} | tail -1");
        var parts = df.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
        Assert.True(parts[0] > 0 && parts[1] > 0 && parts[1] <= parts[0]);
    }

    [Fact]
    public async Task TimestampsWithNanosecondsAndTouchDashD()
    {
        await RunAsync($"touch -d '2001-02-03 04:05:06.123456789' {Quote(Mnt)}/ts");
        Assert.Equal("2001-02-03 04:05:06.123456789", (await RunAsync($"TZ=UTC stat -c %y {Quote(Mnt)}/ts")).Trim()[..29]);
        await RunAsync($"touch -a -d '1999-01-01 00:00:00' {Quote(Mnt)}/ts");
        Assert.StartsWith("2001-02-03", (await RunAsync($"TZ=UTC stat -c %y {Quote(Mnt)}/ts")).Trim());
    }

    [Fact]
    public async Task FlockLocksExcludeEachOtherAcrossProcesses()
    {
        await RunAsync($"touch {Quote(Mnt)}/lock");
        var held = Path.Combine(_m.Cluster.Root, "held");
        var holder = RunAsync($"flock {Quote(Mnt)}/lock -c 'touch {held}; sleep 2'");
        await Poll.UntilAsync(() => File.Exists(held), TimeSpan.FromSeconds(10), "the lock holder");
        var contended = await TryRunAsync($"flock -n {Quote(Mnt)}/lock -c true");
        Assert.NotEqual(0, contended.ExitCode);
        await holder;
        await RunAsync($"flock -n {Quote(Mnt)}/lock -c true");
    }
}

internal static class Native
{
    public const int SEEK_DATA = 3, SEEK_HOLE = 4;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    public static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    public static extern long Lseek(int fd, long offset, int whence);

    [DllImport("libc", EntryPoint = "close")]
    public static extern int Close(int fd);
}
