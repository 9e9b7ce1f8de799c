using BigFS.Protocol;
using Grpc.Core;

namespace BigFS.Cli.Commands;

/// <summary>`bigfs status`: nodes with state/capacity/used, chunk copies by state, chunks below goal.</summary>
public static class StatusCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        var cl = new CommandLine(args, new HashSet<string> { "meta" });
        using var channels = new GrpcChannels();
        var cluster = new Cluster.ClusterClient(channels.Get(cl.MetaAddress));
        ClusterStatusReply status;
        try
        {
            status = await cluster.GetClusterStatusAsync(new ClusterStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"bigfs status: cannot reach the metadata server at {cl.MetaAddress}: {e.Status.Detail}");
            return 1;
        }

        var table = new TextTable("NODE", "ADDRESS", "STATE", "CAPACITY", "USED", "USE%", "CHUNKS", "LAST HEARTBEAT");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var n in status.Nodes.OrderBy(n => n.Address, StringComparer.Ordinal))
        {
            table.Add(
                n.NodeId.Length > 12 ? n.NodeId[..12] : n.NodeId,
                n.Address,
                n.State.ToString().ToLowerInvariant(),
                Units.Bytes(n.CapacityBytes),
                Units.Bytes(n.UsedBytes),
                n.CapacityBytes == 0 ? "-" : $"{100.0 * n.UsedBytes / n.CapacityBytes:0.0}",
                n.ChunkCount.ToString(),
                n.LastHeartbeatUnixMs == 0 ? "never" : $"{(now - n.LastHeartbeatUnixMs) / 1000.0:0.0}s ago");
        }
        Console.WriteLine(table.Render());
        Console.WriteLine();
        Console.WriteLine($"inodes {status.Inodes}   chunks {status.ChunksTotal} (live {status.LiveChunks}, uncommitted {status.ChunksUncommitted}, garbage {status.ChunksGarbage})");
        Console.WriteLine($"copies: available {status.CopiesAvailable}, pending {status.CopiesPending}, deleting {status.CopiesDeleting}");
        Console.WriteLine($"chunks below goal: {status.ChunksBelowGoal}");
        if (status.ChunksUnavailable > 0)
            Console.WriteLine($"chunks with no available copy on a live node: {status.ChunksUnavailable} (their data cannot be read)");
        return 0;
    }
}
