using BigFS.Cli.Configuration;
using BigFS.Storage;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>`bigfs node --meta ADDR --data DIR --listen HOST:PORT`: a storage node, until SIGINT/SIGTERM.</summary>
public static class NodeCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        StorageNodeOptions options;
        LogLevel level;
        try
        {
            var settings = DaemonConfiguration.Load(args, Path.Combine(DaemonSettings.ConfigDirectory, "node.json"), DaemonSettings.NodeShortOptions);
            level = DaemonSettings.ReadLogLevel(settings);
            options = DaemonSettings.ReadNode(settings);
            DataDirectoryCheck.EnsureWritable("data_dir", options.DataDirectory);
        }
        catch (ConfigurationError e)
        {
            Console.Error.WriteLine($"bigfs node: configuration error: {e.Message}");
            return 2;
        }

        using var loggerFactory = Logging.Create(level);
        var log = loggerFactory.CreateLogger("bigfs.node");
        StorageNode node;
        try
        {
            node = await StorageNode.StartAsync(options, loggerFactory, ct);
        }
        catch (Exception e) when (StartupFailure.AsConfigurationError(e, options.Listen) is { } configurationError)
        {
            Console.Error.WriteLine($"bigfs node: configuration error: {configurationError.Message}");
            return 2;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogCritical("Storage node failed to start: {Reason}", e.Message);
            return 1;
        }
        await using (node)
        {
            log.LogInformation("Storage node {NodeId} serving at {Address}, data in {DataDirectory}", node.NodeId, node.Address, options.DataDirectory);
            SystemdNotify.Ready($"node {node.NodeId} serving at {node.Address}");
            await MetaCommand.WaitForCancellation(ct);
            SystemdNotify.Stopping();
            log.LogInformation("Stopping: draining in-flight chunk uploads");
            await node.StopAsync();
        }
        return 0;
    }
}
