namespace BigFS.Protocol;

/// <summary>
/// When the current outage began, shared by every caller that meets it: the first failure
/// starts it, the first success ends it. Callers wait until its start plus their window, so
/// once an outage has lasted that long they fail at once instead of each waiting a window.
/// </summary>
public sealed class OutageClock
{
    private long _sinceTicks;   // UTC ticks; 0 while there is no outage

    /// <summary>The start of the current outage: <paramref name="now"/> if this failure begins one.</summary>
    public DateTime Start(DateTime now)
    {
        var previous = Interlocked.CompareExchange(ref _sinceTicks, now.Ticks, 0);
        return previous == 0 ? now : new DateTime(previous, DateTimeKind.Utc);
    }

    public void End()
    {
        if (Volatile.Read(ref _sinceTicks) != 0)
            Volatile.Write(ref _sinceTicks, 0);
    }
}
