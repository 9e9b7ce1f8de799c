using BigFS.Cli.Configuration;
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
        LocalClusterSettings up;
        try
        {
            // The configuration stack of the daemons (--config FILE, BIGFS_ variables, the
            // command line), with no default file: /etc/bigfs configures real daemons, not this.
            up = DaemonSettings.ReadUp(DaemonConfiguration.Load(args, defaultFile: "", DaemonSettings.UpShortOptions));
        }
        catch (ConfigurationError e)
        {
            Console.Error.WriteLine($"bigfs up: configuration error: {e.Message}");
            return 2;
        }

        using var loggerFactory = Logging.Create(up.LogLevel);
        var log = loggerFactory.CreateLogger("bigfs.up");
        Directory.CreateDirectory(up.DataDirectory);

        await using var meta = await MetadataServer.StartAsync(new MetadataServerOptions
        {
            DataDirectory = Path.Combine(up.DataDirectory, "meta"),
            Listen = $"127.0.0.1:{up.Port}",
            FastListen = up.MetaFastListen,
            FastListenUnix = up.MetaFastUnix,
            ChunkSize = up.ChunkSize,
            DefaultGoal = up.Goal,
            MinCopiesBeforeAck = up.MinCopiesBeforeAck,
        }, loggerFactory, ct);

        var nodes = new List<StorageNode>();
        BigFsMount? mount = null;
        try
        {
            for (var i = 1; i <= up.Nodes; i++)
            {
                nodes.Add(await StorageNode.StartAsync(new StorageNodeOptions
                {
                    DataDirectory = Path.Combine(up.DataDirectory, $"node{i}"),
                    Listen = $"127.0.0.1:{up.Port + 100 + i}",
                    MetadataAddress = meta.Address,
                    MinCopiesBeforeAck = up.MinCopiesBeforeAck,
                }, loggerFactory, ct));
            }

            log.LogInformation("Local cluster up: metadata server {Address}, {Nodes} storage nodes, goal {Goal} copies, {MinCopies} durable before a write is acknowledged, data in {Data}",
                meta.Address, nodes.Count, up.Goal, up.MinCopiesBeforeAck, up.DataDirectory);
            if (up.MountPoint is { } mountPoint)
            {
                Directory.CreateDirectory(mountPoint);
                mount = await BigFsMount.StartAsync(new BigFsMountOptions { MetadataAddress = meta.Address, MountPoint = mountPoint }, loggerFactory, ct);
                Console.Out.WriteLine($"BigFS mounted at {mountPoint} (metadata server {meta.Address}, {nodes.Count} storage nodes, data in {up.DataDirectory}).");
            }
            else
            {
                Console.Out.WriteLine($"BigFS cluster ready: metadata server {meta.Address}, {nodes.Count} storage nodes, data in {up.DataDirectory}.");
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
