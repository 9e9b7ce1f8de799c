using BigFS.Protocol;

namespace BigFS.Client;

/// <summary>Picks a primary for a new chunk: random, weighted by free space, avoiding nodes that already failed.</summary>
internal static class NodeSelector
{
    public static WritableNode? Pick(IReadOnlyList<WritableNode> nodes, IReadOnlySet<string> exclude, Random random)
    {
        var candidates = nodes.Where(n => !exclude.Contains(n.NodeId) && n.Address.Length > 0).ToList();
        if (candidates.Count == 0)
            candidates = nodes.Where(n => n.Address.Length > 0).ToList();
        if (candidates.Count == 0)
            return null;
        // Weights in MiB keep the sum far from overflow; every node keeps a chance.
        var weights = candidates.Select(n => (double)Math.Max(1UL, n.FreeBytes >> 20)).ToArray();
        var pick = random.NextDouble() * weights.Sum();
        for (var i = 0; i < candidates.Count; i++)
        {
            pick -= weights[i];
            if (pick < 0)
                return candidates[i];
        }
        return candidates[^1];
    }
}
