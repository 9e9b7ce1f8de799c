using BigFS.Metadata.Model;

namespace BigFS.Metadata.Logic;

/// <summary>
/// Picks nodes for new copies: distinct, weighted by free space (weighted random without
/// replacement), preferring nodes whose labels (e.g. racks) are not used yet. The caller passes
/// only eligible candidates (Active, not already holding a copy).
/// </summary>
public static class ReplicaPlacement
{
    public static List<NodeRecord> Choose(IEnumerable<NodeRecord> candidates, int count, IEnumerable<string> usedLabels, Random random)
    {
        var pool = candidates.DistinctBy(n => n.Id).ToList();
        var labels = new HashSet<string>(usedLabels, StringComparer.Ordinal);
        var chosen = new List<NodeRecord>(Math.Max(0, count));
        while (chosen.Count < count && pool.Count > 0)
        {
            var spread = pool.Where(n => n.Labels.Count > 0 && !n.Labels.Any(labels.Contains)).ToList();
            var from = labels.Count > 0 && spread.Count > 0 ? spread : pool;
            var pick = WeightedPick(from, random);
            chosen.Add(pick);
            pool.Remove(pick);
            labels.UnionWith(pick.Labels);
        }
        return chosen;
    }

    private static NodeRecord WeightedPick(List<NodeRecord> nodes, Random random)
    {
        // +1 keeps nodes that report no capacity eligible, but a full node is almost never chosen.
        double total = 0;
        foreach (var n in nodes) total += n.FreeBytes() + 1.0;
        var x = random.NextDouble() * total;
        foreach (var n in nodes)
        {
            x -= n.FreeBytes() + 1.0;
            if (x < 0) return n;
        }
        return nodes[^1];
    }
}
