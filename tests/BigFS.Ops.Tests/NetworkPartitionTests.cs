using System.Diagnostics;
using BigFS.Testing;
using static BigFS.Testing.Shell;

namespace BigFS.Ops.Tests;

/// <summary>
/// A cluster over separate network namespaces (one per host: a metadata server, three storage
/// nodes, the mount in the root namespace), talking TCP between distinct addresses. A storage
/// node that drops off the network sends no reset: killing a process is the easy failure, this
/// is the one a power cut, a pulled cable or a partition makes.
/// </summary>
public sealed class NetworkPartitionTests : IAsyncLifetime
{
    private readonly TempDirectory _root = new("bigfs-netns-");
    private readonly List<DaemonProcess> _daemons = [];
    private VirtualNetwork _network = null!;
    private DaemonProcess _meta = null!;
    private string _metaAddress = "";
    private string Mnt => _root.Combine("mnt");

    public async Task InitializeAsync()
    {
        _network = await VirtualNetwork.CreateAsync();
        var meta = await _network.AddHostAsync("meta");
        _metaAddress = $"{meta}:9000";
        // No Unix socket: the namespaces share this machine's files, but other hosts would not.
        _meta = StartMetadataServer();
        foreach (var node in new[] { "n1", "n2", "n3" })
        {
            StartNode(node, await _network.AddHostAsync(node));
        }
        await WaitForStatusAsync(s => ActiveNodes(s) == 3, "three active storage nodes");
        Directory.CreateDirectory(Mnt);
        var mount = Start(["mount", _metaAddress, Mnt], executable: RepoPaths.BigfsExecutable);
        await Poll.UntilAsync(() => File.ReadAllText("/proc/mounts").Contains($" {Mnt} ") || mount.HasExited, TimeSpan.FromSeconds(60), "the mount");
        Assert.False(mount.HasExited, mount.ToString());
    }

    [Fact]
    public async Task A_storage_node_gone_from_the_network_mid_write_costs_seconds_and_loses_nothing()
    {
        var (local, expected) = await LocalRandomFileAsync("big.bin", 256 << 20);

        var clock = Stopwatch.StartNew();
        var copy = TryRunAsync($"cp {Quote(local)} {Quote(Mnt)}/big.bin", timeout: TimeSpan.FromMinutes(5));
        await Poll.UntilAsync(() => copy.IsCompleted || File.Exists($"{Mnt}/big.bin") && new FileInfo($"{Mnt}/big.bin").Length >= 32 << 20,
            TimeSpan.FromSeconds(60), "the copy under way");
        await _network.CutAsync("n2");
        var copied = await WithLogsAsync(copy);
        var took = clock.Elapsed;
        Expect(copied.ExitCode == 0, copied.Stderr);
        // Its open connections and new connects fail within seconds (DeadPeerDetection), and the
        // chunks go elsewhere. Before, each upload to it waited out its 2-minute deadline.
        Expect(took < TimeSpan.FromSeconds(60), $"the write took {took.TotalSeconds:F0} s with a node gone from the network");

        // Read back with the node still gone: from the other copies, every byte.
        await AssertReadsBackAsync("big.bin", expected, TimeSpan.FromSeconds(60));

        // Back on the network, the node is used again and every chunk regains its three copies.
        await _network.HealAsync("n2");
        await WaitForStatusAsync(s => ActiveNodes(s) == 3 && AtGoal(s), "three active nodes and every chunk at its goal", TimeSpan.FromMinutes(3));
        await AssertReadsBackAsync("big.bin", expected, TimeSpan.FromMinutes(3));
    }

