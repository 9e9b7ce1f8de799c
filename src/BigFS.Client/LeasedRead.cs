namespace BigFS.Client;

/// <summary>
/// A read served straight from the block cache: the bytes as segments of the cached (verified)
/// blocks, with zeros for holes — nothing copied. The blocks stay valid until disposed.
/// </summary>
public sealed class LeasedRead : IDisposable
{
    /// <summary>Zeros for holes (segments reference it, never write it).</summary>
    internal static readonly byte[] Zeros = new byte[BlockCache.BlockSize];

    private readonly BlockCache _cache;
    private readonly List<BlockCache.Lease> _leases = [];
    private readonly List<ReadOnlyMemory<byte>> _segments = [];
    private int _disposed;

    internal LeasedRead(BlockCache cache) => _cache = cache;

    public IReadOnlyList<ReadOnlyMemory<byte>> Segments => _segments;
    public int Length { get; private set; }

    internal void Add(ReadOnlyMemory<byte> segment)
    {
        _segments.Add(segment);
        Length += segment.Length;
    }

    internal void AddZeros(long count)
    {
        for (; count > 0; count -= Math.Min(count, Zeros.Length))
            Add(Zeros.AsMemory(0, (int)Math.Min(count, Zeros.Length)));
    }

    internal void Hold(BlockCache.Lease lease) => _leases.Add(lease);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        foreach (var lease in _leases)
            _cache.Unlease(lease);
        _leases.Clear();
    }
}
