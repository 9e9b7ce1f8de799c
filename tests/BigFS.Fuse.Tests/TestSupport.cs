using System.Diagnostics;
using System.Runtime.InteropServices;
using BigFS.Fuse.MemoryFs;

namespace BigFS.Fuse.Tests;

/// <summary>Mount tests need root and /dev/fuse; without them they fail loudly, never skip.</summary>
internal static class Prerequisites
{
    public static void Require()
    {
        Assert.True(File.Exists("/dev/fuse"), "/dev/fuse is missing: FUSE mount tests need it");
        Assert.True(Posix.geteuid() == 0, "FUSE mount tests must run as root");
        foreach (var tool in new[] { "fusermount3", "setfattr", "getfattr", "flock", "diff", "mkfifo", "setpriv", "findmnt", "fallocate", "python3" })
            Assert.True(Shell.Which(tool), $"required tool {tool} is not installed (apt-get install fuse3 attr util-linux diffutils)");
    }
}

/// <summary>A filesystem mounted at a fresh temporary directory; always unmounted and removed on dispose.</summary>
internal sealed class TestMount : IAsyncDisposable
{
    private TestMount(string path, FuseMount mount) { Path = path; Mount = mount; }

    public string Path { get; }
    public FuseMount Mount { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public static string NewMountPoint()
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bigfs-fuse-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    public static async Task<TestMount> StartAsync(IFuseFileSystem? fs = null, FuseMountOptions? options = null)
    {
        Prerequisites.Require();
        var path = NewMountPoint();
        var mount = await FuseMount.MountAsync(path, fs ?? new MemoryFileSystem(), options ?? new FuseMountOptions { AllowOther = true });
        return new TestMount(path, mount);
    }

    public async ValueTask DisposeAsync()
    {
        await Mount.UnmountAsync(TimeSpan.FromSeconds(10));
        Posix.umount2(Path, 2); // in case a test left it busy
        try { Directory.Delete(Path); } catch (IOException) { }
    }
}

internal static class Shell
{
    public static bool Which(string tool) => Run($"command -v {tool}", check: false).Exit == 0;

    /// <summary>Runs a bash script with a timeout; by default asserts exit status 0.</summary>
    public static (int Exit, string Out, string Err) Run(string script, string? cwd = null, bool check = true, int timeoutSeconds = 120)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        if (cwd is not null) psi.WorkingDirectory = cwd;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"timed out after {timeoutSeconds}s: {script}");
        }
        p.WaitForExit();
        var result = (p.ExitCode, stdout.Result, stderr.Result);
        if (check) Assert.True(p.ExitCode == 0, $"`{script}` exited {p.ExitCode}: {result.Item3}{result.Item2}");
        return result;
    }

    public static string Out(string script, string? cwd = null) => Run(script, cwd).Out.Trim();
}

internal static unsafe partial class Posix
{
    public const int AT_FDCWD = -100;
    public const uint RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;
    public const int F_OFD_GETLK = 36, F_OFD_SETLK = 37, F_OFD_SETLKW = 38;
    public const short F_RDLCK = 0, F_WRLCK = 1, F_UNLCK = 2;
    public const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    public const int ENOTCONN = 107;

    [StructLayout(LayoutKind.Sequential)]
    public struct Flock
    {
        public short Type, Whence;
        public long Start, Len;
        public int Pid;
    }

    [LibraryImport("libc")] public static partial uint geteuid();
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);
    [LibraryImport("libc", SetLastError = true)] public static partial int fcntl(int fd, int cmd, Flock* lk);
    [LibraryImport("libc", SetLastError = true)] public static partial int flock(int fd, int operation);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int umount2(string target, int flags);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int access(string path, int mode);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static int Fd(FileStream s) => (int)s.SafeFileHandle.DangerousGetHandle();

    /// <summary>0 or errno of an OFD lock request.</summary>
    public static int OfdLock(FileStream s, short type, long start, long len, bool wait)
    {
        var lk = new Flock { Type = type, Whence = 0, Start = start, Len = len };
        return fcntl(Fd(s), wait ? F_OFD_SETLKW : F_OFD_SETLK, &lk) == 0 ? 0 : Errno;
    }

    public static Flock OfdGetLock(FileStream s, short type, long start, long len)
    {
        var lk = new Flock { Type = type, Whence = 0, Start = start, Len = len };
        Assert.Equal(0, fcntl(Fd(s), F_OFD_GETLK, &lk));
        return lk;
    }
}
