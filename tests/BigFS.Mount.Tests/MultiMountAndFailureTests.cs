using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>Two mounts of one cluster, and failures: a storage node or the mount daemon dying.</summary>
public class MultiMountAndFailureTests
{
    /// <summary>The file's SHA-256 as `sha256sum` reads it (a separate process: its own open), in <see cref="FileHelpers.Sha256"/>'s form.</summary>
    private static async Task<string> Sha256SumAsync(string path) =>
        (await RunAsync($"sha256sum < {Quote(path)}")).Split(' ')[0].ToUpperInvariant();

    [Fact]
    public async Task CloseToOpenBetweenTwoMountsAndRenamesSeenAfterTheCacheTimeout()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var data = FileHelpers.RandomBytes(5 << 20, seed: 21);
        await File.WriteAllBytesAsync($"{a}/shared.bin", data);   // closed on A …
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/shared.bin")));  // … complete on B's next open

        // Rewritten on A: B's next open sees the new contents (not its page cache).
        var data2 = FileHelpers.RandomBytes(5 << 20, seed: 22);
        await File.WriteAllBytesAsync($"{a}/shared.bin", data2);
        await Poll.UntilAsync(() => FileHelpers.Sha256(File.ReadAllBytes($"{b}/shared.bin")) == FileHelpers.Sha256(data2),
            TimeSpan.FromSeconds(5), "B to see A's new contents");

