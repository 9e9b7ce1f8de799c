using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using BigFS.Fuse.Native;
using Microsoft.Extensions.Logging;

namespace BigFS.Fuse.Mounting;

/// <summary>
/// Mounts and unmounts: mount(2) on /dev/fuse as root, fusermount3 (fd passed back over a Unix
/// socket with SCM_RIGHTS) otherwise. Clears a stale mount of a dead daemon first, and raises the
/// mount's bdi read_ahead_kb so the kernel can read ahead in 1 MiB requests.
/// </summary>
internal static unsafe class FuseMounter
{
    private const string Fusermount = "fusermount3";

    public static bool IsRoot => LibC.GetEuid() == 0;

    /// <summary>Mounts and returns the connected /dev/fuse fd.</summary>
    public static int Mount(string mountPoint, FuseMountOptions options, ILogger logger)
    {
        ClearStaleMount(mountPoint, logger);
        bool useFusermount = options.UseFusermount ?? !IsRoot;
        return useFusermount ? MountWithFusermount(mountPoint, options, logger) : MountDirect(mountPoint, options);
    }

    /// <summary>A mount whose daemon died answers ENOTCONN ("Transport endpoint is not connected"):
    /// detach it lazily so a new mount can take its place.</summary>
    public static bool ClearStaleMount(string mountPoint, ILogger logger)
    {
        if (LibC.StatErrno(mountPoint) != LibC.ENOTCONN) return false;
        logger.LogWarning("Stale FUSE mount at {MountPoint} (transport endpoint is not connected); detaching it", mountPoint);
        if (IsRoot)
        {
            if (LibC.Umount2(mountPoint, LibC.MNT_DETACH) != 0)
                throw new IOException($"cannot detach stale mount {mountPoint}: {LibC.StrError(Marshal.GetLastPInvokeError())}");
        }
        else RunFusermount(["-u", "-z", "--", mountPoint]);
        return true;
    }

    public static string BuildMountData(int fd, FuseMountOptions o, uint uid, uint gid)
    {
        var data = $"fd={fd},rootmode={Convert.ToString(o.RootMode & ModeBits.S_IFMT, 8)},user_id={uid},group_id={gid}";
        if (o.AllowOther) data += ",allow_other";
        if (o.DefaultPermissions) data += ",default_permissions";
        data += $",max_read={o.MaxWrite}";
        return data;
    }

    private static int MountDirect(string mountPoint, FuseMountOptions o)
    {
        int fd = LibC.Open("/dev/fuse", LibC.O_RDWR | LibC.O_CLOEXEC);
        if (fd < 0)
            throw new IOException($"cannot open /dev/fuse: {LibC.StrError(Marshal.GetLastPInvokeError())}");
        string data = BuildMountData(fd, o, LibC.GetEuid(), LibC.GetEgid());
        ulong flags = LibC.MS_NOSUID | LibC.MS_NODEV | (o.ReadOnly ? LibC.MS_RDONLY : 0);
        string type = o.Subtype is null ? "fuse" : "fuse." + o.Subtype;
        if (LibC.Mount(o.FsName, mountPoint, type, flags, data) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            LibC.Close(fd);
            throw new IOException($"mount {mountPoint} failed: {LibC.StrError(errno)}");
        }
        return fd;
    }

