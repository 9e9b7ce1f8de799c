using System.Net;
using System.Net.Sockets;
using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// A malformed or contradictory configuration stops the daemon at start: non-zero exit and one
/// line on stderr naming the key — no stack trace, no silent default.
/// </summary>
public sealed class BadConfigurationTests : IDisposable
{
    private readonly TempDirectory _dir = new("bigfs-badconf-");

    public static TheoryData<string, string, string> BadFiles => new()
    {
        // daemon, JSON file content, the key the message must name
        { "meta", """{ "listen": "127.0.0.1:0", "heartbeat_intervall": "5s" }""", "heartbeat_intervall" },
        { "node", """{ "listen": "127.0.0.1:0", "replication": 3 }""", "replication" },
        { "meta", """{ "listen": "127.0.0.1:0", "goal": "three" }""", "goal" },
        { "meta", """{ "listen": "127.0.0.1:0", "goal": { "copies": 3 } }""", "goal" },
        { "meta", """{ "listen": "127.0.0.1:0", "heartbeat_interval": "soon" }""", "heartbeat_interval" },
        { "meta", """{ "listen": "127.0.0.1:0", "chunk_size": "3MB" }""", "chunk_size" },
        { "node", """{ "listen": "127.0.0.1:0", "capacity": "10 apples" }""", "capacity" },
        { "node", """{ "listen": "127.0.0.1:0", "labels": [ { "rack": 1 } ] }""", "labels" },
        { "meta", """{ "listen": "127.0.0.1:0", "goal": 2, "min_copies_before_ack": 3 }""", "min_copies_before_ack" },
        { "meta", """{ "listen": "127.0.0.1:0", "heartbeat_interval": "30s", "heartbeat_timeout": "10s" }""", "heartbeat_timeout" },
        { "meta", """{ "listen": "nonsense" }""", "listen" },
        { "node", """{ "listen": "127.0.0.1:0", "meta": "metahost" }""", "meta" },
        { "node", """{ "listen": "127.0.0.1:0", "meta": "meta host:9000" }""", "meta" },
        { "node", """{ "listen": "localhost:0", "advertise_address": "x", "meta": "127.0.0.1:9000", "labels": "a,b", "capacity": [1] }""", "capacity" },
        { "meta", """{ "listen": "127.0.0.1:0", "log_level": "loud" }""", "log_level" },
        { "meta", """{ "listen": "127.0.0.1:0", """, "config.json" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task Bad_file_stops_the_daemon_with_one_line_naming_the_key(string daemon, string json, string key)
    {
        var config = _dir.Combine("config.json");
        await File.WriteAllTextAsync(config, json);
        var run = await RunDaemonAsync(daemon, ["--config", config, "--data", _dir.Combine("data")]);
        AssertOneLineError(run, daemon, key);
    }

    [Fact]
    public async Task Bad_environment_value_names_the_key()
    {
        var config = _dir.Combine("meta.json");
        await File.WriteAllTextAsync(config, """{ "listen": "127.0.0.1:0" }""");
        var run = await RunDaemonAsync("meta", ["--config", config, "--data", _dir.Combine("data")], new Dictionary<string, string> { ["BIGFS_GOAL"] = "many" });
        AssertOneLineError(run, "meta", "goal");
    }

    [Fact]
    public async Task Unknown_command_line_option_names_the_key()
    {
        var run = await RunDaemonAsync("node", ["--data", _dir.Combine("data"), "--listen", "127.0.0.1:0", "--capacty", "1GiB"]);
        AssertOneLineError(run, "node", "capacty");
    }

    [Theory]
    [InlineData("--goal 4", "", "goal")]                                   // three nodes cannot hold four copies
    [InlineData("--goal 2 --min-copies-before-ack 3", "", "min_copies_before_ack")]
    [InlineData("--goal 2", "3", "min_copies_before_ack")]                 // from BIGFS_MIN_COPIES_BEFORE_ACK
    [InlineData("--nodes 0", "", "nodes")]
    [InlineData("--colour red", "", "colour")]
    public async Task The_local_cluster_command_names_the_key_it_cannot_use(string options, string minCopiesVariable, string key)
    {
        var env = minCopiesVariable == "" ? null : new Dictionary<string, string> { ["BIGFS_MIN_COPIES_BEFORE_ACK"] = minCopiesVariable };
        var run = await RunDaemonAsync("up", ["--data", _dir.Combine("data"), .. options.Split(' ')], env);
        AssertOneLineError(run, "up", key);
    }

    [Fact]
    public async Task Missing_config_file_is_named()
    {
        var run = await RunDaemonAsync("meta", ["--config", _dir.Combine("nope.json"), "--data", _dir.Combine("data")]);
        AssertOneLineError(run, "meta", "nope.json");
    }

    [Theory]
    [InlineData("meta")]
    [InlineData("node")]
    public async Task Port_in_use_names_listen(string daemon)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var address = $"127.0.0.1:{((IPEndPoint)holder.LocalEndpoint).Port}";
        var config = _dir.Combine("config.json");
        await File.WriteAllTextAsync(config, $$"""{ "listen": "{{address}}" }""");
        var run = await RunDaemonAsync(daemon, ["--config", config, "--data", _dir.Combine("data")]);
        AssertOneLineError(run, daemon, "listen");
        Assert.Contains(address, run.Stderr);
    }

    [Theory]
    [InlineData("meta")]
    [InlineData("node")]
    public async Task Data_dir_not_writable_names_data_dir(string daemon)
    {
        // Root writes through file modes, so the directory is a read-only mount when running as root.
        var readOnly = _dir.Combine("readonly");
        Directory.CreateDirectory(readOnly);
        var mounted = Environment.UserName == "root";
        if (mounted)
            await Shell.RunAsync($"mount -t tmpfs -o ro,size=1m tmpfs {Shell.Quote(readOnly)}");
        else
            File.SetUnixFileMode(readOnly, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            var config = _dir.Combine("config.json");
            await File.WriteAllTextAsync(config, """{ "listen": "127.0.0.1:0" }""");
            var run = await RunDaemonAsync(daemon, ["--config", config, "--data", Path.Combine(readOnly, "data")]);
            AssertOneLineError(run, daemon, "data_dir");
        }
        finally
        {
            if (mounted)
                await Shell.RunAsync($"umount {Shell.Quote(readOnly)}");
        }
    }

    private static async Task<DaemonProcess> RunDaemonAsync(string daemon, string[] args, IReadOnlyDictionary<string, string>? env = null)
    {
        var run = await DaemonProcess.RunAsync(RepoPaths.BigfsExecutable, [daemon, .. args], env, TimeSpan.FromSeconds(60));
        return run;
    }

    private static void AssertOneLineError(DaemonProcess run, string daemon, string key)
    {
        Assert.True(run.ExitCode != 0, $"expected a non-zero exit\n{run}");
        // Informational log lines from a start that got that far may precede it; nothing else may.
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !System.Text.RegularExpressions.Regex.IsMatch(l, @"^(\d\d:\d\d:\d\d\.\d{3} )?info: ")).ToList();
        Assert.True(lines.Count == 1, $"expected one error line on stderr, got {lines.Count}\n{run}");
        Assert.StartsWith($"bigfs {daemon}: configuration error: ", lines[0]);
        Assert.Contains(key, lines[0]);
        Assert.DoesNotContain("   at ", run.Stderr);
        Assert.DoesNotContain("Exception", run.Stderr);
        Assert.Equal("", run.Stdout.Trim());
    }

    public void Dispose() => _dir.Dispose();
}
