using System.Diagnostics;
using System.Text;

namespace BigFS.Testing;

/// <summary>Runs shell commands the way a user would, with a hard timeout so a hung mount fails the test instead of CI.</summary>
public static class Shell
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public Result EnsureSuccess(string command)
        {
            if (ExitCode != 0)
                throw new ShellCommandFailed($"`{command}` exited {ExitCode}\nstdout: {Tail(Stdout)}\nstderr: {Tail(Stderr)}");
            return this;
        }

        private static string Tail(string s) => s.Length > 4000 ? "…" + s[^4000..] : s;
    }

    public static async Task<Result> TryRunAsync(string command, string? workingDirectory = null, TimeSpan? timeout = null, IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("/bin/bash", ["-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? "/",
            UseShellExecute = false,
        };
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{command}` did not finish within {(timeout ?? TimeSpan.FromMinutes(3)).TotalSeconds}s");
        }
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    public static async Task<string> RunAsync(string command, string? workingDirectory = null, TimeSpan? timeout = null, IDictionary<string, string>? environment = null) =>
        (await TryRunAsync(command, workingDirectory, timeout, environment)).EnsureSuccess(command).Stdout;

    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
}

public sealed class ShellCommandFailed(string message) : Exception(message);
