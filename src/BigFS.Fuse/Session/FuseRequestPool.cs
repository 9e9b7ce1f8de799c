using System.Collections.Concurrent;

namespace BigFS.Fuse.Session;

/// <summary>Reusable requests (with their max_write-sized pinned buffers). Keeps at most
/// <c>retain</c> idle ones so memory stays bounded after a burst.</summary>
internal sealed class FuseRequestPool(FuseChannel channel, int bufferSize, int retain)
{
    private readonly ConcurrentQueue<FuseRequest> _idle = new();
    private int _idleCount;

    public int BufferSize => bufferSize;

    public FuseRequest Rent()
    {
        if (_idle.TryDequeue(out var request))
        {
            Interlocked.Decrement(ref _idleCount);
            return request;
        }
        return new FuseRequest(channel, bufferSize);
    }

    public void Return(FuseRequest request)
    {
        request.Reset();
        if (Interlocked.Increment(ref _idleCount) <= retain) _idle.Enqueue(request);
        else Interlocked.Decrement(ref _idleCount);
    }
}
