using System.Text;
using BigFS.Fuse.MemoryFs;

namespace BigFS.Fuse.Tests;

/// <summary>The in-memory filesystem through a real mount: real syscalls and ordinary shell tools.</summary>
public class MemoryFsMountTests
{
    [Fact]
    public async Task Create_read_write_append()
    {
        await using var m = await TestMount.StartAsync();
        var f = m["file.txt"];
        await File.WriteAllTextAsync(f, "hello");
        await File.AppendAllTextAsync(f, " world");
        Assert.Equal("hello world", await File.ReadAllTextAsync(f));
        Shell.Run($"echo -n '!' >> '{f}'");
        Assert.Equal("hello world!", Shell.Out($"cat '{f}'"));

        // Large write/read through 1 MiB requests, with an overwrite in the middle.
        var data = new byte[5 << 20];
        new Random(1).NextBytes(data);
        await File.WriteAllBytesAsync(m["big"], data);
        await using (var s = new FileStream(m["big"], FileMode.Open, FileAccess.ReadWrite))
        {
            s.Position = 1_000_000;
            s.Write("XYZ"u8);
        }
        "XYZ"u8.CopyTo(data.AsSpan(1_000_000));
        Assert.Equal(data, await File.ReadAllBytesAsync(m["big"]));
        Assert.Equal((5 << 20).ToString(), Shell.Out($"stat -c %s '{m["big"]}'"));
    }

    [Fact]
    public async Task Open_with_truncate_empties_the_file()
    {
        await using var m = await TestMount.StartAsync();
        await File.WriteAllTextAsync(m["t"], "some content");
        await using (var s = new FileStream(m["t"], FileMode.Truncate, FileAccess.Write)) { } // O_TRUNC
        Assert.Equal(0, new FileInfo(m["t"]).Length);
        await File.WriteAllTextAsync(m["t"], "abc");
        Shell.Run($"echo xy > '{m["t"]}'"); // shell redirection: O_WRONLY|O_CREAT|O_TRUNC
        Assert.Equal("xy\n", await File.ReadAllTextAsync(m["t"]));
    }

    [Fact]
    public async Task Exclusive_create_fails_on_existing_file()
    {
        await using var m = await TestMount.StartAsync();
        await using (var s = new FileStream(m["x"], FileMode.CreateNew)) s.WriteByte(1); // O_CREAT|O_EXCL
        var e = Assert.ThrowsAny<IOException>(() => new FileStream(m["x"], FileMode.CreateNew));
        Assert.Contains("exists", e.Message, StringComparison.OrdinalIgnoreCase);
        var r = Shell.Run($"set -o noclobber; echo y > '{m["x"]}'", check: false);
        Assert.NotEqual(0, r.Exit);
        Assert.Equal(1, new FileInfo(m["x"]).Length);
    }

