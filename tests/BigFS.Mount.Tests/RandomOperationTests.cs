using BigFS.Protocol;
using Google.Protobuf;
using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>
/// Seeded random operations through a mount, judged by something known to be right: file I/O
/// against an in-memory model of each file (<c>random-ops/fsx.py</c>), and namespace operations
/// against the same operations on the local ext4 (<c>random-ops/nsdiff.py</c>, every result and
/// errno, and the whole trees). A failure prints the seed and the last operations, so it replays.
/// </summary>
public class RandomOperationTests : IAsyncLifetime
{
    private static readonly string Scripts = Path.Combine(AppContext.BaseDirectory, "random-ops");
    private MountedCluster _m = null!;
    private string Mnt => _m.MountPoint;

    public async Task InitializeAsync() => _m = await MountedCluster.StartAsync();

    public async Task DisposeAsync() => await _m.DisposeAsync();

    [Theory]
    [InlineData(1, 8 << 20)]
    [InlineData(2, 256 << 10)]   // small files: every operation lands in the same few blocks and one chunk
    [InlineData(3, 70 << 20)]    // files over several chunks
    public async Task RandomFileIoReadsBackWhatAModelOfTheFileSays(int seed, int maxFileSize)
    {
        var result = await TryRunAsync($"python3 {Quote(Scripts)}/fsx.py {Quote(Mnt)} {seed} 1500 {maxFileSize}", timeout: TimeSpan.FromMinutes(5));
        Assert.True(result.ExitCode == 0, result.Stderr + result.Stdout);
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    public async Task RandomNamespaceOperationsGiveTheSameResultsAsExt4(int seed, bool madeThroughTheMount)
    {
        // A directory made through the mount is known completely by its daemon (absent names are
        // answered from its cache); one made elsewhere is not: both paths are exercised.
        var local = Path.Combine(_m.Cluster.Root, $"nsdiff-local-{seed}");
        Directory.CreateDirectory(local);
        var name = $"nsdiff-{seed}";
        if (madeThroughTheMount)
        {
            Directory.CreateDirectory($"{Mnt}/{name}");
        }
        else
        {
            var client = await _m.Cluster.ClientAsync();
            var made = await client.Namespace.CreateNodeAsync(new CreateNodeRequest   // in the root (inode 1)
            {
                Parent = 1, Name = ByteString.CopyFromUtf8(name), Type = InodeType.Directory, Mode = 0x1ed, Exclusive = true,
            });
            Assert.Equal(0, made.Errno);
        }
        var result = await TryRunAsync($"python3 {Quote(Scripts)}/nsdiff.py {Quote(local)} {Quote($"{Mnt}/{name}")} {seed} 2000", timeout: TimeSpan.FromMinutes(5));
        Assert.True(result.ExitCode == 0, result.Stderr + result.Stdout);
    }
}
