using System.Globalization;

namespace BigFS.Fuse.Session;

/// <summary>
/// Whether the thread that sent a request is being killed. The kernel sends one FUSE_INTERRUPT,
/// for whatever signal comes first, so the interrupt alone does not tell a timer's SIGALRM from a
/// kill. A fatal signal does: SIGKILL, or one the process does not handle whose default action
/// ends it (SIGTERM, SIGINT, …), leaves SIGKILL pending on every thread of the process until it
/// dies, and <c>/proc/TID/status</c> shows it.
/// </summary>
internal static class FatalSignal
{
    private const ulong SigKill = 1UL << (9 - 1);

    /// <param name="tid">The requester's thread id, as the FUSE header carries it (0: the kernel's own request).</param>
    public static bool IsPending(uint tid)
    {
        if (tid == 0)
            return false;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{tid}/status"))
            {
                // SigPnd: this thread's pending signals; ShdPnd: the process's.
                if ((line.StartsWith("SigPnd:", StringComparison.Ordinal) || line.StartsWith("ShdPnd:", StringComparison.Ordinal))
                    && ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var pending)
                    && (pending & SigKill) != 0)
                    return true;
            }
            return false;
        }
        catch (IOException)
        {
            return false;   // gone already (or another namespace's): nothing to wait for either way
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