    [Fact]
    public async Task Rename_plain_over_existing_noreplace_exchange_and_directories()
    {
        await using var m = await TestMount.StartAsync();
        await File.WriteAllTextAsync(m["a"], "A");
        await File.WriteAllTextAsync(m["b"], "B");
        File.Move(m["a"], m["c"]);
        Assert.False(File.Exists(m["a"]));
        Assert.Equal("A", await File.ReadAllTextAsync(m["c"]));

        // Over an existing file.
        Shell.Run($"mv '{m["c"]}' '{m["b"]}'");
        Assert.Equal("A", await File.ReadAllTextAsync(m["b"]));
        Assert.False(File.Exists(m["c"]));

        // RENAME_NOREPLACE.
        await File.WriteAllTextAsync(m["d"], "D");
        Assert.Equal(-1, Posix.renameat2(Posix.AT_FDCWD, m["d"], Posix.AT_FDCWD, m["b"], Posix.RENAME_NOREPLACE));
        Assert.Equal(17, Posix.Errno); // EEXIST
        Assert.Equal(0, Posix.renameat2(Posix.AT_FDCWD, m["d"], Posix.AT_FDCWD, m["e"], Posix.RENAME_NOREPLACE));
        Assert.Equal("D", await File.ReadAllTextAsync(m["e"]));

        // RENAME_EXCHANGE, including a file and a directory.
        Assert.Equal(0, Posix.renameat2(Posix.AT_FDCWD, m["b"], Posix.AT_FDCWD, m["e"], Posix.RENAME_EXCHANGE));
        Assert.Equal("D", await File.ReadAllTextAsync(m["b"]));
        Assert.Equal("A", await File.ReadAllTextAsync(m["e"]));
        Directory.CreateDirectory(m["dir1"]);
        Assert.Equal(0, Posix.renameat2(Posix.AT_FDCWD, m["dir1"], Posix.AT_FDCWD, m["e"], Posix.RENAME_EXCHANGE));
        Assert.True(Directory.Exists(m["e"]));
        Assert.Equal("A", await File.ReadAllTextAsync(m["dir1"]));

        // Directories: move into another directory, over an empty one, not over a non-empty one, not into itself.
        Directory.CreateDirectory(m["p/q"]);
        await File.WriteAllTextAsync(m["p/q/f"], "f");
        Directory.CreateDirectory(m["r"]);
        Directory.Move(m["p/q"], m["r/q"]);
        Assert.Equal("f", await File.ReadAllTextAsync(m["r/q/f"]));
        Assert.Equal("2", Shell.Out($"stat -c %h '{m["p"]}'"));
        Assert.Equal("3", Shell.Out($"stat -c %h '{m["r"]}'"));
        Directory.CreateDirectory(m["empty"]);
        Shell.Run($"mv -T '{m["r/q"]}' '{m["empty"]}'");
        Assert.Equal("f", await File.ReadAllTextAsync(m["empty/f"]));
        Directory.CreateDirectory(m["full/x"]);
        Assert.NotEqual(0, Shell.Run($"mv -T '{m["empty"]}' '{m["full"]}'", check: false).Exit);
        Assert.NotEqual(0, Shell.Run($"mv '{m["full"]}' '{m["full/x/y"]}'", check: false).Exit);
        Assert.True(Directory.Exists(m["full/x"]));
    }

    [Fact]
    public async Task Hard_links_share_data_and_count_links()
    {
        await using var m = await TestMount.StartAsync();
        await File.WriteAllTextAsync(m["orig"], "data");
        Shell.Run($"ln '{m["orig"]}' '{m["l1"]}' && ln '{m["orig"]}' '{m["l2"]}'");
        Assert.Equal("3", Shell.Out($"stat -c %h '{m["orig"]}'"));
        Assert.Equal(Shell.Out($"stat -c %i '{m["orig"]}'"), Shell.Out($"stat -c %i '{m["l2"]}'"));
        await File.AppendAllTextAsync(m["l1"], "+");
        Assert.Equal("data+", await File.ReadAllTextAsync(m["l2"]));
        File.Delete(m["orig"]);
        Assert.Equal("2", Shell.Out($"stat -c %h '{m["l1"]}'"));
        Assert.Equal("data+", await File.ReadAllTextAsync(m["l1"]));
        Directory.CreateDirectory(m["d"]);
        Assert.NotEqual(0, Shell.Run($"ln '{m["d"]}' '{m["dl"]}'", check: false).Exit); // no hard links to directories
    }

    [Fact]
    public async Task Symlinks_resolve_and_read_back()
    {
        await using var m = await TestMount.StartAsync();
        Directory.CreateDirectory(m["dir"]);
        await File.WriteAllTextAsync(m["dir/target"], "through the link");
        Shell.Run($"ln -s dir/target '{m["rel"]}' && ln -s /nonexistent/x '{m["dangling"]}'");
        Assert.Equal("dir/target", Shell.Out($"readlink '{m["rel"]}'"));
        Assert.Equal("through the link", await File.ReadAllTextAsync(m["rel"]));
        Assert.Equal("symbolic link", Shell.Out($"stat -c %F '{m["dangling"]}'"));
        Assert.Equal("/nonexistent/x", new FileInfo(m["dangling"]).LinkTarget);
        Assert.Equal(10, new FileInfo(m["rel"]).Length); // a symlink's size is its target's length
    }

