using BigFS.Core;
using BigFS.Protocol;
using Grpc.Core;

namespace BigFS.Storage;

/// <summary>
/// The whole 64 KiB blocks of a chunk a read request covers, checked against the chunk's size
/// (the same answer over gRPC and over the bulk listener).
/// </summary>
internal readonly record struct ServableRange(StoredChunk Chunk, int FirstBlock, int LastBlock)
{
    /// <summary>Unknown or corrupt chunks throw as <see cref="LocalChunkStore.GetServable"/> does; a range past the end is OutOfRange.</summary>
    public static ServableRange Resolve(LocalChunkStore store, ReadChunkRequest request)
    {
        var chunk = store.GetServable(LocalChunkStore.ParseId(request.ChunkId));
        var size = (ulong)chunk.Size;
        if (request.Offset >= size)
            throw new ChunkRejectedException(StatusCode.OutOfRange, $"offset {request.Offset} is beyond chunk size {size}");
        var end = request.Length == 0 ? size : request.Offset + request.Length;
        if (end > size || end < request.Offset)
            throw new ChunkRejectedException(StatusCode.OutOfRange, $"range [{request.Offset}, +{request.Length}) exceeds chunk size {size}");
        return new ServableRange(chunk, (int)(request.Offset / ChunkChecksum.BlockSize), (int)((end - 1) / ChunkChecksum.BlockSize));
    }

    /// <summary>Where the covered blocks start in the chunk's data.</summary>
    public long DataStart => (long)FirstBlock * ChunkChecksum.BlockSize;

    /// <summary>Where they end (the last block may be short).</summary>
    public long DataEnd => Math.Min((long)(LastBlock + 1) * ChunkChecksum.BlockSize, Chunk.Size);
}
