namespace BigFS.Metadata.Storage;

/// <summary>Where the in-memory metadata hands its changes, in the order they were made.</summary>
public interface IChangeLog
{
    /// <summary>Completes once the changes are stored as <paramref name="durability"/> asks.</summary>
    Task AppendAsync(IReadOnlyList<StoreChange> changes, Durability durability);

    /// <summary>Completes once every change acknowledged before the call is durable.</summary>
    Task SyncAsync();
}
