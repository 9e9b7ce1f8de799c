using BigFS.Metadata.Model;

namespace BigFS.Metadata.Storage;

/// <summary>
/// Durable storage behind the in-memory metadata: load everything once at start, then apply
/// batches of upserts and deletes atomically and durably. Writes come one at a time, but not
/// always from the same thread (<see cref="GroupCommitWriter"/> lets callers write): a store
/// that needs thread affinity (LiteDB transactions do) sits behind the journal
/// (<see cref="JournaledMetadataStore"/>), which hands it everything on one thread of its own.
/// </summary>
public interface IMetadataStore : IDisposable
{
    MetadataSnapshot Load();

    /// <summary>Applies every change in one transaction; durable (fsync'd) when it returns.</summary>
    void Apply(IReadOnlyList<StoreChange> changes);

    /// <summary>
    /// Applies every change in one transaction without waiting for the disk: durable only once a
    /// later <see cref="MakeDurable"/> returns. Never called concurrently with itself. The list
    /// belongs to the caller again once the call returns (the records in it are never mutated).
    /// </summary>
    void Write(IReadOnlyList<StoreChange> changes) => Apply(changes);

    /// <summary>
    /// Makes every batch whose <see cref="Write"/> returned durable. May run on another thread
    /// while the writer thread writes the next batch (that is the point: the next group is
    /// prepared while this one is flushed).
    /// </summary>
    void MakeDurable() { }
}

public sealed record MetadataSnapshot(
    IReadOnlyList<InodeRecord> Inodes,
    IReadOnlyList<DirentRecord> Dirents,
    IReadOnlyList<LayoutRegionRecord> Layouts,
    IReadOnlyList<ChunkRecord> Chunks,
    IReadOnlyList<NodeRecord> Nodes,
    CountersRecord? Counters,
    IReadOnlyList<ReplyRecord>? Replies = null);
