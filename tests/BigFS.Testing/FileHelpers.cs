using Xunit;
using System.Security.Cryptography;
using BigFS.Client;
using BigFS.Protocol;

namespace BigFS.Testing;

public static class FileHelpers
{
    public static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static async Task<InodeAttr> CreateFileAsync(BigFsClient client, string name, ulong parent = 1)
    {
        var reply = await client.Namespace.CreateNodeAsync(new CreateNodeRequest
        {
            Parent = parent, Name = TestCluster.Name(name), Type = InodeType.File, Mode = 0x1a4, Exclusive = true,
        });
        Assert.Equal(0, reply.Errno);
        return reply.Attr;
    }

    public static async Task WriteAsync(BigFsClient client, ulong ino, long offset, byte[] data, int pieceSize = 1 << 20, bool flush = true)
    {
        await using var file = client.OpenFile(ino, 0);
        for (var at = 0; at < data.Length; at += pieceSize)
            await file.WriteAsync(offset + at, data.AsMemory(at, Math.Min(pieceSize, data.Length - at)));
        if (flush)
            await file.FlushAsync();
    }

    public static async Task<byte[]> ReadAllAsync(BigFsClient client, ulong ino)
    {
        var attr = await client.Namespace.GetAttrAsync(new InodeRequest { Ino = ino });
        Assert.Equal(0, attr.Errno);
        var result = new byte[attr.Attr.Size];
        await using var file = client.OpenFile(ino, (long)attr.Attr.Size);
        var at = 0;
        while (at < result.Length)
        {
            var n = await file.ReadAsync(at, result.AsMemory(at, Math.Min(1 << 20, result.Length - at)));
            Assert.True(n > 0, $"short read at {at} of {result.Length}");
            at += n;
        }
        return result;
    }

    public static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    public static async Task<LayoutReply> LayoutAsync(BigFsClient client, ulong ino, bool allCopies = true)
    {
        var layout = await client.Namespace.GetLayoutAsync(new GetLayoutRequest { Ino = ino, AllCopies = allCopies });
        Assert.Equal(0, layout.Errno);
        return layout;
    }
}
