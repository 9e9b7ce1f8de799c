using BigFS.Testing;
using static BigFS.Testing.Shell;

namespace BigFS.Ops.Tests;

/// <summary>
/// Restarts of the metadata server while programs create, write, rename and remove through a mount,
/// all daemons real processes: the mount waits for the server, and no call fails.
/// <list type="bullet">
/// <item>A planned restart (SIGTERM, what `systemctl restart` sends): the server answers what it
/// accepted and tells the mount which calls it never ran, so those are repeated once it is back;
/// before that, each restart cost one EIO here (a request sent while the server was stopping was
/// never read).</item>
/// <item>A crash (SIGKILL): changes in flight may or may not have run. The mount sends them again
/// under the same replay slot, and the restarted server answers those that ran from its reply
/// cache, which it journals with each change; before that, each crash cost about one EIO here.</item>
/// </list>
/// </summary>
public sealed class MetadataRestartUnderLoadTests : IAsyncLifetime
{
    private readonly TempDirectory _root = new("bigfs-restart-");
    private StartedUnits? _units;
    private DaemonProcess? _mount;
    private NotifySocket? _mountNotify;
    private string? _mountPoint;

    /// <summary>
    /// Four processes in a loop of mkdir, create and write (so close commits data), rename, read
    /// back, unlink, rmdir until STOP exists; prints the count and every error.
    /// </summary>
    private const string Churn = """
        import os, sys, errno
        from multiprocessing import Pool
        root, stop = sys.argv[1], sys.argv[2]
        os.mkdir(root)
        def create(f, data):
            fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try: os.write(fd, data)
            finally: os.close(fd)
        def check(f, data):
            with open(f, "rb") as r:
                if r.read() != data: raise OSError(errno.EBADMSG, "content differs")
        def churn(w):
            i, errors = 0, []
            while not os.path.exists(stop):
                d = f"{root}/w{w}-{i}"; f = f"{d}/f"; data = f"{w}-{i} ".encode() * (1 + i % 700)
                for op, fn in (("mkdir", lambda: os.mkdir(d)), ("create", lambda: create(f, data)), ("rename", lambda: os.rename(f, f + "2")),
                               ("read", lambda: check(f + "2", data)), ("unlink", lambda: os.unlink(f + "2")), ("rmdir", lambda: os.rmdir(d))):
                    try: fn()
                    except OSError as e: errors.append(f"{op} w{w}-{i}: {errno.errorcode.get(e.errno)}")
                i += 1
            return i, errors
        results = Pool(4).map(churn, range(4))
        errors = [e for _, r in results for e in r]
        print(sum(i for i, _ in results), "iterations,", len(errors), "errors:", errors[:10])
        """;

    [Theory]
    [InlineData(DaemonProcess.SIGTERM)]
    [InlineData(DaemonProcess.SIGKILL)]
    public async Task A_restart_of_the_metadata_server_under_namespace_churn_fails_no_call(int signal)
    {
        var launcher = new UnitLauncher(_root.Path);
        launcher.InstallPackagedConfiguration();
        var units = _units = new StartedUnits(launcher, _root);
        var (metaAddress, metaEnv, meta) = await units.StartOneNodeClusterAsync();
        _mountPoint = _root.Combine("mnt");
        Directory.CreateDirectory(_mountPoint);
        _mountNotify = new NotifySocket(_root.Combine("notify-mount.sock"));
        _mount = DaemonProcess.Start(RepoPaths.BigfsExecutable, ["mount", "--config", Path.Combine(launcher.EtcDirectory, "mount.json"), _mountPoint],
            new Dictionary<string, string> { ["BIGFS_META"] = metaAddress, ["NOTIFY_SOCKET"] = _mountNotify.Path });
        await _mountNotify.WaitForAsync("READY=1", TimeSpan.FromSeconds(60));

        var script = _root.Combine("churn.py");
        await File.WriteAllTextAsync(script, Churn);
        var root = Path.Combine(_mountPoint, "churn");
        var stop = _root.Combine("stop-churn");
        var churn = TryRunAsync($"python3 {Quote(script)} {Quote(root)} {Quote(stop)}", timeout: TimeSpan.FromMinutes(5));
        await Poll.UntilAsync(() => Directory.Exists(root), TimeSpan.FromSeconds(30), "the churn to start");
        for (var restart = 0; restart < 5; restart++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            meta.Process.Signal(signal);
            await meta.Process.WaitForExitAsync(TimeSpan.FromSeconds(30));
            if (signal == DaemonProcess.SIGTERM)
                Assert.Equal(0, meta.Process.ExitCode);
            meta = await units.StartAsync("bigfs-meta.service", null, new(metaEnv));   // same data directory
        }
        await Task.Delay(TimeSpan.FromSeconds(1));
        await File.WriteAllTextAsync(stop, "");

        var result = await churn;
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.True(result.Stdout.Contains(" 0 errors"), $"{result.Stdout}\nmount: {string.Join('\n', (_mount.Stdout + _mount.Stderr).Split('\n').Where(l => l.Contains("warn") || l.Contains("fail")).TakeLast(15))}");
        Assert.Empty(Directory.GetFileSystemEntries(root));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_mount is not null)
        {
            _mount.Signal(DaemonProcess.SIGTERM);   // unmounts
            await _mount.WaitForExitAsync(TimeSpan.FromSeconds(30));
            await _mount.DisposeAsync();
        }
        if (_mountPoint is not null)
            await TryRunAsync($"umount -l {Quote(_mountPoint)}");   // only if the daemon could not
        _mountNotify?.Dispose();
        if (_units is not null)
            await _units.DisposeAsync();
        _root.Dispose();
    }
}
