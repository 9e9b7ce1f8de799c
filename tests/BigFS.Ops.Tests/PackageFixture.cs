using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>Builds the .deb and the tarball once with packaging/build.sh, the one command the package needs.</summary>
public sealed class PackageFixture : IAsyncLifetime
{
    private readonly TempDirectory _out = new("bigfs-pkg-");

    public string Deb { get; private set; } = "";
    public string Tarball { get; private set; } = "";
    public string Version { get; private set; } = "";

    /// <summary>BIGFS_PACKAGE_DIR: test packages already built there instead (for iterating on the tests only).</summary>
    public async Task InitializeAsync()
    {
        string[] lines;
        if (Environment.GetEnvironmentVariable("BIGFS_PACKAGE_DIR") is { Length: > 0 } prebuilt)
        {
            lines = Directory.GetFiles(prebuilt);
        }
        else
        {
            var output = await Shell.RunAsync($"bash {Shell.Quote(Path.Combine(RepoPaths.PackagingDirectory, "build.sh"))} {Shell.Quote(_out.Path)}",
                workingDirectory: RepoPaths.Root, timeout: TimeSpan.FromMinutes(10));
            lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        Deb = lines.Single(l => l.EndsWith(".deb", StringComparison.Ordinal));
        Tarball = lines.Single(l => l.EndsWith(".tar.gz", StringComparison.Ordinal));
        Version = System.Text.RegularExpressions.Regex.Match(Path.GetFileName(Deb), @"^bigfs_([^_]+)_amd64\.deb$").Groups[1].Value;
        Assert.True(File.Exists(Deb) && File.Exists(Tarball) && Version.Length > 0, string.Join('\n', lines));
    }

    public Task DisposeAsync()
    {
        _out.Dispose();
        return Task.CompletedTask;
    }
}
