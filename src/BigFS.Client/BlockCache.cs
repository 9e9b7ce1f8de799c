using System.Collections.Concurrent;

namespace BigFS.Client;

/// <summary>
/// A bounded LRU of verified 64 KiB chunk blocks. Chunks are immutable, so entries never go
/// stale. Blocks received into pooled arrays (<see cref="RentBlock"/>) go back to the pool when
/// evicted, so steady-state reads allocate nothing (fresh arrays cost page faults, zeroing and
/// copies on GC promotion). Because an evicted array is reused, cached data is only read under
/// the cache's lock (<see cref="TryCopy"/>), or leased (<see cref="TryLease"/>): a leased block
/// evicted meanwhile goes back to the pool only when its last lease ends.
/// </summary>
internal sealed class BlockCache(long capacityBytes)
{
    public const int BlockSize = 64 * 1024;
    private const int MaxPooledBlocks = 1024;

    private readonly object _lock = new();
    private readonly Dictionary<(string Chunk, int Block), LinkedListNode<Entry>> _map = [];
    private readonly LinkedList<Entry> _lru = new();
    private readonly ConcurrentQueue<byte[]> _pool = new();
    private long _bytes;

    internal sealed record Entry((string Chunk, int Block) Key, ReadOnlyMemory<byte> Data, byte[]? Pooled)
    {
        public int Leases;
        public bool Evicted;
    }

    /// <summary>A cached block's bytes, valid (never recycled) until <see cref="Unlease"/>.</summary>
    public readonly struct Lease
    {
        private readonly Entry _entry;
        internal Lease(Entry entry) => _entry = entry;
        public ReadOnlyMemory<byte> Data => _entry.Data;
        internal Entry Entry => _entry;
    }

    public long Bytes { get { lock (_lock) return _bytes; } }

    public bool Contains(string chunk, int block)
    {
        lock (_lock)
            return _map.ContainsKey((chunk, block));
    }

    /// <summary>Hands a cached block to <paramref name="use"/> under the lock (the array may be recycled after).</summary>
    public bool TryCopy<TState>(string chunk, int block, TState state, Action<ReadOnlyMemory<byte>, TState> use)
    {
        lock (_lock)
        {
            if (!_map.TryGetValue((chunk, block), out var node))
                return false;
            _lru.Remove(node);
            _lru.AddFirst(node);
            use(node.Value.Data, state);
            return true;
        }
    }

    /// <summary>Leases a cached block (marking it recently used); every lease must be given back through <see cref="Unlease"/>.</summary>
    public bool TryLease(string chunk, int block, out Lease lease)
    {
        lock (_lock)
        {
            if (!_map.TryGetValue((chunk, block), out var node))
            {
                lease = default;
                return false;
            }
            _lru.Remove(node);
            _lru.AddFirst(node);
            node.Value.Leases++;
            lease = new Lease(node.Value);
            return true;
        }
    }

    public void Unlease(Lease lease)
    {
        var entry = lease.Entry;
        lock (_lock)
        {
            if (--entry.Leases > 0 || !entry.Evicted)
                return;
        }
        if (entry.Pooled is not null)
            ReturnBlock(entry.Pooled);
    }

    /// <summary>A 64 KiB array for receiving a block; give it back through <see cref="Add"/> or <see cref="ReturnBlock"/>.</summary>
    public byte[] RentBlock() => _pool.TryDequeue(out var block) ? block : GC.AllocateUninitializedArray<byte>(BlockSize);

    public void ReturnBlock(byte[] block)
    {
        if (block.Length == BlockSize && _pool.Count < MaxPooledBlocks)
            _pool.Enqueue(block);
    }

    /// <summary>
    /// Caches a block. <paramref name="pooled"/> is the rented array behind <paramref name="data"/>
    /// (null when the memory is not the cache's to recycle); the caller must not use the data after.
    /// </summary>
    public void Add(string chunk, int block, ReadOnlyMemory<byte> data, byte[]? pooled = null)
    {
        if (capacityBytes <= 0 || data.Length > capacityBytes)
        {
            if (pooled is not null)
                ReturnBlock(pooled);
            return;
        }
        lock (_lock)
        {
            if (_map.ContainsKey((chunk, block)))
            {
                if (pooled is not null)
                    ReturnBlock(pooled);
                return;
            }
            var node = _lru.AddFirst(new Entry((chunk, block), data, pooled));
            _map[(chunk, block)] = node;
            _bytes += data.Length;
            while (_bytes > capacityBytes && _lru.Last is { } oldest)
            {
                _lru.RemoveLast();
                _map.Remove(oldest.Value.Key);
                _bytes -= oldest.Value.Data.Length;
                if (oldest.Value.Leases > 0)
                    oldest.Value.Evicted = true; // recycled when the last lease ends
                else if (oldest.Value.Pooled is not null)
                    ReturnBlock(oldest.Value.Pooled);
            }
        }
    }
}
