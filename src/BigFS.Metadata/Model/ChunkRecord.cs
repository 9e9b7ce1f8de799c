namespace BigFS.Metadata.Model;

public enum ChunkState { Uncommitted = 0, Live = 1, Garbage = 2 }

public enum CopyState { Pending = 1, Available = 2, Deleting = 3 }

/// <summary>An immutable chunk stored on storage nodes, and where its copies are.</summary>
public sealed class ChunkRecord
{
    public string Id { get; set; } = "";
    public long Size { get; set; }
    public long Checksum { get; set; }           // ulong XxHash3, stored bit-for-bit as long
    public long[] BlockChecksums { get; set; } = [];
    public long OwnerIno { get; set; }
    public long CreatedMs { get; set; }
    public ChunkState State { get; set; }
    public int Goal { get; set; }
    /// <summary>How many times an unconfirmed replica was replaced (bounded by MaxReplicaConfirmationRetries).</summary>
    public int ReplacementCount { get; set; }
    /// <summary>When replacements ran out; re-replication may try again after a long pause.</summary>
    public long ReplacementsExhaustedMs { get; set; }
    public List<CopyRecord> Copies { get; set; } = [];

    public CopyRecord? CopyOn(string nodeId) => Copies.Find(c => c.NodeId == nodeId);

    public ChunkRecord Clone()
    {
        var copy = (ChunkRecord)MemberwiseClone();
        copy.Copies = Copies.ConvertAll(c => c.Clone());
        return copy;
    }
}

public sealed class CopyRecord
{
    public string NodeId { get; set; } = "";
    public CopyState Status { get; set; }
    public bool Primary { get; set; }
    /// <summary>When a PENDING copy was designated (for the confirmation timeout).</summary>
    public long DesignatedMs { get; set; }

    public CopyRecord Clone() => (CopyRecord)MemberwiseClone();
}
