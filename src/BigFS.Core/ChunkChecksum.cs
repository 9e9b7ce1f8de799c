using System.IO.Hashing;

namespace BigFS.Core;

/// <summary>
/// Chunk checksums: XxHash3 (64-bit) of the whole chunk, and of each 64 KiB block so a reader
/// can verify any range without fetching the whole chunk.
/// </summary>
public static class ChunkChecksum
{
    public const int BlockSize = 64 * 1024;

    public static ulong Compute(ReadOnlySpan<byte> data) => XxHash3.HashToUInt64(data);

    public static int BlockCount(long chunkSize) => (int)((chunkSize + BlockSize - 1) / BlockSize);

    /// <summary>Fills <paramref name="destination"/> with the checksum of each block of <paramref name="data"/>.</summary>
    public static void ComputeBlocks(ReadOnlySpan<byte> data, Span<ulong> destination)
    {
        var blocks = BlockCount(data.Length);
        if (destination.Length < blocks)
            throw new ArgumentException("destination too small", nameof(destination));
        for (var i = 0; i < blocks; i++)
        {
            var start = i * BlockSize;
            destination[i] = Compute(data.Slice(start, Math.Min(BlockSize, data.Length - start)));
        }
    }

    public static ulong[] ComputeBlocks(ReadOnlySpan<byte> data)
    {
        var result = new ulong[BlockCount(data.Length)];
        ComputeBlocks(data, result);
        return result;
    }
}