    [Fact]
    public async Task Chmod_and_chown_clear_setuid_and_setgid()
    {
        await using var m = await TestMount.StartAsync();
        await File.WriteAllTextAsync(m["f"], "x");
        Shell.Run($"chmod 640 '{m["f"]}'");
        Assert.Equal("640", Shell.Out($"stat -c %a '{m["f"]}'"));
        Shell.Run($"chmod 6755 '{m["f"]}'");
        Assert.Equal("6755", Shell.Out($"stat -c %a '{m["f"]}'"));
        Shell.Run($"chown 1234:5678 '{m["f"]}'");
        Assert.Equal("1234:5678:755", Shell.Out($"stat -c %u:%g:%a '{m["f"]}'"));
        // Directories keep their mode bits on chown.
        Directory.CreateDirectory(m["d"]);
        Shell.Run($"chmod 2775 '{m["d"]}' && chown 42:43 '{m["d"]}'");
        Assert.Equal("42:43:2775", Shell.Out($"stat -c %u:%g:%a '{m["d"]}'"));
        // A setgid directory hands its group to new entries.
        await File.WriteAllTextAsync(m["d/inherits"], "");
        Assert.Equal("43", Shell.Out($"stat -c %g '{m["d/inherits"]}'"));
    }

    [Fact]
    public async Task Files_are_created_as_the_calling_user()
    {
        await using var m = await TestMount.StartAsync();
        Shell.Run($"chmod 777 '{m.Path}' && setpriv --reuid=1000 --regid=1000 --clear-groups touch '{m["mine"]}'");
        Assert.Equal("1000:1000", Shell.Out($"stat -c %u:%g '{m["mine"]}'"));
        // default_permissions: the kernel enforces mode bits for other users.
        Shell.Run($"chmod 600 '{m["mine"]}'");
        Assert.NotEqual(0, Shell.Run($"setpriv --reuid=2000 --regid=2000 --clear-groups cat '{m["mine"]}'", check: false).Exit);
    }

    [Fact]
    public async Task Truncate_grows_with_zeros_and_shrinks()
    {
        await using var m = await TestMount.StartAsync();
        await File.WriteAllTextAsync(m["t"], "0123456789");
        Shell.Run($"truncate -s 4 '{m["t"]}'");
        Assert.Equal("0123", await File.ReadAllTextAsync(m["t"]));
        Shell.Run($"truncate -s 100000 '{m["t"]}'");
        var bytes = await File.ReadAllBytesAsync(m["t"]);
        Assert.Equal(100000, bytes.Length);
        Assert.Equal("0123"u8.ToArray(), bytes[..4]);
        Assert.All(bytes[4..], b => Assert.Equal(0, b));
        await using (var s = new FileStream(m["t"], FileMode.Open)) s.SetLength(7); // ftruncate
        Assert.Equal(7, new FileInfo(m["t"]).Length);
    }

    [Fact]
    public async Task Touch_sets_times_with_nanoseconds_now_and_omit()
    {
        await using var m = await TestMount.StartAsync();
        var f = m["t"];
        Shell.Run($"touch -d '2001-02-03 04:05:06.123456789 UTC' '{f}'");
        Assert.Equal("981173106.123456789 981173106.123456789", Shell.Out($"stat -c '%.9X %.9Y' '{f}'"));
        // -a: only atime (mtime is UTIME_OMIT).
        Shell.Run($"touch -a -d '2010-01-01 00:00:00 UTC' '{f}'");
        Assert.Equal("1262304000.000000000 981173106.123456789", Shell.Out($"stat -c '%.9X %.9Y' '{f}'"));
        // -m with no date: mtime = UTIME_NOW, atime omitted.
        long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Shell.Run($"touch -m '{f}'");
        var parts = Shell.Out($"stat -c '%X %Y' '{f}'").Split(' ');
        Assert.Equal("1262304000", parts[0]);
        Assert.InRange(long.Parse(parts[1]), before - 1, before + 60);
    }

