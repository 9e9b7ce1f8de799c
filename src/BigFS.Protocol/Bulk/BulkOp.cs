namespace BigFS.Protocol.Bulk;

/// <summary>Operations of the bulk data protocol (see <see cref="BulkFrameHeader"/>).</summary>
public enum BulkOp : byte
{
    /// <summary>Meta: ReadChunkRequest. Reply meta: u64 checksum per block; data: the whole blocks.</summary>
    ReadChunk = 1,
    /// <summary>Meta: ChunkHeader; data: the chunk. Reply meta: WriteChunkReply. Same semantics as gRPC WriteChunk.</summary>
    WriteChunk = 2,
    /// <summary>Meta: ChunkHeader; data: the chunk. Empty reply. Same semantics as gRPC StoreReplica.</summary>
    StoreReplica = 3,
}
