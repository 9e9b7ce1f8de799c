using BigFS.Client;
using BigFS.Testing;
using static BigFS.Testing.FileHelpers;

namespace BigFS.Ops.Tests;

/// <summary>
/// A file's close commits it with acknowledgement once it is in the metadata journal, before
/// the journal reaches the disk (like close(2) on a local filesystem). That must survive a crash
/// of the metadata server process: SIGKILL right after the close, restart on the same data,
/// and the file is there with every byte.
/// </summary>
public sealed class MetadataCrashTests : IAsyncLifetime
{
    private readonly TempDirectory _root = new("bigfs-crash-");
    private StartedUnits? _units;

    [Fact]
    public async Task Files_closed_before_a_SIGKILL_of_the_metadata_server_are_intact_after_its_restart()
    {
        var launcher = new UnitLauncher(_root.Path);
        launcher.InstallPackagedConfiguration();
        var units = _units = new StartedUnits(launcher, _root);
        var (metaAddress, metaEnv, meta) = await units.StartOneNodeClusterAsync();

        var files = new List<(string Name, byte[] Data)>();
        await using (var client = await BigFsClient.ConnectAsync("http://" + metaAddress))
        {
            for (var i = 0; i < 5; i++)
            {
                var data = RandomBytes(300_000 + i * 77_777, seed: 40 + i);
                var attr = await CreateFileAsync(client, $"f{i}");
                await WriteAsync(client, attr.Ino, 0, data);   // closes: the lazy commit
                files.Add(($"f{i}", data));
            }
            meta.Process.Signal(DaemonProcess.SIGKILL);         // within the 20 ms lazy flush window, most likely
        }
        await meta.Process.WaitForExitAsync(TimeSpan.FromSeconds(30));

        var restarted = await units.StartAsync("bigfs-meta.service", null, new(metaEnv));   // same data directory
        await StartedUnits.WaitForActiveNodesAsync(metaAddress);
        // The killed server left its journal behind, and the restart replayed it.
        Assert.Contains("Replayed", restarted.Process.Stdout + restarted.Process.Stderr);
        await using var after = await BigFsClient.ConnectAsync("http://" + metaAddress);
        foreach (var (name, data) in files)
        {
            var attr = await after.ResolvePathAsync("/" + name);
            Assert.Equal((ulong)data.Length, attr.Size);
            Assert.Equal(Sha256(data), Sha256(await ReadAllAsync(after, attr.Ino)));
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_units is not null)
            await _units.DisposeAsync();
        _root.Dispose();
    }
}
