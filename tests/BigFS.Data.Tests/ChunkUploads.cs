using BigFS.Core;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;

namespace BigFS.Data.Tests;

/// <summary>Raw ChunkStore calls the way a writer makes them (test helper).</summary>
public static class ChunkUploads
{
    public static async Task<WriteChunkReply> WriteAsync(ChunkStore.ChunkStoreClient client, string chunkId, byte[] data,
        ulong? checksum = null, ulong? declaredSize = null, uint goal = 3, ulong owner = 42)
    {
        using var call = client.WriteChunk();
        await SendAsync(call.RequestStream, chunkId, data, checksum, declaredSize, goal, owner);
        return await call.ResponseAsync;
    }

    public static async Task SendAsync(IClientStreamWriter<ChunkUpload> stream, string chunkId, byte[] data,
        ulong? checksum, ulong? declaredSize, uint goal, ulong owner)
    {
        await stream.WriteAsync(new ChunkUpload
        {
            Header = new ChunkHeader
            {
                ChunkId = chunkId, Size = declaredSize ?? (ulong)data.Length, Checksum = checksum ?? ChunkChecksum.Compute(data),
                OwnerIno = owner, Goal = goal,
            },
        });
        try
        {
            for (var offset = 0; offset < data.Length; offset += ChunkChecksum.BlockSize)
                await stream.WriteAsync(new ChunkUpload { Data = UnsafeByteOperations.UnsafeWrap(data.AsMemory(offset, Math.Min(ChunkChecksum.BlockSize, data.Length - offset))) });
            await stream.CompleteAsync();
        }
        catch (RpcException) { } // the server may reject early; the response carries the status
        catch (InvalidOperationException) { }
    }

    public static async Task<List<ChunkBlock>> ReadAsync(ChunkStore.ChunkStoreClient client, string chunkId, ulong offset = 0, ulong length = 0)
    {
        using var call = client.ReadChunk(new ReadChunkRequest { ChunkId = chunkId, Offset = offset, Length = length });
        var blocks = new List<ChunkBlock>();
        await foreach (var block in call.ResponseStream.ReadAllAsync())
            blocks.Add(block);
        return blocks;
    }

    public static byte[] Random(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }
}
