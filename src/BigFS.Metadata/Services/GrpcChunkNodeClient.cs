using BigFS.Metadata.Logic;
using BigFS.Protocol;

namespace BigFS.Metadata.Services;

/// <summary>Calls storage nodes' ChunkStore service over the shared per-address channels.</summary>
public sealed class GrpcChunkNodeClient(GrpcChannels channels, TimeSpan callTimeout) : IChunkNodeClient
{
    private ChunkStore.ChunkStoreClient Client(string address) => new(channels.Get(address));

    public async Task DeleteChunkAsync(string address, string chunkId, CancellationToken ct) =>
        await Client(address).DeleteChunkAsync(new DeleteChunkRequest { ChunkId = chunkId },
            deadline: DateTime.UtcNow + callTimeout, cancellationToken: ct);

    public async Task<IReadOnlyList<string>> ReplicateChunkAsync(string address, string chunkId, IReadOnlyList<NodeTarget> targets, CancellationToken ct)
    {
        var request = new ReplicateChunkRequest { ChunkId = chunkId };
        request.Targets.AddRange(targets);
        // Copying a whole chunk to several nodes takes longer than a metadata call.
        var reply = await Client(address).ReplicateChunkAsync(request, deadline: DateTime.UtcNow + 4 * callTimeout, cancellationToken: ct);
        return reply.ConfirmedNodeIds;
    }
}
