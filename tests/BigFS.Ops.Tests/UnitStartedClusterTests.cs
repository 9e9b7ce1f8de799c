using System.Net.Sockets;

namespace BigFS.Ops.Tests;

/// <summary>
/// bigfs-meta.service and three bigfs-node@ instances started as their ExecStart= lines start
/// them, serving a cluster that stores and returns a file; readiness and stopping reported
/// through the notify protocol.
/// </summary>
public sealed class UnitStartedClusterTests : IAsyncLifetime
{
    private readonly TempDirectory _root = new("bigfs-units-");
    private UnitLauncher _launcher = null!;
    private StartedUnits _units = null!;

    public Task InitializeAsync()
    {
        _launcher = new UnitLauncher(_root.Path);
        _launcher.InstallPackagedConfiguration("2", "3");
        _units = new StartedUnits(_launcher, _root);
        return Task.CompletedTask;
    }

    private Task<(DaemonProcess Process, NotifySocket Notify, UnitFile Unit)> StartAsync(string unitFile, string? instance, Dictionary<string, string> env) =>
        _units.StartAsync(unitFile, instance, env);

    [Fact]
    public async Task Units_started_as_systemd_starts_them_serve_a_cluster_and_report_ready_and_stopping()
    {
        var metaPort = UnitLauncher.FreeLoopbackPort();
        var metaAddress = $"127.0.0.1:{metaPort}";
        var meta = await StartAsync("bigfs-meta.service", null, new() { ["BIGFS_LISTEN"] = metaAddress });
        // READY=1 only once serving: the port answers and an RPC succeeds right away, no retry.
        await AssertAcceptsConnectionAsync(metaPort);
        var first = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, ["status", "--meta", "http://" + metaAddress]);
        Assert.True(first.ExitCode == 0, $"status right after READY=1:\n{first}");

        foreach (var instance in new[] { "1", "2", "3" })
        {
            var port = UnitLauncher.FreeLoopbackPort();
            await StartAsync("bigfs-node@.service", instance, new() { ["BIGFS_LISTEN"] = $"127.0.0.1:{port}", ["BIGFS_META"] = metaAddress });
            await AssertAcceptsConnectionAsync(port);
            Assert.True(File.Exists(Path.Combine(_launcher.StateRoot, "bigfs", $"node-{instance}", "node.lock")), $"node {instance} keeps its data in its StateDirectory");
        }

        var cli = new Dictionary<string, string> { ["BIGFS_META"] = "http://" + metaAddress };
        await StartedUnits.WaitForActiveNodesAsync(metaAddress, 3);
        var local = _root.Combine("in.bin");
        var data = new byte[5 * 1024 * 1024 + 12345];
        new Random(7).NextBytes(data);
        await File.WriteAllBytesAsync(local, data);
        await RunCliAsync(cli, "put", local, "/hello.bin");
        var back = _root.Combine("out.bin");
        await RunCliAsync(cli, "get", "/hello.bin", back);
        Assert.Equal(data, await File.ReadAllBytesAsync(back));

        // SIGTERM, as systemctl stop sends it: STOPPING=1, then a clean exit within TimeoutStopSec=.
        foreach (var (process, notify, unit) in _units.All.Reverse())
        {
            process.Signal(DaemonProcess.SIGTERM);
            var stopTimeout = UnitLauncher.ParseSeconds(unit.Get("Service", "TimeoutStopSec"), TimeSpan.FromSeconds(90));
            await notify.WaitForAsync("STOPPING=1", stopTimeout);
            await process.WaitForExitAsync(stopTimeout);
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}\n{process}");
        }
        Assert.True(meta.Process.HasExited);
    }

    private static async Task AssertAcceptsConnectionAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
    }

    private static async Task RunCliAsync(Dictionary<string, string> env, params string[] args)
    {
        var run = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, args, env, TimeSpan.FromSeconds(60));
        Assert.True(run.ExitCode == 0, $"bigfs {string.Join(' ', args)} exited {run.ExitCode}\n{run}");
    }

    public async Task DisposeAsync()
    {
        await _units.DisposeAsync();
        _root.Dispose();
    }
}