    [Fact]
    public async Task Mkfifo_and_mknod_create_special_files()
    {
        await using var m = await TestMount.StartAsync();
        Shell.Run($"mkfifo '{m["fifo"]}' && mknod '{m["chr"]}' c 1 3 && mknod '{m["blk"]}' b 7 0");
        Assert.Equal("fifo", Shell.Out($"stat -c %F '{m["fifo"]}'"));
        Assert.Equal("character special file 1 3", Shell.Out($"stat -c '%F %t %T' '{m["chr"]}'"));
        Assert.Equal("block special file 7 0", Shell.Out($"stat -c '%F %t %T' '{m["blk"]}'"));
        // A FIFO on the mount carries data between two processes (the kernel implements the pipe).
        var r = Shell.Run($"(echo through-fifo > '{m["fifo"]}' &) ; timeout 10 cat '{m["fifo"]}'");
        Assert.Equal("through-fifo", r.Out.Trim());
    }

    [Fact]
    public async Task Extended_attributes_set_get_list_remove()
    {
        await using var m = await TestMount.StartAsync();
        var f = m["x"];
        await File.WriteAllTextAsync(f, "");
        Shell.Run($"setfattr -n user.color -v blue '{f}' && setfattr -n user.big -v 0x{new string('a', 2000)} '{f}'");
        Assert.Equal("blue", Shell.Out($"getfattr --only-values -n user.color '{f}'"));
        Assert.Equal("1000", Shell.Out($"getfattr --only-values -n user.big '{f}' | wc -c"));
        var dump = Shell.Out($"getfattr -d '{f}'");
        Assert.Contains("user.color=\"blue\"", dump);
        Assert.Contains("user.big", dump);
        Shell.Run($"setfattr -x user.color '{f}'");
        var missing = Shell.Run($"getfattr -n user.color '{f}'", check: false);
        Assert.NotEqual(0, missing.Exit);
        Assert.Contains("No such attribute", missing.Err);
        Assert.DoesNotContain("color", Shell.Out($"getfattr -d '{f}'"));
    }

    [Fact]
    public async Task Flock_excludes_other_holders_and_interrupted_waiter_gives_up()
    {
        await using var m = await TestMount.StartAsync();
        var f = m["lock"];
        await File.WriteAllTextAsync(f, "");
        await using var holder = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Assert.Equal(0, Posix.flock(Posix.Fd(holder), Posix.LOCK_EX | Posix.LOCK_NB));
        Assert.Equal(1, Shell.Run($"flock -n '{f}' true", check: false).Exit);
        // A blocked waiter (SETLKW) killed by a signal: the kernel interrupts the request.
        var t0 = DateTime.UtcNow;
        Assert.Equal(124, Shell.Run($"timeout 1 flock '{f}' true", check: false).Exit);
        Assert.True(DateTime.UtcNow - t0 < TimeSpan.FromSeconds(20));
        Assert.Equal(0, Posix.flock(Posix.Fd(holder), Posix.LOCK_UN));
        Shell.Run($"flock -n '{f}' true");
        // A waiter is woken when the holder releases.
        Assert.Equal(0, Posix.flock(Posix.Fd(holder), Posix.LOCK_EX));
        var waiter = Task.Run(() => Shell.Run($"timeout 30 flock '{f}' echo got-it", check: false));
        await Task.Delay(200);
        Assert.False(waiter.IsCompleted);
        Posix.flock(Posix.Fd(holder), Posix.LOCK_UN);
        var result = await waiter.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("got-it", result.Out.Trim());
    }

