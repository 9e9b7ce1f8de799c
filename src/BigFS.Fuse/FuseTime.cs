namespace BigFS.Fuse;

/// <summary>A timestamp as the kernel stores it: seconds since the epoch and nanoseconds.</summary>
public readonly record struct FuseTime(long Seconds, uint Nanoseconds)
{
    public static FuseTime Now => FromDateTime(DateTime.UtcNow);

    public static FuseTime FromDateTime(DateTime utc)
    {
        long ticks = utc.ToUniversalTime().Ticks - DateTime.UnixEpoch.Ticks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rem);
        if (rem < 0) { seconds--; rem += TimeSpan.TicksPerSecond; }
        return new FuseTime(seconds, (uint)(rem * 100));
    }

    public DateTime ToDateTime() =>
        DateTime.UnixEpoch.AddTicks(Seconds * TimeSpan.TicksPerSecond + Nanoseconds / 100);
}
