using BigFS.Cli.Configuration;
using BigFS.Metadata;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>`bigfs meta --data DIR --listen HOST:PORT`: the metadata server, until SIGINT/SIGTERM.</summary>
public static class MetaCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        MetadataServerOptions options;
        LogLevel level;
        try
        {
            var settings = DaemonConfiguration.Load(args, Path.Combine(DaemonSettings.ConfigDirectory, "meta.json"), DaemonSettings.MetaShortOptions);
            level = DaemonSettings.ReadLogLevel(settings);
            options = DaemonSettings.ReadMeta(settings);
            DataDirectoryCheck.EnsureWritable("data_dir", options.DataDirectory);
        }
        catch (ConfigurationError e)
        {
            Console.Error.WriteLine($"bigfs meta: configuration error: {e.Message}");
            return 2;
        }

        using var loggerFactory = Logging.Create(level);
        var log = loggerFactory.CreateLogger("bigfs.meta");
        MetadataServer server;
        try
        {
            server = await MetadataServer.StartAsync(options, loggerFactory, ct);
        }
        catch (Exception e) when (StartupFailure.AsConfigurationError(e, options.Listen) is { } configurationError)
        {
            Console.Error.WriteLine($"bigfs meta: configuration error: {configurationError.Message}");
            return 2;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogCritical("Metadata server failed to start: {Reason}", e.Message);
            return 1;
        }
        await using (server)
        {
            log.LogInformation("Metadata server serving at {Address}, data in {DataDirectory}", server.Address, options.DataDirectory);
            SystemdNotify.Ready($"serving at {server.Address}");
            await WaitForCancellation(ct);
            SystemdNotify.Stopping();
            log.LogInformation("Stopping");
        }
        return 0;
    }

    internal static async Task WaitForCancellation(CancellationToken ct)
    {
        try { await Task.Delay(Timeout.Infinite, ct); }
        catch (OperationCanceledException) { }
    }
}
