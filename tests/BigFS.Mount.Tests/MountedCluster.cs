using System.Diagnostics;

namespace BigFS.Mount.Tests;

/// <summary>
/// A cluster on loopback plus one or more `bigfs mount` daemons, each a separate process (so a
/// test can kill one like a crash would). Requires root and /dev/fuse: missing either fails.
/// </summary>
public sealed class MountedCluster : IAsyncDisposable
{
    public TestCluster Cluster { get; }
    public List<MountProcess> Mounts { get; } = [];
    public string MountPoint => Mounts[0].MountPoint;

    private MountedCluster(TestCluster cluster) => Cluster = cluster;

    /// <param name="mountArgs">Extra `bigfs mount` arguments for every mount (e.g. cache timeouts).</param>
    public static async Task<MountedCluster> StartAsync(int nodes = 3, int mounts = 1, Action<BigFS.Metadata.MetadataServerOptions>? configure = null,
        Action<BigFS.Storage.StorageNodeOptions>? configureNode = null, string mountArgs = "")
    {
        Prerequisites.Check();
        var cluster = await TestCluster.StartAsync(nodes, configure, configureNode);
        var mc = new MountedCluster(cluster);
        try
        {
            for (var i = 0; i < mounts; i++)
                mc.Mounts.Add(await MountProcess.StartAsync(cluster.Meta.Address, Path.Combine(cluster.Root, $"mnt{i}"), mountArgs));
        }
        catch
        {
            await mc.DisposeAsync();
            throw;
        }
        return mc;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var m in Mounts)
            await m.DisposeAsync();
        await Cluster.DisposeAsync();
    }
}

public sealed class MountProcess : IAsyncDisposable
{
    public string MountPoint { get; }
    public string MetaAddress { get; }
    private Process _process;
    private readonly System.Text.StringBuilder _log = new();

    private MountProcess(string metaAddress, string mountPoint, Process process)
    {
        MetaAddress = metaAddress;
        MountPoint = mountPoint;
        _process = process;
    }

    public string Log { get { lock (_log) return _log.ToString(); } }

    public static async Task<MountProcess> StartAsync(string metaAddress, string mountPoint, string extraArgs = "")
    {
        Directory.CreateDirectory(mountPoint);
        var m = new MountProcess(metaAddress, mountPoint, null!);
        m._process = m.Launch(extraArgs);
        await m.WaitMountedAsync();
        return m;
    }

    private Process Launch(string extraArgs)
    {
        var bigfs = Path.Combine(AppContext.BaseDirectory, "bigfs.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { bigfs, "mount", MetaAddress, MountPoint, "--attr_timeout", "1s", "--entry_timeout", "1s" })
            psi.ArgumentList.Add(a);
        foreach (var a in extraArgs.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private async Task WaitMountedAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // Listed and answering: a stale mount left by a killed daemon is listed too, but fails stat.
        while (!IsMounted(MountPoint) || !Answers(MountPoint))
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"bigfs mount exited with {_process.ExitCode}:\n{Log}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"mount at {MountPoint} did not appear within 30s:\n{Log}");
            await Task.Delay(50);
        }
    }

    private static bool Answers(string mountPoint)
    {
        try
        {
            Directory.GetFileSystemEntries(mountPoint);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static bool IsMounted(string mountPoint)
    {
        var full = Path.GetFullPath(mountPoint).TrimEnd('/');
        return File.ReadLines("/proc/self/mountinfo").Any(line =>
        {
            var fields = line.Split(' ');
            return fields.Length > 4 && fields[4] == full && line.Contains(" - fuse.bigfs ", StringComparison.Ordinal);
        });
    }

    /// <summary>The daemon's process id (to stop and continue it, as a stalled machine would).</summary>
    public int Pid => _process.Id;

    /// <summary>SIGKILL, as a crash would: the mount is left behind, stale.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>Starts the daemon again over whatever the old one left behind.</summary>
    public async Task RestartAsync()
    {
        _process = Launch("");
        await WaitMountedAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM: the daemon flushes and unmounts.
            Posix.Kill(_process.Id, 15);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { _process.Kill(); }
        }
        if (IsMounted(MountPoint))
            await Shell.TryRunAsync($"umount -l {Shell.Quote(MountPoint)}");
        // The daemon's log, for a failure to be explained after the cluster folder is gone.
        if (Environment.GetEnvironmentVariable("BIGFS_TEST_LOGS") is { Length: > 0 } dir)
        {
            Directory.CreateDirectory(dir);
            await File.WriteAllTextAsync(Path.Combine(dir, $"mount-{Path.GetFileName(Path.GetDirectoryName(MountPoint))}-{Path.GetFileName(MountPoint)}.log"), Log);
        }
    }
}

internal static class Posix
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Kill(int pid, int signal);
}

public static class Prerequisites
{
    /// <summary>Mount tests need root and /dev/fuse; CI has both, so their absence is a failure, not a skip.</summary>
    public static void Check()
    {
        if (Environment.UserName != "root" && geteuid() != 0)
            throw new InvalidOperationException("BigFS mount tests must run as root (they mount FUSE filesystems)");
        if (!File.Exists("/dev/fuse"))
            throw new InvalidOperationException("/dev/fuse is missing: the mount tests cannot run (load the fuse module)");
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}
