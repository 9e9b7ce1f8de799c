using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// A fresh Debian 12 root for installing the package. debootstrap (minbase plus systemd, dbus
/// and the package's dependencies) runs once into a well-known cache folder — created when
/// missing, under a lock so parallel runs do not race — and each test gets its own copy.
/// </summary>
public static class Debian12Root
{
    /// <summary>Override with BIGFS_DEBIAN12_ROOT; the default survives between CI runs on one machine.</summary>
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("BIGFS_DEBIAN12_ROOT") is { Length: > 0 } dir ? dir : "/var/cache/bigfs-tests/debian12-root";

    public const string Packages = "systemd,systemd-sysv,dbus,fuse3,adduser";

    private static readonly SemaphoreSlim InProcess = new(1, 1);

    public static async Task<string> EnsureCachedAsync()
    {
        await InProcess.WaitAsync();
        try
        {
            var cache = CacheDirectory;
            if (File.Exists(Path.Combine(cache, "etc", "debian_version")) && File.Exists(Path.Combine(cache, "bin", "systemctl")))
                return cache;
            Directory.CreateDirectory(Path.GetDirectoryName(cache)!);
            var building = cache + ".building";
            // flock serializes with other test processes; the rename publishes a complete root only.
            var script = $"""
                set -e
                exec 9>{Shell.Quote(cache + ".lock")}
                flock 9
                if [ -e {Shell.Quote(cache)}/etc/debian_version ] && [ -e {Shell.Quote(cache)}/bin/systemctl ]; then exit 0; fi
                rm -rf {Shell.Quote(building)} {Shell.Quote(cache)}
                debootstrap --variant=minbase --include={Packages} bookworm {Shell.Quote(building)}
                mv {Shell.Quote(building)} {Shell.Quote(cache)}
                """;
            await Shell.RunAsync(script, timeout: TimeSpan.FromMinutes(10));
            return cache;
        }
        finally
        {
            InProcess.Release();
        }
    }

    /// <summary>A private copy of the cached root, removed by the caller.</summary>
    public static async Task<string> FreshCopyAsync()
    {
        var cache = await EnsureCachedAsync();
        var root = Path.Combine("/var/tmp", "bigfs-deb12-" + Guid.NewGuid().ToString("n")[..10]);
        await Shell.RunAsync($"cp -a --reflink=auto {Shell.Quote(cache)} {Shell.Quote(root)}", timeout: TimeSpan.FromMinutes(5));
        return root;
    }

    public static Task RemoveAsync(string root) =>
        Shell.TryRunAsync($"umount -R {Shell.Quote(root)}/proc 2>/dev/null; rm -rf --one-file-system {Shell.Quote(root)}", timeout: TimeSpan.FromMinutes(2));
}
