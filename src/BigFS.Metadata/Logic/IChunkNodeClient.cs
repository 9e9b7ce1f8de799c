using BigFS.Protocol;

namespace BigFS.Metadata.Logic;

/// <summary>
/// The calls the metadata server makes to storage nodes. Failures surface as exceptions; a
/// chunk the node does not have is an RpcException with StatusCode.NotFound.
/// </summary>
public interface IChunkNodeClient
{
    Task DeleteChunkAsync(string address, string chunkId, CancellationToken ct);

    /// <returns>The target node ids that now hold a durable copy.</returns>
    Task<IReadOnlyList<string>> ReplicateChunkAsync(string address, string chunkId, IReadOnlyList<NodeTarget> targets, CancellationToken ct);
}
