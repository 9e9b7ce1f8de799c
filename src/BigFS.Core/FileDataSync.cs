using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BigFS.Core;

/// <summary>
/// fdatasync(2): flushes a file's data and only the metadata needed to read it back (not its
/// times). Over blocks that are already allocated and written (a zero-filled preallocated
/// log), that is a data write and a device cache flush, with no filesystem journal commit —
/// about half an fsync of a growing file on this machine's ext4. Elsewhere, a full fsync.
/// </summary>
public static partial class FileDataSync
{
    public static void DataSync(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux())
        {
            RandomAccess.FlushToDisk(handle);
            return;
        }
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (FdataSync((int)handle.DangerousGetHandle()) != 0)
                throw new IOException($"fdatasync failed: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FdataSync(int fd);
}
