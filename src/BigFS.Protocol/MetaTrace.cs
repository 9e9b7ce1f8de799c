using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace BigFS.Protocol;

/// <summary>
/// Opt-in latency trace of metadata calls, for finding where a namespace operation's time
/// goes: set <c>BIGFS_META_TRACE=/path/file</c> and each process appends per-stage percentiles
/// (µs) to that file at exit. Off (the default), every call site is one static-readonly test.
/// </summary>
public static class MetaTrace
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("BIGFS_META_TRACE") is { Length: > 0 };

    private const int MaxSamplesPerStage = 200_000;
    private static readonly ConcurrentDictionary<string, Samples> Stages = new(StringComparer.Ordinal);

    static MetaTrace()
    {
        if (Enabled)
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Dump();
    }

    public static long Now() => Stopwatch.GetTimestamp();

    /// <summary>Records the time since <paramref name="start"/> (a <see cref="Now"/> value) under <paramref name="stage"/>.</summary>
    public static void Record(string stage, long start)
    {
        if (!Enabled)
            return;
        var us = (Stopwatch.GetTimestamp() - start) * 1_000_000.0 / Stopwatch.Frequency;
        Stages.GetOrAdd(stage, _ => new Samples()).Add(us);
    }

    /// <summary>The per-stage summary so far (count, p50, p90, p99, mean in µs).</summary>
    public static string Summary()
    {
        var text = new StringBuilder();
        text.AppendLine($"# metadata trace, pid {Environment.ProcessId}, {DateTime.UtcNow:HH:mm:ss} UTC: stage count p50 p90 p99 mean (µs)");
        foreach (var (stage, samples) in Stages.OrderBy(s => s.Key, StringComparer.Ordinal))
            text.AppendLine($"{stage} {samples.Describe()}");
        return text.ToString();
    }

    private static void Dump()
    {
        try
        {
            File.AppendAllText(Environment.GetEnvironmentVariable("BIGFS_META_TRACE")!, Summary());
        }
        catch (IOException)
        {
        }
    }

    private sealed class Samples
    {
        private readonly double[] _values = new double[MaxSamplesPerStage];
        private int _count;

        public void Add(double us)
        {
            var i = Interlocked.Increment(ref _count) - 1;
            if (i < _values.Length)
                _values[i] = us;
        }

        public string Describe()
        {
            var n = Math.Min(Volatile.Read(ref _count), _values.Length);
            var sorted = _values[..n];
            Array.Sort(sorted);
            double P(double q) => n == 0 ? 0 : sorted[Math.Min(n - 1, (int)(q * n))];
            return $"{n} {P(0.5):0} {P(0.9):0} {P(0.99):0} {(n == 0 ? 0 : sorted.Average()):0}";
        }
    }
}
