using System.Buffers;
using System.Runtime.InteropServices;

namespace BigFS.Storage;

/// <summary>
/// A chunk file's image in native memory aligned for O_DIRECT: laid out as the file is (header
/// area, then data), so the whole file goes to the disk in one write from it, and the data is handed
/// to the replica pushes from it without reading the file back. Reference-counted: the writer
/// holds one reference, each push of the shared image one more; the last release returns the
/// memory to a small pool, since a fresh allocation is paid again in page faults (a `cp -a` of
/// files of every size missed an exact-size pool most of the time: it takes the smallest
/// pooled buffer that is large enough).
/// </summary>
internal sealed unsafe class AlignedChunkBuffer : MemoryManager<byte>
{
    public const int Alignment = 4096;

    /// <summary>Capacities are rounded up to this.</summary>
    private const int Granule = 64 * 1024;

    /// <summary>Idle memory kept for reuse, per process (every node of `bigfs up` shares it).</summary>
    private const long MaxPooledBytes = 64L * 1024 * 1024;

    private static readonly List<AlignedChunkBuffer> Pool = [];
    private static long _pooledBytes;   // guarded by Pool

    private readonly byte* _memory;
    private int _references;

    private AlignedChunkBuffer(int capacity)
    {
        Capacity = capacity;
        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)capacity, Alignment);
    }

    public int Capacity { get; }

    /// <summary>A buffer of at least <paramref name="length"/> bytes, holding one reference.</summary>
    public static AlignedChunkBuffer Rent(long length)
    {
        var capacity = checked((int)((length + Granule - 1) / Granule * Granule));
        var buffer = TakePooled(capacity) ?? new AlignedChunkBuffer(capacity);
        buffer._references = 1;
        return buffer;
    }

    /// <summary>The smallest pooled buffer of at least <paramref name="capacity"/> bytes, if any.</summary>
    private static AlignedChunkBuffer? TakePooled(int capacity)
    {
        lock (Pool)
        {
            var best = -1;
            for (var i = 0; i < Pool.Count; i++)
            {
                if (Pool[i].Capacity >= capacity && (best < 0 || Pool[i].Capacity < Pool[best].Capacity))
                    best = i;
            }
            if (best < 0)
                return null;
            var buffer = Pool[best];
            Pool.RemoveAt(best);
            _pooledBytes -= buffer.Capacity;
            return buffer;
        }
    }

    public Span<byte> Span(long offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset + length, Capacity);
        return new Span<byte>(_memory + offset, length);
    }

    public void Retain()
    {
        if (Interlocked.Increment(ref _references) <= 1)
            throw new ObjectDisposedException(nameof(AlignedChunkBuffer), "retained after its last release");
    }

    public void Release()
    {
        var left = Interlocked.Decrement(ref _references);
        if (left > 0)
            return;
        if (left < 0)
            throw new InvalidOperationException("aligned chunk buffer released more often than retained");
        lock (Pool)
        {
            if (_pooledBytes + Capacity <= MaxPooledBytes)
            {
                Pool.Add(this);
                _pooledBytes += Capacity;
                return;
            }
        }
        NativeMemory.AlignedFree(_memory);
    }

    public override Span<byte> GetSpan() => new(_memory, Capacity);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_memory + elementIndex);

    public override void Unpin()
    {
    }

    // Lifetime is the reference count's, not IDisposable's.
    protected override void Dispose(bool disposing)
    {
    }
}
