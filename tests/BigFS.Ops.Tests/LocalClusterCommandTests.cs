using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// `bigfs up` reads its settings through the daemons' configuration stack: what a user sets for
/// a what-if (copies, acknowledgement) is what the cluster it starts does, and it says so.
/// </summary>
public sealed class LocalClusterCommandTests : IDisposable
{
    private readonly TempDirectory _dir = new("bigfs-up-");

    [Fact]
    public async Task Goal_and_copies_before_the_ack_come_from_the_command_line_and_the_environment()
    {
        var port = UnitLauncher.FreeLoopbackPort();
        var meta = $"127.0.0.1:{port}";
        await using var up = DaemonProcess.Start(RepoPaths.BigfsExecutable, ["up", "--data", _dir.Combine("data"), "--port", $"{port}", "--goal", "2"],
            new Dictionary<string, string> { ["BIGFS_MIN_COPIES_BEFORE_ACK"] = "1" });
        await StartedUnits.WaitForActiveNodesAsync(meta, count: 3);
        Assert.Contains("3 storage nodes, goal 2 copies, 1 durable before a write is acknowledged", up.Stderr + up.Stdout);

        var local = _dir.Combine("local.bin");
        await File.WriteAllBytesAsync(local, FileHelpers.RandomBytes(300_000, seed: 7));
        var put = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, ["put", "--meta", meta, local, "/f"]);
        Assert.True(put.ExitCode == 0, put.ToString());

        // Goal 2: the second copy is made in the background; no third is ever asked for.
        var stat = "";
        await Poll.UntilAsync(async () =>
        {
            var run = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, ["stat", "--meta", meta, "/f"]);
            stat = run.Stdout;
            return run.ExitCode == 0 && CountOf(stat, "AVAILABLE") == 2;
        }, TimeSpan.FromSeconds(30), "two available copies of /f");
        Assert.Contains("goal: 2 copies", stat);
        Assert.Equal(0, CountOf(stat, "PENDING"));

        up.Signal(2);   // Ctrl-C
        await up.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(up.ExitCode == 0, up.ToString());
    }

    private static int CountOf(string text, string word) => text.Split(word).Length - 1;

    public void Dispose() => _dir.Dispose();
}
