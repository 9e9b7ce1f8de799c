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

    public NodeRecord Clone()
    {
        var copy = (NodeRecord)MemberwiseClone();
        copy.Labels = [.. Labels];
        return copy;
    }
}
