using System.Collections.Concurrent;
using System.Numerics;

namespace BigFS.Client;

/// <summary>
/// Recycles write-buffer pages (powers of two from 4 KiB to 64 KiB). Scattered small writes
/// rent, grow and release pages at a high rate, and they live long enough to reach gen 2:
/// left to the GC (ArrayPool.Shared keeps only a few per size), the dead ones piled up to
/// hundreds of MiB of RSS between full collections. Each size keeps at most
/// <c>retainBytesPerSize</c> idle.
/// </summary>
internal sealed class DirtyPagePool(long retainBytesPerSize)
{
    private const int MinShift = 12, MaxShift = 16; // 4 KiB .. 64 KiB
    private readonly ConcurrentBag<byte[]>[] _idle = Enumerable.Range(0, MaxShift - MinShift + 1).Select(_ => new ConcurrentBag<byte[]>()).ToArray();
    private readonly long[] _idleBytes = new long[MaxShift - MinShift + 1];

    public byte[] Rent(int size)
    {
        if (Bucket(size) is not { } b)
            return new byte[size];
        if (_idle[b].TryTake(out var page))
        {
            Interlocked.Add(ref _idleBytes[b], -page.Length);
            return page;
        }
        return new byte[size];
    }

    public void Return(byte[] page)
    {
        if (Bucket(page.Length) is not { } b)
            return;
        if (Interlocked.Add(ref _idleBytes[b], page.Length) <= retainBytesPerSize)
            _idle[b].Add(page);
        else
            Interlocked.Add(ref _idleBytes[b], -page.Length);
    }

    private static int? Bucket(int size)
    {
        if (size < 1 << MinShift || size > 1 << MaxShift || !BitOperations.IsPow2(size))
            return null;
        return BitOperations.Log2((uint)size) - MinShift;
    }
}