    [Fact]
    public async Task The_metadata_server_gone_from_the_network_for_a_while_is_a_pause_for_the_mount()
    {
        var source = _root.Combine("files");
        await RunAsync($"mkdir {Quote(source)} && for i in $(seq 1 150); do head -c $((RANDOM * 8)) /dev/urandom > {Quote(source)}/f$i; done");
        var copy = TryRunAsync($"cp -r {Quote(source)} {Quote(Mnt)}/files", timeout: TimeSpan.FromMinutes(3));
        await Poll.UntilAsync(() => copy.IsCompleted || Directory.Exists($"{Mnt}/files") && Directory.GetFiles($"{Mnt}/files").Length >= 10,
            TimeSpan.FromSeconds(60), "the copy under way");
        // Shorter than meta_outage_timeout (60 s, mount and nodes alike): calls wait for
        // the server, none fails. Long enough that the server, back, may have heard no heartbeat
        // for heartbeat_timeout (30 s at a 15 s interval). It takes that silence as its own now;
        // when it counted every node Suspect for it instead, uploads found no node (CI once saw
        // EIO here with a 15 s cut) and now wait for one (node_outage_timeout). And long enough
        // for gRPC connections to die of unanswered keepalive pings, which grpc-dotnet reports
        // as Internal, not Unavailable: a create failed with EIO for that with a 50 s cut.
        await _network.CutAsync("meta");
        await Task.Delay(TimeSpan.FromSeconds(50));
        if (copy.IsCompleted)
            Assert.Fail($"the copy ended while the metadata server was unreachable: {(await copy).Stderr}\n{DaemonLogs()}");
        await _network.HealAsync("meta");
        var copied = await WithLogsAsync(copy);
        Expect(copied.ExitCode == 0, copied.Stderr);
        await RunAsync($"diff -r {Quote(source)} {Quote(Mnt)}/files");
    }

    // Partitions that are not a clean split: each host still reaches some of the others, so the
    // metadata server's view (who sends heartbeats) and the mount's or a node's (who answers)
    // disagree. Nothing may hang, fail or be lost for that.

    [Fact]
    public async Task A_storage_node_only_the_mount_cannot_reach_is_written_around_and_read_around()
    {
        var before = await WriteRandomFileAsync("before.bin", 48 << 20, TimeSpan.FromSeconds(60));
        await WaitForGoalAsync();
        // n2 still sends heartbeats and takes copies from the other nodes: to the metadata server it is fine.
        await _network.SeverAsync(VirtualNetwork.Root, "n2");

        await AssertReadsBackAsync("before.bin", before, TimeSpan.FromSeconds(60));
        var after = await WriteRandomFileAsync("after.bin", 96 << 20, TimeSpan.FromSeconds(90));
        await AssertReadsBackAsync("after.bin", after, TimeSpan.FromSeconds(60));
        // The nodes copy to n2 among themselves: every chunk gets its three copies without the mount.
        await WaitForGoalAsync();

        await _network.MendAsync(VirtualNetwork.Root, "n2");
        await AssertReadsBackAsync("after.bin", after, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task Two_storage_nodes_that_cannot_reach_each_other_still_bring_every_chunk_to_its_goal()
    {
        await _network.SeverAsync("n1", "n2");
        var data = await WriteRandomFileAsync("f.bin", 96 << 20, TimeSpan.FromSeconds(90));
        // A copy n1 cannot push to n2 (or n2 to n1) reaches it through n3.
        await WaitForGoalAsync();
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));
        await _network.MendAsync("n1", "n2");
    }

