using BigFS.Metadata;
using BigFS.Mount;
using BigFS.Storage;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>
/// `bigfs up --data DIR`: a whole local cluster in one process — a metadata server and three
/// storage nodes on loopback, their data under DIR — and, with --mount DIR, a FUSE mount of
/// it; in the foreground until Ctrl-C, which unmounts and stops everything cleanly.
/// </summary>
public static class UpCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        var cl = new CommandLine(args, new HashSet<string> { "data", "port", "nodes", "log-level", "mount", "meta-fast-listen", "meta-fast-unix" });
        var data = Path.GetFullPath(cl.Get("data") ?? ".bigfs");
        var port = cl.GetInt("port", 9000);
        var nodeCount = cl.GetInt("nodes", 3);
        if (nodeCount is < 1 or > 16)
            throw new CliUsageException("--nodes must be between 1 and 16");
        var level = Enum.TryParse<LogLevel>(cl.Get("log-level") ?? "Information", true, out var l) ? l : LogLevel.Information;

        using var loggerFactory = Logging.Create(level);
        var log = loggerFactory.CreateLogger("bigfs.up");
        Directory.CreateDirectory(data);

        await using var meta = await MetadataServer.StartAsync(new MetadataServerOptions
        {
            DataDirectory = Path.Combine(data, "meta"),
            Listen = $"127.0.0.1:{port}",
            FastListen = cl.Get("meta-fast-listen"),
            FastListenUnix = cl.Get("meta-fast-unix")?.ToLowerInvariant() is not ("false" or "no" or "off" or "0"),
            DefaultGoal = Math.Min(3, nodeCount),
            MinCopiesBeforeAck = Math.Min(2, nodeCount),
        }, loggerFactory, ct);

        var nodes = new List<StorageNode>();
        BigFsMount? mount = null;
        try
        {
            for (var i = 1; i <= nodeCount; i++)
            {
                nodes.Add(await StorageNode.StartAsync(new StorageNodeOptions
                {
                    DataDirectory = Path.Combine(data, $"node{i}"),
                    Listen = $"127.0.0.1:{port + 100 + i}",
                    MetadataAddress = meta.Address,
                    MinCopiesBeforeAck = Math.Min(2, nodeCount),
                }, loggerFactory, ct));
            }

            log.LogInformation("Local cluster up: metadata server {Address}, {Nodes} storage nodes, data in {Data}", meta.Address, nodes.Count, data);
            if (cl.Get("mount") is { } mountPoint)
            {
                mountPoint = Path.GetFullPath(mountPoint);
                Directory.CreateDirectory(mountPoint);
                mount = await BigFsMount.StartAsync(new BigFsMountOptions { MetadataAddress = meta.Address, MountPoint = mountPoint }, loggerFactory, ct);
                Console.Out.WriteLine($"BigFS mounted at {mountPoint} (metadata server {meta.Address}, {nodes.Count} storage nodes, data in {data}).");
            }
            else
            {
                Console.Out.WriteLine($"BigFS cluster ready: metadata server {meta.Address}, {nodes.Count} storage nodes, data in {data}.");
            }
            Console.Out.WriteLine($"Try `bigfs status --meta {meta.Address}`. Ctrl-C stops it.");
            SystemdNotify.Ready($"local cluster at {meta.Address}");
            if (mount is not null)
                await Task.WhenAny(mount.Completion, Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default));
            else
                await MetaCommand.WaitForCancellation(ct);
            log.LogInformation("Stopping the local cluster");
        }
        finally
        {
            if (mount is not null)
                await mount.StopAsync();
            foreach (var node in nodes)
                await node.DisposeAsync();
        }
        return 0;
    }
}
