using Microsoft.Extensions.Logging;

namespace BigFS.Cli;

public static class Logging
{
    /// <summary>One line per message on stderr.</summary>
    public static ILoggerFactory Create(LogLevel level) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(level);
        builder.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.AddFilter("Microsoft.Hosting", LogLevel.Warning);
        builder.AddFilter("Grpc", LogLevel.Warning);
        // The host logs a start failure with its stack trace; the daemon reports it in one line.
        builder.AddFilter("Microsoft.Extensions.Hosting", LogLevel.Critical);
        builder.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        builder.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            // Under systemd (stderr is the journal) the journal timestamps each line itself.
            o.TimestampFormat = Environment.GetEnvironmentVariable("JOURNAL_STREAM") is null ? "HH:mm:ss.fff " : null;
            o.UseUtcTimestamp = true;
        });
        builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
    });
}