        File.Move($"{a}/shared.bin", $"{a}/renamed.bin");
        await Poll.UntilAsync(() => File.Exists($"{b}/renamed.bin") && !File.Exists($"{b}/shared.bin"), TimeSpan.FromSeconds(5), "the rename on B");
    }

    [Fact]
    public async Task DataStartsUploadingWhenItsWriterSetsTheModeAndLaterWritesStillWin()
    {
        // cp -a, rsync and install set times, owner, mode or ACLs between the last write and
        // close: the buffered data starts uploading then, and close only has to commit it.
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var first = FileHelpers.RandomBytes(200_000, seed: 31);
        var patch = FileHelpers.RandomBytes(30_000, seed: 32);
        await File.WriteAllBytesAsync($"{a}/warm-up.bin", patch);   // the mount knows the nodes and has connections to them
        await File.WriteAllBytesAsync(Path.Combine(m.Cluster.Root, "first"), first);
        await File.WriteAllBytesAsync(Path.Combine(m.Cluster.Root, "patch"), patch);
        var writer = PausedWriter.Start(m.Cluster.Root,
            beforePause: """
                fd = os.open(args[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.write(fd, open(args[1], "rb").read())
                os.fchmod(fd, 0o600)   # a SETATTR on the open file
                """,
            afterPause: """
                data = open(args[2], "rb").read()
                os.pwrite(fd, data, 150000)   # over the data being uploaded
                os.pwrite(fd, data, 190000)   # past its end
                os.close(fd)
                """,
            $"{a}/eager.bin", Path.Combine(m.Cluster.Root, "first"), Path.Combine(m.Cluster.Root, "patch"));
        await writer.WaitPausedAsync();
        try
        {
            await Poll.UntilAsync(async () => writer.HasEnded || (await m.Cluster.StatusAsync()).ChunksUncommitted >= 1, TimeSpan.FromSeconds(30), "the upload to start before close");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; cluster: {await m.Cluster.StatusAsync()}; mount log:\n{m.Mounts[0].Log}");
        }
        if (writer.HasEnded)
            Assert.Fail(await writer.FailureAsync());
        Assert.Equal(1UL, (await m.Cluster.StatusAsync()).LiveChunks);   // the warm-up's: nothing of this file is committed yet
        Assert.False(File.Exists($"{b}/eager.bin") && new FileInfo($"{b}/eager.bin").Length > 0);
        await writer.ResumeAsync();
        var expected = new byte[220_000];
        first.CopyTo(expected, 0);
        patch.CopyTo(expected, 150_000);
        patch.CopyTo(expected, 190_000);
        Assert.Equal(FileHelpers.Sha256(expected), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{a}/eager.bin")));
        Assert.Equal(FileHelpers.Sha256(expected), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/eager.bin")));
        Assert.Equal("600", (await RunAsync($"stat -c %a {Quote(b)}/eager.bin")).Trim());
    }

    [Fact]
    public async Task AFileClosedOnOneMountIsWholeOnTheOthersNextOpenEvenIfItsSizeWasJustCachedThere()
    {
        // Close-to-open must hold within the attribute timeout too: the kernel never reads past
        // the size it holds, so a size cached by a stat (or an earlier read) must not survive
        // the next open once the data changed.
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var data = FileHelpers.RandomBytes(200_000, seed: 41);
        await File.WriteAllBytesAsync(Path.Combine(m.Cluster.Root, "data"), data);
        var writer = PausedWriter.Start(m.Cluster.Root,
            beforePause: """
                fd = os.open(args[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.write(fd, open(args[1], "rb").read())
                """,
            afterPause: "os.close(fd)",
            $"{a}/f.bin", Path.Combine(m.Cluster.Root, "data"));
        await writer.WaitPausedAsync();
        Assert.Equal(0, new FileInfo($"{b}/f.bin").Length);   // B caches the size before A's commit
        await writer.ResumeAsync();
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/f.bin")));

        var more = FileHelpers.RandomBytes(50_000, seed: 42);
        await using (var fs = new FileStream($"{a}/f.bin", FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0))
            fs.Write(more);
        Assert.Equal(FileHelpers.Sha256([.. data, .. more]), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/f.bin")));
        Assert.Equal(FileHelpers.Sha256([.. data, .. more]), await Sha256SumAsync($"{b}/f.bin"));
    }

    [Fact]
    public async Task ADescriptorStillOpenOnTheOtherMountDoesNotHideACommitFromItsNextOpen()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var data = FileHelpers.RandomBytes(200_000, seed: 43);
        await File.WriteAllBytesAsync($"{a}/f.bin", data);
        await using var held = new FileStream($"{b}/f.bin", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        held.ReadExactly(new byte[100_000]);   // B has the old data and size cached

        var more = FileHelpers.RandomBytes(50_000, seed: 44);
        var patch = FileHelpers.RandomBytes(1_000, seed: 45);
        await using (var fs = new FileStream($"{a}/f.bin", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0))
        {
            fs.Position = 1_000;
            fs.Write(patch);
            fs.Position = data.Length;
            fs.Write(more);
        }
        byte[] expected = [.. data, .. more];
        patch.CopyTo(expected, 1_000);
        Assert.Equal(FileHelpers.Sha256(expected), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/f.bin")));
        // The held descriptor shares B's view of the file: it reads the new data from there on.
        var rest = new byte[expected.Length - 100_000];
        held.ReadExactly(rest);
        Assert.Equal(FileHelpers.Sha256(expected[100_000..]), FileHelpers.Sha256(rest));
    }

    [Fact]
    public async Task AppendsFromTwoMountsInTurnLoseNothing()
    {
        // A log appended to from one host, then the other, each closing in between, while both
        // still have the previous size cached: every O_APPEND write must land at the end.
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await RunAsync($"printf 'line 0\\n' > {Quote(a)}/log; cat {Quote(a)}/log {Quote(b)}/log > /dev/null");
        // Each mount reads after its own append, so at its next turn it holds the size from
        // before the other's append (reading first would refresh it).
        var turns = Enumerable.Range(1, 6).Select(i =>
        {
            var writer = i % 2 == 1 ? b : a;
            return $"printf 'line {i}\\n' >> {Quote(writer)}/log; cat {Quote(writer)}/log > /dev/null";
        });
        await RunAsync(string.Join("; ", turns));
        var expected = string.Concat(Enumerable.Range(0, 7).Select(i => $"line {i}\n"));
        Assert.Equal(expected, await File.ReadAllTextAsync($"{a}/log"));
        Assert.Equal(expected, await File.ReadAllTextAsync($"{b}/log"));
        Assert.Equal(expected, await RunAsync($"cat {Quote(b)}/log"));
    }

    [Fact]
    public async Task ANameReplacedOnOneMountOpensAsTheNewFileOnTheOtherAtOnce()
    {
        // An editor's save on A (write a temporary file, rename it over) while B still has the
        // name cached, pointing at the old inode, now gone: B's next open must not fail.
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/doc", "version one");
        Assert.Equal("version one", await File.ReadAllTextAsync($"{b}/doc"));
        await File.WriteAllTextAsync($"{a}/.doc.swp", "version two, longer");
        File.Move($"{a}/.doc.swp", $"{a}/doc", overwrite: true);
        Assert.Equal("version two, longer", await RunAsync($"cat {Quote(b)}/doc"));
        Assert.Equal("version two, longer", await File.ReadAllTextAsync($"{b}/doc"));
    }

    [Fact]
    public async Task OverwritesAndTruncatesOnOneMountAreWhatTheOthersNextOpenReads()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var data = FileHelpers.RandomBytes(300_000, seed: 51);
        await File.WriteAllBytesAsync($"{a}/f", data);
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/f")));   // B caches pages and size

        var patch = FileHelpers.RandomBytes(5_000, seed: 52);   // same size: only the data version tells
        await using (var fs = new FileStream($"{a}/f", FileMode.Open, FileAccess.Write))
        {
            fs.Position = 100_000;
            fs.Write(patch);
        }
        patch.CopyTo(data, 100_000);
        Assert.Equal(FileHelpers.Sha256(data), await Sha256SumAsync($"{b}/f"));
        var mapped = $"import mmap,hashlib; f=open('{b}/f','rb'); print(hashlib.sha256(mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ)[:]).hexdigest())";
        Assert.Equal(FileHelpers.Sha256(data), (await RunAsync($"python3 -c \"{mapped}\"")).Trim().ToUpperInvariant());

        await RunAsync($"truncate -s 10000 {Quote(a)}/f");
        Assert.Equal(FileHelpers.Sha256(data[..10_000]), await Sha256SumAsync($"{b}/f"));
        var more = FileHelpers.RandomBytes(50_000, seed: 53);
        await using (var fs = new FileStream($"{a}/f", FileMode.Append, FileAccess.Write))
            fs.Write(more);
        Assert.Equal(FileHelpers.Sha256([.. data[..10_000], .. more]), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{b}/f")));
    }

    [Fact]
    public async Task ADescriptorHeldOpenOnOneMountReadsAnotherMountsSameSizeOverwriteWithoutReopening()
    {
        // Same size, so only the data version tells; B never reopens. Its pages go when the
        // change feed tells B of A's commit, and the held descriptor reads A's bytes.
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var data = FileHelpers.RandomBytes(200_000, seed: 61);
        await File.WriteAllBytesAsync($"{a}/f", data);
        using var held = File.OpenHandle($"{b}/f", FileMode.Open, FileAccess.Read);
        var back = new byte[data.Length];
        Assert.Equal(data.Length, RandomAccess.Read(held, back, 0));
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(back));   // B's kernel has the pages

        var patch = FileHelpers.RandomBytes(5_000, seed: 62);
        await using (var fs = new FileStream($"{a}/f", FileMode.Open, FileAccess.Write))
        {
            fs.Position = 150_000;
            fs.Write(patch);
        }
        patch.CopyTo(data, 150_000);
        await Poll.UntilAsync(() => RandomAccess.Read(held, back, 0) == back.Length && FileHelpers.Sha256(back) == FileHelpers.Sha256(data),
            TimeSpan.FromSeconds(10), "B's held descriptor to read A's overwrite");
    }

    [Fact]
    public async Task AFileThisMountWroteStaysInThePageCacheAfterItsCommit_WhileAnotherMountsCommitDropsIt()
    {
        // The kernel sets mtime locally when it writes; the commit's mtime comes from the server.
        // The page cache is kept across this mount's own commits, not across another mount's.
        await using var m = await MountedCluster.StartAsync(mounts: 2, mountArgs: "--attr_timeout 1ms");
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        byte[] expected = [];
        // The machine may drop pages on its own (see PageCache), never all of them three times
        // running; a mount that drops them itself never keeps them once.
        var kept = new List<string>();
        for (var attempt = 0; attempt < 3 && kept.Count < 2; attempt++)
        {
            kept.Clear();
            var data = FileHelpers.RandomBytes(1 << 20, seed: 63 + 10 * attempt);
            await File.WriteAllBytesAsync($"{a}/f", data);
            _ = new FileInfo($"{a}/f").Length;   // fresh attributes (1 ms attribute timeout): the committed mtime
            if (await PageCache.ResidentBytesAsync($"{a}/f") == data.Length)
                kept.Add("after the commit and a stat");
            Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{a}/f")));
            if (await PageCache.ResidentBytesAsync($"{a}/f") == data.Length)
                kept.Add("after the next open (KEEP_CACHE)");

            // Truncated and appended to by this mount: still its own changes.
            await RunAsync($"truncate -s 500000 {Quote(a)}/f");
            var more = FileHelpers.RandomBytes(100_000, seed: 64);
            await using (var fs = new FileStream($"{a}/f", FileMode.Append, FileAccess.Write))
                fs.Write(more);
            expected = [.. data[..500_000], .. more];
            Assert.Equal(FileHelpers.Sha256(expected), await Sha256SumAsync($"{a}/f"));
        }
        Assert.Equal(["after the commit and a stat", "after the next open (KEEP_CACHE)"], kept);

        // Another mount's same-size overwrite: A's next open reads it.
        var patch = FileHelpers.RandomBytes(4096, seed: 65);
        await using (var fs = new FileStream($"{b}/f", FileMode.Open, FileAccess.Write))
        {
            fs.Position = 8192;
            fs.Write(patch);
        }
        patch.CopyTo(expected, 8192);
        Assert.Equal(FileHelpers.Sha256(expected), await Sha256SumAsync($"{a}/f"));
    }

    [Fact]
    public async Task CapabilitiesAnotherMountGaveAFileGoAtTheNextWriteThroughADescriptorHeldOpenHere()
    {
        // Once the file had none, A's kernel stops asking before each write (FUSE_HANDLE_KILLPRIV_V2
        // sets SB_NOSEC), and nothing tells it of B's setxattr: only A's mount, told by the
        // change feed, can take them away.
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var script = Path.Combine(m.Cluster.Root, "writer.py");
        var marker = Path.Combine(m.Cluster.Root, "first-write-done");
        await File.WriteAllTextAsync(script, """
            import os, sys, time
            path, marker = sys.argv[1], sys.argv[2]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o755)
            os.write(fd, b'program')
            open(marker, 'w').close()
            deadline = time.time() + 20
            while True:
                try:
                    os.getxattr(path, 'security.capability')
                    break
                except OSError:
                    if time.time() > deadline:
                        sys.exit('the capabilities never showed on this mount')
                    time.sleep(0.05)
            os.write(fd, b'!')
            os.close(fd)
            """);
        var writer = TryRunAsync($"python3 {Quote(script)} {Quote(a)}/prog {Quote(marker)}", timeout: TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => File.Exists(marker) || writer.IsCompleted, TimeSpan.FromSeconds(20), "the writer's first write");
        await Capabilities.SetAsync($"{Quote(b)}/prog");
        var result = await writer;
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.False(await Capabilities.HaveAsync($"{Quote(b)}/prog"), "capabilities kept after the write");
        Assert.Equal("program!", await RunAsync($"cat {Quote(b)}/prog"));
    }

    [Fact]
    public async Task EveryStorageNodeRestartingIsAPauseForACloseNotAnError()
    {
        // With no node active the metadata server lists none to write to; the close waits for
        // one (node_outage_timeout, default 60 s) rather than failing within a second.
        await using var m = await MountedCluster.StartAsync();
        var cluster = m.Cluster;
        foreach (var node in cluster.Nodes)
            await node!.StopAsync();
        await Poll.UntilAsync(async () => (await cluster.StatusAsync()).Nodes.All(n => n.State != BigFS.Protocol.NodeState.Active),
            TimeSpan.FromSeconds(20), "no active node");
        var data = FileHelpers.RandomBytes(3 << 20, seed: 67);
        var local = Path.Combine(cluster.Root, "data.bin");
        await File.WriteAllBytesAsync(local, data);

        var copy = TryRunAsync($"cp {Quote(local)} {Quote(m.MountPoint)}/f", timeout: TimeSpan.FromMinutes(2));
        await Poll.UntilAsync(() => copy.IsCompleted || m.Mounts[0].Log.Contains("uploads wait for one"), TimeSpan.FromSeconds(30), "the close waiting for a node");
        Assert.False(copy.IsCompleted, $"cp ended with no node up: {(copy.IsCompleted ? copy.Result.Stderr : "")}");
        for (var i = 0; i < cluster.Nodes.Count; i++)
            await cluster.RestartNodeAsync(i);

        var copied = await copy;
        Assert.True(copied.ExitCode == 0, copied.Stderr);
        Assert.Contains("Storage nodes are active again", m.Mounts[0].Log);
        Assert.Equal(FileHelpers.Sha256(data), await Sha256SumAsync($"{m.MountPoint}/f"));
    }

    [Fact]
    public async Task AnOverwriteWhoseCloseFailsLeavesNoUncommittedBytesInThePageCache()
    {
        // Same size and no commit: neither a size nor a data version tells the kernel its pages
        // are wrong; the mount must drop them when it gives the write up.
        // Nodes that are all down fail the close after node_outage_timeout (default 60 s).
        await using var m = await MountedCluster.StartAsync(mountArgs: "--node_outage_timeout 2s");
        var data = FileHelpers.RandomBytes(1 << 20, seed: 66);
        await File.WriteAllBytesAsync($"{m.MountPoint}/f", data);
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{m.MountPoint}/f")));

        var cluster = m.Cluster;
        ulong committed;
        await using (var before = await cluster.ClientAsync())
            committed = (await before.ResolvePathAsync("/f")).Version;
        foreach (var node in cluster.Nodes)
            await node!.StopAsync();
        var overwrite = $"import os\nfd = os.open('{m.MountPoint}/f', os.O_WRONLY)\nos.pwrite(fd, os.urandom(65536), 4096)\ntry:\n  os.close(fd)\nexcept OSError as e:\n  print(e.strerror)\n";
        var script = Path.Combine(cluster.Root, "overwrite.py");
        await File.WriteAllTextAsync(script, overwrite);
        var closeError = (await RunAsync($"python3 {Quote(script)}")).Trim();
        Assert.Equal("Input/output error", closeError);   // no node is up: not ENOSPC, nothing is full
        // While the file stays open on the mount its writes stay buffered (a later close commits
        // them); the last release gives them up.
        await Poll.UntilAsync(() => Task.FromResult(m.Mounts[0].Log.Contains("data not committed at release")), TimeSpan.FromSeconds(30), "the release to give up the write");

        for (var i = 0; i < cluster.Nodes.Count; i++)
            await cluster.RestartNodeAsync(i);
        await cluster.WaitForActiveNodesAsync(cluster.Nodes.Count);
        Assert.Equal(FileHelpers.Sha256(data), await Sha256SumAsync($"{m.MountPoint}/f"));

        // Given up means never committed later either: a retry landing once the nodes are back
        // would put bytes its writer was told were lost over whatever was written since.
        await using var client = await cluster.ClientAsync();
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(3); DateTime.UtcNow < until; await Task.Delay(100))
            Assert.Equal(committed, (await client.ResolvePathAsync("/f")).Version);
        Assert.Equal(FileHelpers.Sha256(data), await Sha256SumAsync($"{m.MountPoint}/f"));
    }

    [Fact]
    public async Task AttributesCachedByTheKernelFollowAnotherMountsChangesBeforeTheTimeout()
    {
        // The kernel keeps attributes for the attribute timeout; the change feed drops them
        // sooner. With 60 s timeouts (entries too: a lookup would refresh them), B sees A's
        // append and chmod within seconds.
        await using var m = await MountedCluster.StartAsync(mounts: 2, mountArgs: "--attr_timeout 60s --entry_timeout 60s");
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/f", "12345");
        string SizeAndMode() => new FileInfo($"{b}/f") is var f ? $"{f.Length} {Convert.ToString((int)f.UnixFileMode, 8)}" : "";
        Assert.Equal("5 644", SizeAndMode());
        await File.AppendAllTextAsync($"{a}/f", "678");
        await RunAsync($"chmod 600 {Quote(a)}/f");
        await Poll.UntilAsync(() => SizeAndMode() == "8 600", TimeSpan.FromSeconds(10), "B's stat to show A's append and chmod");
    }

    [Fact]
    public async Task TheKernelsNamesFollowAnotherMountsRenameUnlinkAndCreateBeforeTheEntryTimeout()
    {
        // With 60 s entry timeouts B's kernel would use its cached names for a minute; the
        // change feed's names drop them within the feed's latency.
        await using var m = await MountedCluster.StartAsync(mounts: 2, mountArgs: "--attr_timeout 60s --entry_timeout 60s");
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        Directory.CreateDirectory($"{a}/d");
        await File.WriteAllTextAsync($"{a}/d/old", "o");
        await File.WriteAllTextAsync($"{a}/d/doomed", "x");
        string Seen() => string.Join(" ", new[] { "old", "new", "doomed", "born" }.Select(n => File.Exists($"{b}/d/{n}") ? n : "-"));
        Assert.Equal("old - doomed -", Seen());   // B's kernel now holds all four, two of them as absent

        File.Move($"{a}/d/old", $"{a}/d/new");
        File.Delete($"{a}/d/doomed");
        await File.WriteAllTextAsync($"{a}/d/born", "b");
        await Poll.UntilAsync(() => Seen() == "- new - born", TimeSpan.FromSeconds(10), "B's names to follow A's rename, unlink and create");
        Assert.Equal("o", await File.ReadAllTextAsync($"{b}/d/new"));

        // A name that is not UTF-8 is invalidated by its exact bytes too.
        var latin1 = $"d/caf$'\\xe9'";
        await RunAsync($"touch {Quote(a)}/{latin1}");
        await RunAsync($"test -e {Quote(b)}/{latin1}");   // B's kernel caches it
        await RunAsync($"rm {Quote(a)}/{latin1}");
        await Poll.UntilAsync(async () => (await TryRunAsync($"test -e {Quote(b)}/{latin1}")).ExitCode != 0, TimeSpan.FromSeconds(10), "B to drop A's removed Latin-1 name");
    }

    [Fact]
    public async Task NamesAndAttributesCachedByOneMountFollowChangesMadeOnTheOther()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        Directory.CreateDirectory($"{b}/d");            // made on B: B's daemon knows it completely
        await File.WriteAllTextAsync($"{b}/d/kept", "k");
        await File.WriteAllTextAsync($"{b}/d/gone", "g");
        Assert.False(File.Exists($"{b}/d/new"));        // answered by B's daemon without asking
        Assert.Equal("644", (await RunAsync($"stat -c %a {Quote(b)}/d/kept")).Trim());

        await File.WriteAllTextAsync($"{a}/d/new", "n");
        File.Delete($"{a}/d/gone");
        await RunAsync($"chmod 600 {Quote(a)}/d/kept");
        await Poll.UntilAsync(() => File.Exists($"{b}/d/new") && !File.Exists($"{b}/d/gone"), TimeSpan.FromSeconds(5), "B to see A's create and unlink");
        await Poll.UntilAsync(async () => (await RunAsync($"stat -c %a {Quote(b)}/d/kept")).Trim() == "600", TimeSpan.FromSeconds(5), "B to see A's chmod");
        Assert.Equal("n", await File.ReadAllTextAsync($"{b}/d/new"));
    }

    [Fact]
    public async Task AStorageNodeKilledDuringA256MiBWriteThroughTheMount()
    {
        await using var m = await MountedCluster.StartAsync(nodes: 4);
        var local = Path.Combine(m.Cluster.Root, "src.bin");
        await RunAsync($"head -c {256 << 20} /dev/urandom > {Quote(local)}");
        var expected = (await RunAsync($"sha256sum < {Quote(local)}")).Split(' ')[0];

        var copy = RunAsync($"dd if={Quote(local)} of={Quote(m.MountPoint)}/big.bin bs=1M conv=fsync status=none", timeout: TimeSpan.FromMinutes(5));
        await Poll.UntilAsync(() => File.Exists($"{m.MountPoint}/big.bin") && new FileInfo($"{m.MountPoint}/big.bin").Length >= 0,
            TimeSpan.FromSeconds(30), "the write to start");
        await Poll.UntilAsync(async () => (await m.Cluster.StatusAsync()).ChunksTotal >= 4, TimeSpan.FromSeconds(60), "chunks being uploaded");
        await m.Cluster.Nodes[2]!.KillAsync();
        await copy;

        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        Assert.Equal(expected, (await RunAsync($"sha256sum < {Quote(m.MountPoint)}/big.bin", timeout: TimeSpan.FromMinutes(3))).Split(' ')[0]);
    }

    [Fact]
    public async Task AMetadataServerRestartIsAPauseForTheMountNotAnError()
    {
        await using var m = await MountedCluster.StartAsync();
        var mount = m.Mounts[0];
        var data = FileHelpers.RandomBytes(3 << 20, seed: 24);
        await File.WriteAllBytesAsync($"{mount.MountPoint}/before.bin", data);

        await m.Cluster.StopMetaAsync();
        // Started while the server is down: every step waits for it instead of failing.
        var during = TryRunAsync($"cd {Quote(mount.MountPoint)} && mkdir during && head -c 1000000 /dev/urandom > during/f.bin && sha256sum during/f.bin"
            + " && mv during/f.bin during/g.bin && sha256sum before.bin && ls during", timeout: TimeSpan.FromSeconds(90));
        await Poll.UntilAsync(() => mount.Log.Contains("Metadata server unreachable"), TimeSpan.FromSeconds(30), "the mount to wait for the metadata server");
        Assert.False(during.IsCompleted);
        await m.Cluster.StartMetaAsync();

        var result = await during;
        Assert.True(result.ExitCode == 0, result.Stderr);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var written = lines[0].Split(' ')[0];
        Assert.Equal(FileHelpers.Sha256(data).ToLowerInvariant(), lines[1].Split(' ')[0]);
        Assert.Equal("g.bin", lines[2]);
        Assert.Equal(written, FileHelpers.Sha256(await File.ReadAllBytesAsync($"{mount.MountPoint}/during/g.bin")).ToLowerInvariant());
    }

    /// <summary>
    /// A create of argv[1] through libc (not retried on EINTR, unlike os.open) while SIGALRM
    /// arrives every 200 ms; prints "ok" or the error.
    /// </summary>
    private const string CreateTakingAlarms = """
        import ctypes, os, signal, sys
        libc = ctypes.CDLL(None, use_errno=True)
        signal.signal(signal.SIGALRM, lambda *_: None)
        signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)
        fd = libc.open(sys.argv[1].encode(), os.O_CREAT | os.O_WRONLY, 0o644)
        signal.setitimer(signal.ITIMER_REAL, 0)
        print("ok" if fd >= 0 else os.strerror(ctypes.get_errno()))
        """;

    [Fact]
    public async Task ASignalToAProcessWaitingForTheMetadataServerDoesNotMakeItsCallFail()
    {
        // Any signal to a process in a FUSE request makes the kernel send FUSE_INTERRUPT (the .NET
        // runtime's own signals, SIGCHLD, a timer). On a local filesystem a file operation does
        // not fail with EINTR; here neither, even while the call waits for the metadata server.
        await using var m = await MountedCluster.StartAsync();
        var mount = m.Mounts[0];
        await m.Cluster.StopMetaAsync();
        var create = TryRunAsync($"python3 -c {Quote(CreateTakingAlarms)} {Quote(mount.MountPoint)}/made-during-the-outage", timeout: TimeSpan.FromSeconds(90));
        await Poll.UntilAsync(() => mount.Log.Contains("Metadata server unreachable"), TimeSpan.FromSeconds(30), "the create to wait for the metadata server");
        await Task.Delay(TimeSpan.FromSeconds(1));   // several SIGALRMs while it waits
        Assert.False(create.IsCompleted, "the create ended while the metadata server was down: " + (create.IsCompleted ? (await create).Stdout : ""));
        await m.Cluster.StartMetaAsync();
        var result = await create;
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("ok", result.Stdout.Trim());
        Assert.True(File.Exists($"{mount.MountPoint}/made-during-the-outage"));
    }

    [Fact]
    public async Task AProcessKilledWhileWaitingForTheMetadataServerEndsAtOnce()
    {
        // The kernel keeps a killed process until its request is answered. Signals do not make
        // calls fail (above), but a kill must not wait out the outage window (60 s).
        await using var m = await MountedCluster.StartAsync();
        var mount = m.Mounts[0];
        var root = m.Cluster.Root;
        await m.Cluster.StopMetaAsync();
        // mkdir handles no signal: SIGTERM is its first, and fatal.
        var mkdir = TryRunAsync($"echo $$ > {Quote(root)}/mkdir.pid; exec mkdir {Quote(mount.MountPoint)}/made-during-the-outage", timeout: TimeSpan.FromSeconds(90));
        // This one's first signals are harmless SIGALRMs, which take the kernel's one INTERRUPT; the SIGKILL comes later.
        var python = TryRunAsync($"echo $$ > {Quote(root)}/python.pid; exec python3 -c {Quote(CreateTakingAlarms)} {Quote(mount.MountPoint)}/created-during-the-outage",
            timeout: TimeSpan.FromSeconds(90));
        await Poll.UntilAsync(() => mount.Log.Contains("Metadata server unreachable"), TimeSpan.FromSeconds(30), "the calls to wait for the metadata server");
        await Task.Delay(TimeSpan.FromSeconds(1));   // several SIGALRMs first
        Assert.False(mkdir.IsCompleted || python.IsCompleted, "a call ended while the metadata server was down");

        await RunAsync($"kill -TERM $(cat {Quote(root)}/mkdir.pid); kill -KILL $(cat {Quote(root)}/python.pid)");
        var ended = await Task.WhenAll(mkdir, python).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.All(ended, r => Assert.NotEqual(0, r.ExitCode));

        await m.Cluster.StartMetaAsync();
        await RunAsync($"mkdir {Quote(mount.MountPoint)}/after && echo x > {Quote(mount.MountPoint)}/after/f");
        Assert.Equal("x", (await File.ReadAllTextAsync($"{mount.MountPoint}/after/f")).Trim());
    }

    [Fact]
    public async Task AFileUnlinkedWhileOpenOutlivesAMetadataServerRestart()
    {
        // Opens live in the server's memory. After a restart the mount registers its open files
        // again; one with no name left must be taken back too, or the server reclaims it as an
        // orphan one lease later while a process still uses it.
        var lease = TimeSpan.FromSeconds(3);
        await using var m = await MountedCluster.StartAsync(configure: o => o.SessionLease = lease);
        var mount = m.Mounts[0];
        var path = $"{mount.MountPoint}/ghost.bin";
        var data = FileHelpers.RandomBytes(5 << 20, seed: 27);
        await File.WriteAllBytesAsync(path, data);
        var script = """
            import hashlib, os, sys
            path = sys.argv[1]
            fd = os.open(path, os.O_RDWR)
            os.unlink(path)
            hold()
            whole = b""
            while chunk := os.pread(fd, 1 << 20, len(whole)):
                whole += chunk
            print(hashlib.sha256(whole).hexdigest())
            os.pwrite(fd, b"tail", len(whole))
            os.fsync(fd)
            print(os.pread(fd, 4, len(whole)).decode(), os.fstat(fd).st_size)
            os.close(fd)
            """;
        var result = await HeldAcrossAMetadataRestartAsync(m, script, Quote(path), "the file to be open and unlinked", async () =>
        {
            Assert.Contains("(0 no longer exist)", mount.Log);
            // Past the restart's orphan sweep (one lease after the start, checked every few seconds).
            await Task.Delay(lease * 3);
        });
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(FileHelpers.Sha256(data).ToLowerInvariant(), lines[0]);
        Assert.Equal($"tail {data.Length + 4}", lines[1]);
        // Its last close reclaims it.
        await Poll.UntilAsync(async () => (await m.Cluster.StatusAsync()).ChunksTotal == 0, TimeSpan.FromSeconds(60), "chunks of the unlinked file collected");
    }

    [Fact]
    public async Task AnOTmpFileCanBeLinkedAfterAMetadataServerRestart()
    {
        // Which nlink-0 files were created unnamed is persisted: after a restart, linkat still
        // names an O_TMPFILE (and still refuses a file unlinked while open).
        var lease = TimeSpan.FromSeconds(3);
        await using var m = await MountedCluster.StartAsync(configure: o => o.SessionLease = lease);
        var mount = m.Mounts[0];
        var script = """
            import ctypes, errno, hashlib, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            def link_fd(fd, path):
                if libc.linkat(fd, b"", -100, path.encode(), 0x1000) != 0:
                    return errno.errorcode[ctypes.get_errno()]
                return "ok"
            mnt = sys.argv[1]
            data = os.urandom(5 << 20)
            fd = os.open(mnt, os.O_TMPFILE | os.O_RDWR, 0o640)
            os.write(fd, data)
            os.fsync(fd)
            gone = os.open(mnt + "/gone", os.O_CREAT | os.O_RDWR, 0o600)
            os.unlink(mnt + "/gone")
            hold()
            print(link_fd(fd, mnt + "/named"), link_fd(gone, mnt + "/back"), os.fstat(fd).st_nlink)
            os.close(fd)
            os.close(gone)
            print(hashlib.sha256(open(mnt + "/named", "rb").read()).hexdigest() == hashlib.sha256(data).hexdigest(), sorted(os.listdir(mnt)))
            """;
        var result = await HeldAcrossAMetadataRestartAsync(m, script, Quote(mount.MountPoint), "the O_TMPFILE to be written");
        Assert.Equal(["ok ENOENT 1", "True ['named']"], result.Stdout.Trim().Split('\n'));
        // The unlinked one goes at its last close; the named one stays.
        await Poll.UntilAsync(async () => (await m.Cluster.StatusAsync()).Inodes == 2, TimeSpan.FromSeconds(30), "the unlinked file to go at its last close");
        Assert.Equal(5 << 20, new FileInfo($"{mount.MountPoint}/named").Length);
    }

    /// <summary>
    /// Runs a Python <paramref name="script"/> (with <paramref name="args"/>) that calls
    /// <c>hold()</c> once it has set up what must outlive the restart: the metadata server
    /// restarts while the script waits there, the mount registers its open files again,
    /// <paramref name="beforeGo"/> runs, and the script goes on. Returns its result, exit 0.
    /// </summary>
    private static async Task<Result> HeldAcrossAMetadataRestartAsync(MountedCluster m, string script, string args, string setUp, Func<Task>? beforeGo = null)
    {
        var mount = m.Mounts[0];
        var held = Path.Combine(m.Cluster.Root, "held");
        var go = Path.Combine(m.Cluster.Root, "go");
        const string prelude = """
            import os, sys, time
            def hold():
                open(os.environ["HELD"], "w").close()
                while not os.path.exists(os.environ["GO"]):
                    time.sleep(0.05)
            """;
        var holder = TryRunAsync($"python3 -c {Quote(prelude + "\n" + script)} {args}", timeout: TimeSpan.FromSeconds(120),
            environment: new Dictionary<string, string> { ["HELD"] = held, ["GO"] = go });
        await Poll.UntilAsync(() => File.Exists(held) || holder.IsCompleted, TimeSpan.FromSeconds(30), setUp);
        if (holder.IsCompleted)
            Assert.Fail((await holder).Stderr);

        await m.Cluster.RestartMetaAsync();
        await Poll.UntilAsync(() => mount.Log.Contains("open files under session"), TimeSpan.FromSeconds(30), "the mount to register its open files again\n" + mount.Log);
        if (beforeGo is not null)
            await beforeGo();
        await File.WriteAllTextAsync(go, "");

        Assert.True(await Task.WhenAny(holder, Task.Delay(TimeSpan.FromSeconds(60))) == holder, "the holder hangs; the mount logged:\n" + mount.Log);
        var result = await holder;
        Assert.True(result.ExitCode == 0, result.Stderr + mount.Log);
        return result;
    }

    [Fact]
    public async Task AFullClusterAnswersENOSPCAtCloseAndLosesNothing()
    {
        // 24 MiB per node, three copies of everything: about 24 MiB of files fit.
        await using var m = await MountedCluster.StartAsync(mounts: 2, configureNode: o => o.CapacityBytes = 24L << 20);
        var mnt = m.MountPoint;
        var kept = FileHelpers.RandomBytes(9 << 20, seed: 25);
        await File.WriteAllBytesAsync($"{mnt}/kept.bin", kept);

        var reserve = await TryRunAsync($"fallocate -l 1G {Quote(mnt)}/reserved.bin");   // more than the cluster holds even once
        Assert.Contains("No space left on device", reserve.Stderr);

        var tooBig = await TryRunAsync($"dd if=/dev/urandom of={Quote(mnt)}/big.bin bs=1M count=40");
        Assert.NotEqual(0, tooBig.ExitCode);
        Assert.Contains("No space left on device", tooBig.Stderr);
        Assert.Equal(FileHelpers.Sha256(kept), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{mnt}/kept.bin")));

        // An overwrite bigger than the room left, which fails (in write(2) or at close): the
        // kernel's pages held its bytes, but what this mount reads is what was committed, as a
        // mount that never saw the write reads it.
        var overwrite = $"import os\nfd = os.open('{mnt}/kept.bin', os.O_WRONLY)\ntry:\n  for i in range(40):\n    os.pwrite(fd, os.urandom(1 << 20), i << 20)\n  os.close(fd)\nexcept OSError as e:\n  print(e.strerror)\n";
        var script = Path.Combine(m.Cluster.Root, "overwrite.py");
        await File.WriteAllTextAsync(script, overwrite);
        Assert.Contains("No space left on device", await RunAsync($"python3 {Quote(script)}"));
        Assert.Equal(FileHelpers.Sha256(await File.ReadAllBytesAsync($"{m.Mounts[1].MountPoint}/kept.bin")),
            FileHelpers.Sha256(await File.ReadAllBytesAsync($"{mnt}/kept.bin")));

        // Room comes back once removed files are collected (the failed write's uploaded chunks
        // included); then writes succeed again. cp reports close(2)'s error (.NET's File API does not).
        File.Delete($"{mnt}/kept.bin");
        File.Delete($"{mnt}/big.bin");
        var later = Path.Combine(m.Cluster.Root, "later.bin");
        await File.WriteAllBytesAsync(later, FileHelpers.RandomBytes(8 << 20, seed: 26));
        await Poll.UntilAsync(async () => (await TryRunAsync($"cp {Quote(later)} {Quote(mnt)}/later.bin")).ExitCode == 0,
            TimeSpan.FromSeconds(60), "a write to succeed once space is reclaimed");
        Assert.Equal(FileHelpers.Sha256(await File.ReadAllBytesAsync(later)), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{mnt}/later.bin")));
    }

    [Fact]
    public async Task AFileKeptOpenLongerThanTheUncommittedGraceKeepsItsData()
    {
        // Chunks uploaded while a file is written are committed at its close; garbage collection
        // must not take them for a dead client's leftovers while the file is still open. The file
        // is held by a process of its own: any close of a descriptor of it commits (FUSE FLUSH),
        // and processes this test host forks for other tests would close inherited ones.
        await using var m = await MountedCluster.StartAsync(configure: o => o.UncommittedChunkGrace = TimeSpan.FromSeconds(1));
        var script = """
            import os, sys, time
            data = os.urandom(9 << 20)
            fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)   # two full chunks are uploaded now, the rest at the close
            time.sleep(4)        # several collection passes (every 300 ms) past the 1 s grace
            os.close(fd)         # commits: raises if the chunks were collected
            assert open(sys.argv[1], "rb").read() == data, "read back differs"
            """;
        var result = await TryRunAsync($"python3 -c {Quote(script)} {Quote(m.MountPoint)}/long.bin", timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    [Fact]
    public async Task AKilledMountDaemonIsRemountedOverTheStaleMountWithFsyncedFilesIntact()
    {
        await using var m = await MountedCluster.StartAsync();
        var mount = m.Mounts[0];
        var data = FileHelpers.RandomBytes(9 << 20, seed: 23);
        await File.WriteAllBytesAsync($"{mount.MountPoint}/durable.bin", data);
        await RunAsync($"mkdir {Quote(mount.MountPoint)}/dir && echo hi > {Quote(mount.MountPoint)}/dir/small && sync {Quote(mount.MountPoint)}/dir/small");

        await mount.KillAsync();
        var stale = await TryRunAsync($"ls {Quote(mount.MountPoint)}");
        Assert.Contains("Transport endpoint is not connected", stale.Stderr);

        await mount.RestartAsync();
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{mount.MountPoint}/durable.bin")));
        Assert.Equal("hi\n", await File.ReadAllTextAsync($"{mount.MountPoint}/dir/small"));
    }
}
