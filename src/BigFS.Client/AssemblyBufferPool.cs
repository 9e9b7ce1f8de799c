using System.Collections.Concurrent;

namespace BigFS.Client;

/// <summary>
/// Chunk-size buffers for assembling merged chunks, kept apart from ArrayPool.Shared: the
/// shared pool keeps a returned array per thread and several per core, which for chunk-size
/// arrays rented on many thread-pool threads meant well over 100 MiB of idle memory. This
/// pool keeps at most <c>retain</c> idle buffers.
/// </summary>
internal sealed class AssemblyBufferPool(int bufferSize, int retain)
{
    private readonly ConcurrentBag<byte[]> _idle = [];
    private int _idleCount;

    public byte[] Rent(int length)
    {
        if (length > bufferSize)
            return new byte[length];
        if (_idle.TryTake(out var buffer))
        {
            Interlocked.Decrement(ref _idleCount);
            return buffer;
        }
        return new byte[bufferSize];
    }

    public void Return(byte[] buffer)
    {
        if (buffer.Length != bufferSize)
            return;
        if (Interlocked.Increment(ref _idleCount) <= retain)
            _idle.Add(buffer);
        else
            Interlocked.Decrement(ref _idleCount);
    }
}
