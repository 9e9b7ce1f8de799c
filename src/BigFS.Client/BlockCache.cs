namespace BigFS.Client;

/// <summary>A bounded LRU of verified 64 KiB chunk blocks. Chunks are immutable, so entries never go stale.</summary>
internal sealed class BlockCache(long capacityBytes)
{
    private readonly object _lock = new();
    private readonly Dictionary<(string Chunk, int Block), LinkedListNode<Entry>> _map = [];
    private readonly LinkedList<Entry> _lru = new();
    private long _bytes;

    private sealed record Entry((string Chunk, int Block) Key, ReadOnlyMemory<byte> Data);

    public long Bytes { get { lock (_lock) return _bytes; } }

    public bool TryGet(string chunk, int block, out ReadOnlyMemory<byte> data)
    {
        lock (_lock)
        {
            if (_map.TryGetValue((chunk, block), out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                data = node.Value.Data;
                return true;
            }
        }
        data = default;
        return false;
    }

    public void Add(string chunk, int block, ReadOnlyMemory<byte> data)
    {
        if (capacityBytes <= 0 || data.Length > capacityBytes)
            return;
        lock (_lock)
        {
            if (_map.ContainsKey((chunk, block)))
                return;
            var node = _lru.AddFirst(new Entry((chunk, block), data));
            _map[(chunk, block)] = node;
            _bytes += data.Length;
            while (_bytes > capacityBytes && _lru.Last is { } oldest)
            {
                _lru.RemoveLast();
                _map.Remove(oldest.Value.Key);
                _bytes -= oldest.Value.Data.Length;
            }
        }
    }
}
