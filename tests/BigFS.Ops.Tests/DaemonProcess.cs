using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace BigFS.Ops.Tests;

/// <summary>A bigfs process started without a shell, its output collected, stoppable with a real SIGTERM.</summary>
public sealed partial class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private DaemonProcess(Process process, string description)
    {
        _process = process;
        Description = description;
    }

    public string Description { get; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    public static DaemonProcess Start(string executable, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        // Through env(1): a test host started as a background job inherits SIGINT and SIGQUIT
        // ignored, and a daemon rightly keeps an inherited SIG_IGN; a user's shell starts it with
        // every signal at its default, so Ctrl-C (SIGINT) reaches it as it would from a terminal.
        var psi = new ProcessStartInfo("/usr/bin/env", ["--default-signal", executable, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        // A daemon under systemd does not inherit the test host's notify socket or bigfs settings.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("BIGFS_", StringComparison.Ordinal) || k == "NOTIFY_SOCKET").ToList())
            psi.Environment.Remove(key);
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        var process = new Process { StartInfo = psi };
        var daemon = new DaemonProcess(process, $"{executable} {string.Join(' ', psi.ArgumentList.Skip(2))}");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (daemon._stdout) daemon._stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (daemon._stderr) daemon._stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    /// <summary>Runs to completion (bounded) and returns the exit code.</summary>
    public static async Task<DaemonProcess> RunAsync(string executable, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var p = Start(executable, args, environment);
        await p.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
        return p;
    }

    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    public const int SIGTERM = 15;
    public const int SIGKILL = 9;

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Description} still running after {timeout.TotalSeconds}s\nstderr: {Stderr}");
        }
    }

    public override string ToString() => $"{Description}\nstdout: {Stdout}\nstderr: {Stderr}";

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
