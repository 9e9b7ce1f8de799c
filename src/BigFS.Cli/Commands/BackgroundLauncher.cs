using System.Diagnostics;

namespace BigFS.Cli.Commands;

/// <summary>
/// `bigfs mount … --background` (what the fstab helper uses): starts the mount daemon detached
/// in its own session and returns once the mount is live, or with the daemon's error.
/// </summary>
public static class BackgroundLauncher
{
    public static async Task<int> RunAsync(string[] mountArgs, CancellationToken ct)
    {
        var normalized = MountCommand.Normalize(mountArgs);
        var mountPoint = normalized.SkipWhile(a => a != "--mount_point").Skip(1).FirstOrDefault();
        if (mountPoint is null)
        {
            Console.Error.WriteLine("bigfs mount: a mount point is required");
            return 2;
        }
        mountPoint = Path.GetFullPath(mountPoint);

        // Detached: its own session, no terminal, log appended to a file (the journal is for units).
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec setsid --fork \"$@\" </dev/null >>\"$BIGFS_MOUNT_LOG\" 2>&1");
        psi.ArgumentList.Add("sh");
        psi.Environment["BIGFS_MOUNT_LOG"] = Environment.GetEnvironmentVariable("BIGFS_MOUNT_LOG") ?? LogPath;
        foreach (var a in SelfCommand())
            psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("mount");
        foreach (var a in mountArgs)
            psi.ArgumentList.Add(a);
        using var launcher = Process.Start(psi)!;
        await launcher.WaitForExitAsync(ct);

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (IsMounted(mountPoint))
                return 0;
            await Task.Delay(50, ct);
        }
        Console.Error.WriteLine($"bigfs mount: {mountPoint} did not become live within 60s (see {LogPath})");
        return 1;
    }

    private static string LogPath => Directory.Exists("/var/log") && Environment.UserName == "root" ? "/var/log/bigfs-mount.log" : Path.Combine(Path.GetTempPath(), "bigfs-mount.log");

    private static string[] SelfCommand()
    {
        var exe = Environment.ProcessPath!;
        // `dotnet bigfs.dll` in a source checkout; the published single-file binary otherwise.
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" ? [exe, typeof(BackgroundLauncher).Assembly.Location] : [exe];
    }

    public static bool IsMounted(string mountPoint) =>
        File.ReadLines("/proc/self/mountinfo").Any(line =>
        {
            var fields = line.Split(' ');
            return fields.Length > 4 && fields[4] == mountPoint && line.Contains(" - fuse.bigfs ", StringComparison.Ordinal);
        });
}
