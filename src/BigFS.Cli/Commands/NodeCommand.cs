using BigFS.Cli.Configuration;
using BigFS.Storage;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>
/// `bigfs node --meta ADDR --data DIR --listen HOST:PORT`: a storage node, until SIGINT/SIGTERM.
/// `bigfs node remove ID`: see <see cref="NodeRemoveCommand"/>.
/// </summary>
public static class NodeCommand
{
    public static Task<int> RunAsync(string[] args, CancellationToken ct) =>
        args is ["remove", .. var rest] ? NodeRemoveCommand.RunAsync(rest, ct) : RunDaemonAsync(args, ct);

    private static Task<int> RunDaemonAsync(string[] args, CancellationToken ct) => new DaemonRunner<StorageNodeOptions, StorageNode>
    {
        Name = "node",
        ConfigFile = "node.json",
        ShortOptions = DaemonSettings.NodeShortOptions,
        Read = DaemonSettings.ReadNode,
        Validate = o => DataDirectoryCheck.EnsureWritable("data_dir", o.DataDirectory),
        Listen = o => o.Listen,
        Start = (o, logs, token) => StorageNode.StartAsync(o, logs, token),
        Describe = (node, log) =>
        {
            log.LogInformation("Storage node {NodeId} serving at {Address}", node.NodeId, node.Address);
            return $"node {node.NodeId} serving at {node.Address}";
        },
        // Drains in-flight chunk uploads (finish or cleanly reject) before exiting.
        Stop = node => node.StopAsync(),
    }.RunAsync(args, ct);
}