    private static int MountWithFusermount(string mountPoint, FuseMountOptions o, ILogger logger)
    {
        var opts = new List<string> { $"fsname={o.FsName}" };
        if (o.Subtype is not null) opts.Add($"subtype={o.Subtype}");
        if (o.AllowOther) opts.Add("allow_other");
        if (o.DefaultPermissions) opts.Add("default_permissions");
        if (o.ReadOnly) opts.Add("ro");
        opts.Add("nosuid");
        opts.Add("nodev");
        opts.Add($"max_read={o.MaxWrite}");

        int* sv = stackalloc int[2];
        if (LibC.SocketPair(LibC.AF_UNIX, LibC.SOCK_STREAM, 0, sv) != 0)
            throw new IOException($"socketpair failed: {LibC.StrError(Marshal.GetLastPInvokeError())}");
        int childEnd = sv[0], ourEnd = sv[1];
        try
        {
            var psi = new ProcessStartInfo(Fusermount) { RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-o", string.Join(',', opts), "--", mountPoint }) psi.ArgumentList.Add(a);
            psi.Environment["_FUSE_COMMFD"] = childEnd.ToString(CultureInfo.InvariantCulture);
            using var process = Process.Start(psi) ?? throw new IOException("cannot start fusermount3");
            LibC.Close(childEnd);
            childEnd = -1;
            int fd = ReceiveFd(ourEnd);
            if (!process.WaitForExit(10_000)) { process.Kill(); throw new IOException("fusermount3 did not exit"); }
            string stderr = process.StandardError.ReadToEnd();
            if (fd < 0) throw new IOException($"fusermount3 failed (exit {process.ExitCode}): {stderr.Trim()}");
            logger.LogDebug("fusermount3 handed over fd {Fd}", fd);
            return fd;
        }
        finally
        {
            if (childEnd >= 0) LibC.Close(childEnd);
            LibC.Close(ourEnd);
        }
    }

    /// <summary>Receives one fd sent with SCM_RIGHTS; −1 if the sender closed without sending.</summary>
    private static int ReceiveFd(int socket)
    {
        byte data;
        var iov = new LibC.IoVec { Base = &data, Length = 1 };
        int controlLength = sizeof(LibC.CMsgHdr) + sizeof(int) + 8;
        byte* control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();
        var msg = new LibC.MsgHdr { Iov = &iov, IovLen = 1, Control = control, ControlLen = (nuint)controlLength };
        nint n;
        do n = LibC.RecvMsg(socket, &msg, 0);
        while (n < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR);
        if (n <= 0) return -1;
        var cmsg = (LibC.CMsgHdr*)control;
        if (msg.ControlLen < (nuint)sizeof(LibC.CMsgHdr) || cmsg->Level != LibC.SOL_SOCKET || cmsg->Type != LibC.SCM_RIGHTS) return -1;
        int fd = *(int*)(control + sizeof(LibC.CMsgHdr));
        LibC.Fcntl(fd, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */);
        return fd;
    }

    /// <summary>Unmounts; a busy mount (open files) is detached lazily and goes away when the last file closes.</summary>
    public static void Unmount(string mountPoint, bool viaFusermount, ILogger logger)
    {
        if (!viaFusermount && IsRoot)
        {
            if (LibC.Umount2(mountPoint, 0) == 0) return;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == LibC.EINVAL && !MountInfo.IsMounted(mountPoint)) return; // already gone
            logger.LogInformation("umount {MountPoint}: {Error}; detaching lazily", mountPoint, LibC.StrError(errno));
            if (LibC.Umount2(mountPoint, LibC.MNT_DETACH) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EINVAL && !MountInfo.IsMounted(mountPoint)) return;
                throw new IOException($"umount {mountPoint} failed: {LibC.StrError(errno)}");
            }
            return;
        }
        if (!MountInfo.IsMounted(mountPoint)) return;
        if (!RunFusermount(["-u", "--", mountPoint])) RunFusermount(["-u", "-z", "--", mountPoint]);
    }

    private static bool RunFusermount(string[] args)
    {
        var psi = new ProcessStartInfo(Fusermount) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new IOException("cannot start fusermount3");
        if (!p.WaitForExit(10_000)) { p.Kill(); return false; }
        return p.ExitCode == 0;
    }

    /// <summary>Raises the mount's read-ahead window (INIT's max_readahead can only lower it).</summary>
    public static void SetReadAhead(string mountPoint, int kb, ILogger logger)
    {
        if (kb <= 0) return;
        try
        {
            var device = MountInfo.FindDevice(mountPoint);
            if (device is null) { logger.LogWarning("Mount {MountPoint} not found in mountinfo; read_ahead_kb unchanged", mountPoint); return; }
            File.WriteAllText($"/sys/class/bdi/{device}/read_ahead_kb", kb.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Cannot set read_ahead_kb of {MountPoint}: {Error}", mountPoint, e.Message);
        }
    }
}
