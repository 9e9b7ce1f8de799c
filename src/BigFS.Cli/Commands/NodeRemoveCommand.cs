using BigFS.Protocol;
using Grpc.Core;

namespace BigFS.Cli.Commands;

/// <summary>
/// `bigfs node remove ID [--force]`: forget a storage node that is gone for good. ID may be any
/// unique prefix of the node id (`bigfs status` shows the first 12 characters).
/// </summary>
public static class NodeRemoveCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        var cl = new CommandLine(args, new HashSet<string> { "meta" }, new HashSet<string> { "force" });
        if (cl.Positional.Count != 1)
            throw new CliUsageException("usage: bigfs node remove NODE_ID [--force] [--meta ADDR]");
        using var channels = new GrpcChannels();
        var cluster = new Cluster.ClusterClient(channels.Get(cl.MetaAddress));
        try
        {
            var status = await cluster.GetClusterStatusAsync(new ClusterStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
            var prefix = cl.Positional[0];
            var matches = status.Nodes.Where(n => n.NodeId.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            if (matches.Count != 1)
            {
                Console.Error.WriteLine(matches.Count == 0
                    ? $"bigfs node remove: no storage node '{prefix}'"
                    : $"bigfs node remove: '{prefix}' matches {matches.Count} nodes: {string.Join(", ", matches.Select(n => n.NodeId))}");
                return 1;
            }
            var node = matches[0];
            var reply = await cluster.RemoveNodeAsync(new RemoveNodeRequest { NodeId = node.NodeId, Force = cl.Has("force") },
                deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);
            if (reply.Errno != 0)
            {
                Console.Error.WriteLine($"bigfs node remove: {reply.Message}");
                return 1;
            }
            Console.WriteLine($"removed node {node.NodeId} ({node.Address}): {reply.CopiesDropped} chunk copies dropped" +
                              (reply.ChunksLost > 0 ? $", {reply.ChunksLost} live chunks lost" : ""));
            return 0;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"bigfs node remove: cannot reach the metadata server at {cl.MetaAddress}: {e.Status.Detail}");
            return 1;
        }
    }
}