    [Fact]
    public async Task A_storage_node_cut_off_from_the_metadata_server_but_not_the_mount_takes_no_acknowledged_write()
    {
        // The mount still reaches n2, but n2 can register nothing it stores: an upload to it fails
        // and goes elsewhere, and n2 drops out of placement once its heartbeats stop arriving.
        await _network.SeverAsync("n2", "meta");
        var data = await WriteRandomFileAsync("f.bin", 96 << 20, TimeSpan.FromSeconds(90));
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));

        await _network.MendAsync("n2", "meta");
        await WaitForStatusAsync(s => ActiveNodes(s) == 3, "n2 active again");
        await WaitForGoalAsync();
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_storage_node_cut_off_from_the_other_nodes_but_not_the_mount_is_no_dead_end_for_a_write()
    {
        // n1 takes uploads but can copy them nowhere, and receives no copy: a chunk it stores as
        // primary never gets a second durable copy from it, so that upload must fail over.
        await _network.SeverAsync("n1", "n2");
        await _network.SeverAsync("n1", "n3");
        var data = await WriteRandomFileAsync("f.bin", 96 << 20, TimeSpan.FromSeconds(90));
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));

        await _network.MendAsync("n1", "n2");
        await _network.MendAsync("n1", "n3");
        await WaitForGoalAsync();
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task Garbage_on_a_node_the_metadata_server_cannot_call_stays_marked_until_it_is_deleted_there()
    {
        // One way only: n2 sends heartbeats and takes copies from the other nodes, but the
        // metadata server's own calls to it (deletes, copy requests) never connect.
        await _network.RefuseConnectionsAsync("n2", "meta");
        await WriteRandomFileAsync("f.bin", 48 << 20, TimeSpan.FromSeconds(60));
        await WaitForGoalAsync();
        var onN2 = ChunkFiles("n2");
        Assert.NotEmpty(onN2);

        File.Delete($"{Mnt}/f.bin");
        // The copies on n1 and n3 go; n2's stay DELETING, never counted as gone, and stay on its
        // disk, through the retries of the next passes (each waits out a connect timeout).
        var onlyN2Left = $"copies: available 0, pending 0, deleting {onN2.Count}\n";
        await WaitForStatusAsync(s => s.Contains(onlyN2Left), "only n2's copies left, marked DELETING");
        Assert.Empty(ChunkFiles("n1"));
        for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(15); await Task.Delay(1000))
        {
            await WaitForStatusAsync(s => s.Contains(onlyN2Left), "n2's copies still marked DELETING", TimeSpan.Zero);
            Assert.Equal(onN2, ChunkFiles("n2"));
        }

        await _network.AcceptConnectionsAsync("n2", "meta");
        await WaitForStatusAsync(s => s.Contains("copies: available 0, pending 0, deleting 0"), "n2's copies deleted", TimeSpan.FromMinutes(3));
        await Poll.UntilAsync(() => ChunkFiles("n2").Count == 0, TimeSpan.FromSeconds(30), "n2's chunk files removed");
    }

    private List<string> ChunkFiles(string node) =>
        Directory.EnumerateFiles(_root.Combine(node, "chunks"), "*", SearchOption.AllDirectories).Order().ToList();

    /// <summary>A local file of <paramref name="bytes"/> random bytes, and their sha256.</summary>
    private async Task<(string Path, string Sha256)> LocalRandomFileAsync(string name, int bytes)
    {
        var local = _root.Combine(name);
        await RunAsync($"head -c {bytes} /dev/urandom > {Quote(local)}");
        return (local, (await RunAsync($"sha256sum < {Quote(local)}")).Split(' ')[0]);
    }

    /// <summary>Copies <paramref name="bytes"/> random bytes to the mount within a deadline; returns their sha256.</summary>
    private async Task<string> WriteRandomFileAsync(string name, int bytes, TimeSpan within)
    {
        var (local, expected) = await LocalRandomFileAsync(name, bytes);
        var clock = Stopwatch.StartNew();
        var copied = await WithLogsAsync(TryRunAsync($"cp {Quote(local)} {Quote(Mnt)}/{name}", timeout: TimeSpan.FromMinutes(5)));
        Expect(copied.ExitCode == 0, copied.Stderr);
        Expect(clock.Elapsed < within, $"writing {name} took {clock.Elapsed.TotalSeconds:F0} s");
        File.Delete(local);
        return expected;
    }

    /// <summary>Reads the file back through the mount, page cache dropped, within a deadline.</summary>
    private async Task AssertReadsBackAsync(string name, string sha256, TimeSpan within)
    {
        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        var clock = Stopwatch.StartNew();
        var read = await WithLogsAsync(TryRunAsync($"sha256sum < {Quote(Mnt)}/{name}", timeout: TimeSpan.FromMinutes(3)));
        Expect(read.ExitCode == 0, read.Stderr);
        Expect(read.Stdout.Split(' ')[0] == sha256, $"{name} read back as {read.Stdout.Split(' ')[0]}, not {sha256}");
        Expect(clock.Elapsed < within, $"reading {name} took {clock.Elapsed.TotalSeconds:F0} s");
    }

    private Task WaitForGoalAsync() => WaitForStatusAsync(AtGoal, "every chunk at its goal", TimeSpan.FromMinutes(3));

    private static bool AtGoal(string status) => status.Contains("chunks below goal: 0") && status.Contains("pending 0");

    [Fact]
    public async Task A_metadata_server_restarted_while_a_storage_node_is_cut_off_from_it_takes_the_node_back_after()
    {
        var before = await WriteRandomFileAsync("before.bin", 48 << 20, TimeSpan.FromSeconds(60));
        await WaitForGoalAsync();
        await _network.SeverAsync("n2", "meta");

        // A restart the mount rides through (shorter than its outage timeout); n2 cannot register again yet.
        await RestartMetadataServerAsync();
        await AssertReadsBackAsync("before.bin", before, TimeSpan.FromSeconds(60));
        var during = await WriteRandomFileAsync("during.bin", 48 << 20, TimeSpan.FromSeconds(90));

        await _network.MendAsync("n2", "meta");
        await WaitForStatusAsync(s => ActiveNodes(s) == 3, "n2 registered again with the restarted server");
        await WaitForGoalAsync();
        await AssertReadsBackAsync("before.bin", before, TimeSpan.FromSeconds(60));
        await AssertReadsBackAsync("during.bin", during, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_metadata_server_cut_off_from_every_node_past_the_dead_timeout_copies_nothing_on_its_return()
    {
        // A server that took the nodes it has not heard again yet for dead would have n3 and n4
        // to put new copies on. The dead timeout is 45 s: longer than the 35 s that may pass below
        // between hearing n3 or n4 and hearing n1 or n2.
        var (data, copies) = await FourNodesWithAFileAsync(deadTimeout: "45s");

        // Past the dead timeout, the server has heard nobody: it is the one cut off (the mount still reaches it).
        foreach (var node in FourNodes)
            await _network.SeverAsync("meta", node);
        await Task.Delay(TimeSpan.FromSeconds(50));
        var logged = _meta.Stderr.Length;   // the daemons log to stderr

        // Two nodes are heard again first. The other two are no more dead than they were before
        // the cut: no copy of their chunks is made on the first two, through several cleanup
        // passes (every 2 s) and past the nodes' heartbeat retries (at most 15 s apart).
        await _network.MendAsync("meta", "n3");
        await _network.MendAsync("meta", "n4");
        await Task.Delay(TimeSpan.FromSeconds(20));
        var since = _meta.Stderr[logged..];
        Expect(!since.Contains("below goal"), $"the server made copies on its return:\n{since}");

        foreach (var node in new[] { "n1", "n2" })
            await _network.MendAsync("meta", node);
        // Active as soon as n3 or n4 was heard: wait until every node was heard after the cut.
        await WaitForStatusAsync(s => ActiveNodes(s) == 4 && NodesHeardWithin(s, TimeSpan.FromSeconds(15)) == 4, "every node heard again");
        var after = CopyCounts(await StatusAsync());
        Expect(after == copies, $"copies before the cut {copies}, after {after}");
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task A_storage_node_back_after_it_was_counted_dead_has_its_surplus_copies_dropped()
    {
        // n1's chunks can get their third copy elsewhere while it is away.
        var (data, copies) = await FourNodesWithAFileAsync(deadTimeout: "30s");
        int ChunkFilesEverywhere() => FourNodes.Sum(n => ChunkFiles(n).Count);
        var files = ChunkFilesEverywhere();

        await _network.CutAsync("n1");
        await WaitForStatusAsync(s => s.Contains(" dead ") && AtGoal(s), "n1 dead and every chunk at its goal without it", TimeSpan.FromMinutes(3));
        Expect(ChunkFilesEverywhere() > files, $"no chunk was copied while n1 was away:\n{await StatusAsync()}");

        // Back, n1's copies make some chunks four: one copy of each goes again, from disk too.
        await _network.HealAsync("n1");
        await WaitForStatusAsync(s => ActiveNodes(s) == 4 && CopyCounts(s) == copies, $"{copies} again", TimeSpan.FromMinutes(2));
        await Poll.UntilAsync(() => ChunkFilesEverywhere() == files, TimeSpan.FromSeconds(60), "the dropped copies' files deleted");
        await AssertReadsBackAsync("f.bin", data, TimeSpan.FromSeconds(60));
    }

    private static readonly string[] FourNodes = ["n1", "n2", "n3", "n4"];

    /// <summary>
    /// A fourth storage node, the metadata server restarted with <paramref name="deadTimeout"/>
    /// (120 s by default), and a 48 MiB file written and at its goal. Returns the file's sha256
    /// and the status line counting copies.
    /// </summary>
    private async Task<(string Sha256, string Copies)> FourNodesWithAFileAsync(string deadTimeout)
    {
        StartNode("n4", await _network.AddHostAsync("n4"));
        await RestartMetadataServerAsync("--dead_timeout", deadTimeout);
        await WaitForStatusAsync(s => ActiveNodes(s) == 4, "four active storage nodes");
        var data = await WriteRandomFileAsync("f.bin", 48 << 20, TimeSpan.FromSeconds(90));
        await WaitForGoalAsync();
        return (data, CopyCounts(await StatusAsync()));
    }

    private static int NodesHeardWithin(string status, TimeSpan span) =>
        status.Split('\n').Count(l => l.Contains("10.77.", StringComparison.Ordinal)
            && System.Text.RegularExpressions.Regex.Match(l, @" ([0-9.]+)s ago") is { Success: true } m
            && double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < span.TotalSeconds);

    private static string CopyCounts(string status) => status.Split('\n').Single(l => l.Contains("copies: available"));

    private async Task<string> StatusAsync() =>
        (await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, ["status", "--meta", _metaAddress])).Stdout;

    private async Task RestartMetadataServerAsync(params string[] options)
    {
        _meta.Signal(DaemonProcess.SIGTERM);
        await _meta.WaitForExitAsync(TimeSpan.FromSeconds(30));
        _meta = StartMetadataServer(options);
    }

    private void StartNode(string node, string address) =>
        Start(_network.On(node, RepoPaths.BigfsExecutable,
            ["node", "--meta", _metaAddress, "--data", _root.Combine(node), "--listen", $"{address}:9101", "--advertise", $"{address}:9101"]));

    private DaemonProcess StartMetadataServer(params string[] options) =>
        Start(_network.On("meta", RepoPaths.BigfsExecutable,
            ["meta", "--data", _root.Combine("meta"), "--listen", _metaAddress, "--meta_fast_unix", "false",
             "--cleanup_interval", "2s", "--replica_confirmation_timeout", "5s", .. options]));

    /// <summary>A command's result; if it times out, the error carries what every daemon logged.</summary>
    private async Task<T> WithLogsAsync<T>(Task<T> command)
    {
        try
        {
            return await command;
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{DaemonLogs()}", e);
        }
    }

    /// <summary>Like Assert.True, but a failure carries what every daemon logged: these failures may show only in CI.</summary>
    private void Expect(bool condition, string message) => Assert.True(condition, $"{message}\n{DaemonLogs()}");

    private string DaemonLogs() => string.Join("\n", _daemons.Select(d => d.ToString()));

    private DaemonProcess Start(IEnumerable<string> args, string executable = "ip")
    {
        var daemon = DaemonProcess.Start(executable, args);
        _daemons.Add(daemon);
        return daemon;
    }

    private static int ActiveNodes(string status) =>
        status.Split('\n').Count(l => l.Contains(" active ", StringComparison.Ordinal) && l.Contains("10.77.", StringComparison.Ordinal));

    private async Task WaitForStatusAsync(Func<string, bool> condition, string what, TimeSpan? timeout = null)
    {
        var last = "";
        try
        {
            await Poll.UntilAsync(async () =>
            {
                var status = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, ["status", "--meta", _metaAddress]);
                last = status.Stdout + status.Stderr;
                return status.ExitCode == 0 && condition(status.Stdout);
            }, timeout ?? TimeSpan.FromSeconds(60), what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last status:\n{last}\n{DaemonLogs()}");
        }
    }

    public async Task DisposeAsync()
    {
        await TryRunAsync($"umount {Quote(Mnt)} || umount -l {Quote(Mnt)}");
        foreach (var daemon in Enumerable.Reverse(_daemons))
            await daemon.DisposeAsync();
        await _network.DisposeAsync();
        _root.Dispose();
    }
}
