namespace BigFS.Metadata.Model;

public enum NodeLiveness { Active = 1, Suspect = 2, Dead = 3 }

/// <summary>A registered storage node. Heartbeat figures live in memory; the record is persisted on registration.</summary>
public sealed class NodeRecord
{
    public string Id { get; set; } = "";
    public string Address { get; set; } = "";
    /// <summary>host:port of the node's bulk data listener; empty = gRPC only (LiteDB stores "" as null: normalized back).</summary>
    public string DataAddress { get => _dataAddress; set => _dataAddress = value ?? ""; }
    private string _dataAddress = "";
    public long CapacityBytes { get; set; }
    public long UsedBytes { get; set; }
    public long ChunkCount { get; set; }
    public long LastHeartbeatMs { get; set; }
    public List<string> Labels { get; set; } = [];

    public long FreeBytes() => Math.Max(0, CapacityBytes - UsedBytes);

    /// <summary>Below this much free space a node takes no new copies (one checksum block: even a small chunk would not fit).</summary>
    public const long MinFreeBytes = 64 * 1024;

    /// <summary>Known to have no room for new chunks (a node reporting no capacity is not judged).</summary>
    public bool IsFull() => CapacityBytes > 0 && FreeBytes() < MinFreeBytes;

    public NodeRecord Clone()
    {
        var copy = (NodeRecord)MemberwiseClone();
        copy.Labels = [.. Labels];
        return copy;
    }
}
