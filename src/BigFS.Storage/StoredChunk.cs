using BigFS.Core;

namespace BigFS.Storage;

/// <summary>A chunk file present in the data directory. Immutable, except that it can be found corrupt.</summary>
public sealed class StoredChunk(ChunkId id, ChunkFileHeader header, string path)
{
    private volatile bool _corrupt;

    public ChunkId Id { get; } = id;
    public ChunkFileHeader Header { get; } = header;
    public string Path { get; } = path;
    public long Size => Header.Size;

    /// <summary>Set when a block failed verification: the copy is no longer served.</summary>
    public bool IsCorrupt => _corrupt;

    public void MarkCorrupt() => _corrupt = true;
}
