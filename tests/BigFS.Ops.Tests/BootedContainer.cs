using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// A Debian root booted with its own systemd under systemd-nspawn (the host's PID 1 is not
/// systemd), on a private network namespace (only its own loopback), driven with nsenter.
/// </summary>
public sealed class BootedContainer : IAsyncDisposable
{
    private readonly DaemonProcess _nspawn;
    private readonly string _root;

    private BootedContainer(DaemonProcess nspawn, string root, int pid1)
    {
        _nspawn = nspawn;
        _root = root;
        Pid1 = pid1;
    }

    public int Pid1 { get; }

    /// <param name="extraArguments">More systemd-nspawn options, e.g. --bind=/dev/fuse for a mount.</param>
    public static async Task<BootedContainer> BootAsync(string root, params string[] extraArguments)
    {
        var nspawn = DaemonProcess.Start("systemd-nspawn",
            ["--register=no", "--keep-unit", "--private-network", "--console=pipe", "-q", "-D", root, .. extraArguments, "--boot"]);
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            int? pid1 = null;
            while (pid1 is null)
            {
                if (nspawn.HasExited) throw new InvalidOperationException($"systemd-nspawn exited {nspawn.ExitCode}\n{nspawn}");
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"no container init after 60s\n{nspawn}");
                pid1 = FindContainerInit(nspawn.Id);
                if (pid1 is null) await Task.Delay(100);
            }
            var container = new BootedContainer(nspawn, root, pid1.Value);
            // Until systemd's private socket is up, systemctl answers "offline"; then it waits for boot to end.
            // "degraded" is fine (a minimal root has units that fail without hardware); "running" is better.
            var state = "";
            while (true)
            {
                state = (await container.ExecAsync("systemctl is-system-running --wait || true", TimeSpan.FromSeconds(120))).Stdout.Trim();
                if (state is "running" or "degraded" || DateTime.UtcNow > deadline || nspawn.HasExited) break;
                await Task.Delay(200);
            }
            Assert.True(state is "running" or "degraded", $"container state '{state}'\n{nspawn}");
            return container;
        }
        catch
        {
            // A container that did not boot as expected must not outlive the test.
            if (!nspawn.HasExited)
                await Shell.TryRunAsync($"kill -TERM {nspawn.Id}");
            await nspawn.DisposeAsync();
            throw;
        }
    }

    /// <summary>nspawn's child whose pid in its own pid namespace is 1 (its /proc root link reads "/" from here).</summary>
    private static int? FindContainerInit(int nspawnPid)
    {
        try
        {
            var children = File.ReadAllText($"/proc/{nspawnPid}/task/{nspawnPid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var child in children)
            {
                var nspid = File.ReadLines($"/proc/{child}/status").FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
                // NSpid 1 already before nspawn's child has exec'd systemd: wait for the exec too.
                if (nspid is not null && nspid.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1] == "1"
                    && File.ReadAllText($"/proc/{child}/comm").Trim() == "systemd")
                    return int.Parse(child);
            }
        }
        catch (IOException) { }
        return null;
    }

    public Task<Shell.Result> ExecAsync(string command, TimeSpan? timeout = null) =>
        Shell.TryRunAsync($"nsenter --target {Pid1} --all /bin/sh -c {Shell.Quote(command)}", timeout: timeout ?? TimeSpan.FromSeconds(120));

    public async Task<string> RunAsync(string command, TimeSpan? timeout = null) =>
        (await ExecAsync(command, timeout)).EnsureSuccess(command).Stdout;

    public async ValueTask DisposeAsync()
    {
        if (!_nspawn.HasExited)
        {
            await ExecAsync("systemctl poweroff", TimeSpan.FromSeconds(30));
            try { await _nspawn.WaitForExitAsync(TimeSpan.FromSeconds(60)); }
            catch (TimeoutException) { }
        }
        await _nspawn.DisposeAsync();
    }
}
