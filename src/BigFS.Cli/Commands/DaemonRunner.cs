using BigFS.Cli.Configuration;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>
/// The life of every daemon command: read the configuration (errors → one line, exit 2), start
/// the component, tell systemd it is ready, serve until SIGINT/SIGTERM (or the component ends
/// by itself), tell systemd it is stopping, stop gracefully.
/// </summary>
internal sealed class DaemonRunner<TOptions, TDaemon> where TDaemon : IAsyncDisposable
{
    public required string Name { get; init; }
    public required string ConfigFile { get; init; }
    public required IDictionary<string, string> ShortOptions { get; init; }
    public required Func<SettingsReader, TOptions> Read { get; init; }
    /// <summary>Checks that need the options (data dir writable …); throw ConfigurationError.</summary>
    public Action<TOptions>? Validate { get; init; }
    public required Func<TOptions, string?> Listen { get; init; }
    public required Func<TOptions, ILoggerFactory, CancellationToken, Task<TDaemon>> Start { get; init; }
    /// <summary>The "serving" log line and the systemd status text.</summary>
    public required Func<TDaemon, ILogger, string> Describe { get; init; }
    /// <summary>Completes if the daemon ends by itself (e.g. a mount unmounted with umount).</summary>
    public Func<TDaemon, Task>? Completion { get; init; }
    public required Func<TDaemon, Task> Stop { get; init; }

    public async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        TOptions options;
        LogLevel level;
        try
        {
            var settings = DaemonConfiguration.Load(args, Path.Combine(DaemonSettings.ConfigDirectory, ConfigFile), ShortOptions);
            level = DaemonSettings.ReadLogLevel(settings);
            options = Read(settings);
            Validate?.Invoke(options);
        }
        catch (ConfigurationError e)
        {
            Console.Error.WriteLine($"bigfs {Name}: configuration error: {e.Message}");
            return 2;
        }

        using var loggerFactory = Logging.Create(level);
        var log = loggerFactory.CreateLogger($"bigfs.{Name}");
        TDaemon daemon;
        try
        {
            daemon = await Start(options, loggerFactory, ct);
        }
        catch (Exception e) when (Listen(options) is { } listen && StartupFailure.AsConfigurationError(e, listen) is { } configurationError)
        {
            Console.Error.WriteLine($"bigfs {Name}: configuration error: {configurationError.Message}");
            return 2;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogCritical("bigfs {Name} failed to start: {Reason}", Name, e.Message);
            return 1;
        }
        await using (daemon)
        {
            SystemdNotify.Ready(Describe(daemon, log));
            var stopRequested = Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            await (Completion is null ? stopRequested : Task.WhenAny(stopRequested, Completion(daemon)));
            SystemdNotify.Stopping();
            log.LogInformation("Stopping");
            await Stop(daemon);
        }
        return 0;
    }
}