    [Fact]
    public async Task Fcntl_byte_range_locks_conflict_split_and_wait()
    {
        await using var m = await TestMount.StartAsync();
        var f = m["ranges"];
        await File.WriteAllBytesAsync(f, new byte[100]);
        await using var a = new FileStream(f, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        await using var b = new FileStream(f, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        Assert.Equal(0, Posix.OfdLock(a, Posix.F_WRLCK, 10, 20, wait: false));   // a: [10,30)
        Assert.Equal(11, Posix.OfdLock(b, Posix.F_RDLCK, 25, 10, wait: false));  // EAGAIN: overlaps
        Assert.Equal(0, Posix.OfdLock(b, Posix.F_WRLCK, 30, 10, wait: false));   // adjacent: fine
        var conflict = Posix.OfdGetLock(b, Posix.F_RDLCK, 0, 0);
        Assert.Equal(Posix.F_WRLCK, conflict.Type);
        Assert.Equal(10, conflict.Start);
        Assert.Equal(20, conflict.Len);
        // Unlocking the middle of a's range splits it.
        Assert.Equal(0, Posix.OfdLock(a, Posix.F_UNLCK, 15, 5, wait: false));
        Assert.Equal(0, Posix.OfdLock(b, Posix.F_WRLCK, 15, 5, wait: false));
        Assert.Equal(11, Posix.OfdLock(b, Posix.F_WRLCK, 20, 1, wait: false));
        // Shared locks coexist.
        Assert.Equal(0, Posix.OfdLock(a, Posix.F_RDLCK, 50, 10, wait: false));
        Assert.Equal(0, Posix.OfdLock(b, Posix.F_RDLCK, 50, 10, wait: false));
        // F_SETLKW waits until the holder unlocks.
        var waiter = Task.Run(() => Posix.OfdLock(b, Posix.F_WRLCK, 10, 5, wait: true));
        await Task.Delay(200);
        Assert.False(waiter.IsCompleted);
        Assert.Equal(0, Posix.OfdLock(a, Posix.F_UNLCK, 0, 0, wait: false));
        Assert.Equal(0, await waiter.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, Posix.OfdLock(b, Posix.F_UNLCK, 0, 0, wait: false));

        // Classic per-process POSIX locks (F_SETLK) against another process.
        a.Lock(0, 10);
        var probe = $"python3 -c \"import fcntl,sys; f=open('{f}','r+'); fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB, 5, 0)\"";
        var held = Shell.Run(probe, check: false);
        Assert.NotEqual(0, held.Exit);
        Assert.Contains("Resource temporarily unavailable", held.Err);
        a.Unlock(0, 10);
        Shell.Run(probe);
    }

    [Fact]
    public async Task Df_and_statfs_report_the_filesystem()
    {
        await using var m = await TestMount.StartAsync(options: new FuseMountOptions { AllowOther = true, FsName = "bigfs-test-fs", Subtype = "memtest" });
        var df = Shell.Out($"df -P '{m.Path}' | tail -1");
        Assert.StartsWith("bigfs-test-fs", df);
        Assert.Contains("1073741824", df); // 1 TiB in 1 KiB blocks
        Assert.Equal("fuse.memtest", Shell.Out($"findmnt -n -o FSTYPE '{m.Path}'"));
        Assert.Equal("255 4096", Shell.Out($"stat -f -c '%l %S' '{m.Path}'"));
        var opts = Shell.Out($"findmnt -n -o OPTIONS '{m.Path}'");
        Assert.Contains("allow_other", opts);
        Assert.Contains("default_permissions", opts);
    }

    [Fact]
    public async Task Directory_of_ten_thousand_entries_lists_completely()
    {
        await using var m = await TestMount.StartAsync();
        Directory.CreateDirectory(m["big"]);
        for (int i = 0; i < 10_000; i++)
            await using (File.Create(m[$"big/entry-with-a-longish-name-{i:D5}"])) { }
        Assert.Equal("10000", Shell.Out($"ls -U '{m["big"]}' | wc -l"));           // READDIRPLUS (first listing)
        Assert.Equal("10000", Shell.Out($"ls -U '{m["big"]}' | sort -u | wc -l"));
        Assert.Equal("10002", Shell.Out($"ls -fa '{m["big"]}' | wc -l"));          // with . and ..
        Assert.Equal("10000", Shell.Out($"find '{m["big"]}' -type f | wc -l"));
        var names = Directory.EnumerateFiles(m["big"]).Select(Path.GetFileName).ToHashSet();
        Assert.Equal(10_000, names.Count);
        Assert.Contains("entry-with-a-longish-name-09999", names);
        Assert.Equal("10000", Shell.Out($"ls -l '{m["big"]}' | grep -c entry-with"));
    }

    [Fact]
    public async Task Copy_a_real_tree_with_cp_a_and_compare_with_diff()
    {
        await using var m = await TestMount.StartAsync();
        const string source = "/usr/include/linux";
        Assert.True(Directory.Exists(source), $"{source} is missing (apt-get install linux-libc-dev)");
        Shell.Run($"cp -a {source} '{m["copy"]}'", timeoutSeconds: 300);
        Shell.Run($"diff -r {source} '{m["copy"]}'", timeoutSeconds: 300);
        // Metadata survives too: modes and mtimes.
        Assert.Equal(Shell.Out($"cd {source} && find . -printf '%p %m %T@ %y\\n' | sort"),
                     Shell.Out($"cd '{m["copy"]}' && find . -printf '%p %m %T@ %y\\n' | sort"));
        // And it all goes away.
        Shell.Run($"rm -rf '{m["copy"]}'");
        Assert.Empty(Directory.EnumerateFileSystemEntries(m.Path));
    }

    [Fact]
    public async Task Fallocate_lseek_and_copy_file_range()
    {
        await using var m = await TestMount.StartAsync();
        Shell.Run($"fallocate -l 8192 '{m["fa"]}'");
        Assert.Equal(8192, new FileInfo(m["fa"]).Length);
        Shell.Run($"fallocate -n -l 100000 '{m["fa"]}'"); // KEEP_SIZE
        Assert.Equal(8192, new FileInfo(m["fa"]).Length);
        await File.WriteAllTextAsync(m["src"], "copy me please");
        // cp uses copy_file_range(2) on Linux when it can.
        Shell.Run($"cp --reflink=never '{m["src"]}' '{m["dst"]}'");
        Assert.Equal("copy me please", await File.ReadAllTextAsync(m["dst"]));
        // SEEK_DATA / SEEK_HOLE reach LSEEK.
        var r = Shell.Run($"python3 -c \"import os; fd=os.open('{m["src"]}', os.O_RDONLY); print(os.lseek(fd, 3, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE))\"");
        Assert.Equal("3 14", r.Out.Trim());
    }

    [Fact]
    public async Task Unlinked_open_file_stays_readable_until_closed_and_is_then_forgotten()
    {
        var fs = new MemoryFileSystem();
        await using var m = await TestMount.StartAsync(fs);
        await File.WriteAllTextAsync(m["gone"], "still here");
        int nodesBefore = fs.NodeCount;
        await using (var s = new FileStream(m["gone"], FileMode.Open, FileAccess.Read))
        {
            File.Delete(m["gone"]);
            Assert.False(File.Exists(m["gone"]));
            using var reader = new StreamReader(s);
            Assert.Equal("still here", await reader.ReadToEndAsync());
            Assert.Equal(nodesBefore, fs.NodeCount);
        }
        // Closed and unlinked: once the kernel FORGETs the inode, the filesystem drops it.
        await Poll.UntilAsync(() => fs.NodeCount == nodesBefore - 1, TimeSpan.FromSeconds(20), "the unlinked inode to be forgotten");
    }

    [Fact]
    public async Task Lookup_counts_follow_replies_and_forgets()
    {
        await using var m = await TestMount.StartAsync();
        await File.WriteAllTextAsync(m["counted"], "");
        ulong ino = ulong.Parse(Shell.Out($"stat -c %i '{m["counted"]}'"));
        Assert.True(m.Mount.LookupCount(ino) >= 1);
        // Ask the kernel to drop unused dentries and inodes: it sends FORGET for them.
        Shell.Run("sync; echo 2 > /proc/sys/vm/drop_caches");
        await Poll.UntilAsync(() => m.Mount.LookupCount(ino) == 0, TimeSpan.FromSeconds(20), "FORGET of the inode");
        Shell.Run($"ls -l '{m.Path}' > /dev/null");
        Assert.True(m.Mount.LookupCount(ino) >= 1); // READDIRPLUS handed out a reference again
    }
}
