using BigFS.Testing;
using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>
/// A writer in a Python process of its own that stops at a pause, its descriptor still open,
/// until the test lets it go on. Tests that look at a file between its writes and its close use
/// it instead of a descriptor of the test host: that one would be inherited by every process
/// another test class starts meanwhile, and its close at their exec is a FLUSH, which commits
/// the file (as it must) before the test looks.
/// </summary>
internal sealed class PausedWriter
{
    private readonly Task<Result> _process;
    private readonly string _paused;
    private readonly string _go;

    private PausedWriter(Task<Result> process, string paused, string go) => (_process, _paused, _go) = (process, paused, go);

    /// <summary>
    /// Runs <paramref name="beforePause"/>, pauses, then runs <paramref name="afterPause"/>
    /// (Python statements; <c>args</c> holds <paramref name="args"/>). <paramref name="scratch"/>
    /// is a folder outside the mount for the pause's marker files.
    /// </summary>
    public static PausedWriter Start(string scratch, string beforePause, string afterPause, params string[] args)
    {
        var id = Guid.NewGuid().ToString("N");
        var (paused, go) = (Path.Combine(scratch, $"paused-{id}"), Path.Combine(scratch, $"go-{id}"));
        var script = string.Join('\n',
            "import os, sys, time",
            "paused, go, args = sys.argv[1], sys.argv[2], sys.argv[3:]",
            beforePause,
            "open(paused, 'w').close()",
            "while not os.path.exists(go):",
            "    time.sleep(0.02)",
            afterPause);
        var command = $"python3 -c {Quote(script)} {Quote(paused)} {Quote(go)} {string.Join(' ', args.Select(Quote))}";
        return new PausedWriter(TryRunAsync(command, timeout: TimeSpan.FromSeconds(120)), paused, go);
    }

    /// <summary>The process ended (a failure, before it was let go on).</summary>
    public bool HasEnded => _process.IsCompleted;

    /// <summary>The process's error output, once it has ended.</summary>
    public async Task<string> FailureAsync() => (await _process).Stderr;

    public async Task WaitPausedAsync()
    {
        await Poll.UntilAsync(() => HasEnded || File.Exists(_paused), TimeSpan.FromSeconds(60), "the writer to reach its pause");
        if (HasEnded)
            Assert.Fail($"the writer ended before its pause: {await FailureAsync()}");
    }

    /// <summary>Lets the writer go on, and waits for it to end well.</summary>
    public async Task ResumeAsync()
    {
        await File.WriteAllTextAsync(_go, "");
        var result = await _process;
        Assert.True(result.ExitCode == 0, result.Stderr);
    }
}
