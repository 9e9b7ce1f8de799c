namespace BigFS.Ops.Tests;

/// <summary>
/// Daemons started as their units' ExecStart= lines start them (through <see cref="UnitLauncher"/>),
/// each awaited until it reports READY=1 with its own PID; all stopped and their notify
/// sockets closed on dispose.
/// </summary>
public sealed class StartedUnits(UnitLauncher launcher, TempDirectory root) : IAsyncDisposable
{
    private readonly List<(DaemonProcess Process, NotifySocket Notify, UnitFile Unit)> _daemons = [];

    /// <summary>The daemons started so far, oldest first.</summary>
    public IReadOnlyList<(DaemonProcess Process, NotifySocket Notify, UnitFile Unit)> All => _daemons;

    public async Task<(DaemonProcess Process, NotifySocket Notify, UnitFile Unit)> StartAsync(string unitFile, string? instance, Dictionary<string, string> env)
    {
        var notify = new NotifySocket(root.Combine($"notify-{unitFile}-{instance}-{_daemons.Count}.sock"));
        env["NOTIFY_SOCKET"] = notify.Path;
        var (exe, args, environment, unit) = launcher.Prepare(unitFile, instance, env);
        var process = DaemonProcess.Start(exe, args, environment);
        var entry = (process, notify, unit);
        _daemons.Add(entry);
        try
        {
            var ready = await notify.WaitForAsync("READY=1", UnitLauncher.ParseSeconds(unit.Get("Service", "TimeoutStartSec"), TimeSpan.FromSeconds(90)));
            Assert.Contains($"MAINPID={process.Id}", ready.Split('\n'));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{process}");
        }
        return entry;
    }

    /// <summary>
    /// A metadata server and one storage node (one copy of everything) on free loopback ports,
    /// the node active. <c>MetaEnvironment</c> starts the metadata server again on the same data.
    /// </summary>
    public async Task<(string MetaAddress, Dictionary<string, string> MetaEnvironment, (DaemonProcess Process, NotifySocket Notify, UnitFile Unit) Meta)> StartOneNodeClusterAsync()
    {
        var metaAddress = $"127.0.0.1:{UnitLauncher.FreeLoopbackPort()}";
        var metaEnv = new Dictionary<string, string>
        {
            ["BIGFS_LISTEN"] = metaAddress, ["BIGFS_GOAL"] = "1", ["BIGFS_MIN_COPIES_BEFORE_ACK"] = "1",
        };
        var meta = await StartAsync("bigfs-meta.service", null, new(metaEnv));
        await StartAsync("bigfs-node@.service", "1", new()
        {
            ["BIGFS_LISTEN"] = $"127.0.0.1:{UnitLauncher.FreeLoopbackPort()}", ["BIGFS_META"] = metaAddress, ["BIGFS_MIN_COPIES_BEFORE_ACK"] = "1",
        });
        await WaitForActiveNodesAsync(metaAddress);
        return (metaAddress, metaEnv, meta);
    }

    /// <summary>Polls `bigfs status` until at least <paramref name="count"/> storage nodes are active (30 s).</summary>
    public static async Task WaitForActiveNodesAsync(string metaAddress, int count = 1)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            var status = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, ["status", "--meta", "http://" + metaAddress]);
            last = status.Stdout + status.Stderr;
            if (status.ExitCode == 0 && CountActive(status.Stdout) >= count)
                return;
            await Task.Delay(200);
        }
        throw new TimeoutException($"fewer than {count} active nodes after 30s:\n{last}");
    }

    private static int CountActive(string status) =>
        status.Split('\n').Count(l => l.Contains("active", StringComparison.OrdinalIgnoreCase) && l.Contains("127.0.0.1"));

    public async ValueTask DisposeAsync()
    {
        foreach (var (process, notify, _) in _daemons)
        {
            await process.DisposeAsync();
            notify.Dispose();
        }
    }
}
