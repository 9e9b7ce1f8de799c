namespace BigFS.Metadata.Storage;

/// <summary>Where the in-memory metadata hands its changes, in the order they were made.</summary>
public interface IChangeLog
{
    /// <summary>
    /// Queues changes (call in the order they were made); completes once they are stored as
    /// <paramref name="durability"/> asks. With <paramref name="callerWrites"/>, the caller
    /// promises to call <see cref="WriteQueued"/> next, outside its locks.
    /// </summary>
    Task AppendAsync(IReadOnlyList<StoreChange> changes, Durability durability, bool callerWrites = false);

    /// <summary>Writes what is queued on the calling thread if no other thread is writing already.</summary>
    void WriteQueued();

    /// <summary>Completes once every change acknowledged before the call is durable.</summary>
    Task SyncAsync();
}
