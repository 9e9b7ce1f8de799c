using System.Buffers.Binary;
using BigFS.Protocol.Bulk;
using Grpc.Core;

namespace BigFS.Data.Tests;

public class BulkFrameHeaderTests
{
    [Fact]
    public void EncodeThenDecode_RoundTripsEveryField()
    {
        var header = new BulkFrameHeader(BulkOp.StoreReplica, StatusCode.DataLoss, 0x0102030405060708, 1234, 64 * 1024 * 1024);
        var bytes = new byte[BulkFrameHeader.Size];
        header.Encode(bytes);

        Assert.True(BulkFrameHeader.TryDecode(bytes, out var decoded, out var error), error);
        Assert.Equal(header, decoded);
    }

    [Fact]
    public void Encode_LayoutIsLittleEndianWithMagicFirst()
    {
        var bytes = new byte[BulkFrameHeader.Size];
        new BulkFrameHeader(BulkOp.ReadChunk, StatusCode.OK, 7, 2, 3).Encode(bytes);

        Assert.Equal("BFSD"u8.ToArray(), bytes[..4]);
        Assert.Equal(1, bytes[4]);
        Assert.Equal(0, bytes[5]);
        Assert.Equal(7ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(16)));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(20)));
    }

    public static TheoryData<string, int, byte> Corruptions => new()
    {
        { "magic", 0, (byte)'X' },
        { "op", 4, 0 },
        { "op", 4, 99 },
        { "status", 5, 200 },
        { "reserved", 6, 1 },
        { "meta length", 18, 1 },     // meta length 64 KiB + ...
        { "data length", 23, 0x10 },  // data length ≥ 256 MiB
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Decode_RejectsAnyMalformedField(string field, int at, byte value)
    {
        var bytes = new byte[BulkFrameHeader.Size];
        new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 1, 10, 10).Encode(bytes);
        bytes[at] = value;

        Assert.False(BulkFrameHeader.TryDecode(bytes, out _, out var error), field);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Decode_ShortInputIsAnError()
    {
        Assert.False(BulkFrameHeader.TryDecode(new byte[BulkFrameHeader.Size - 1], out _, out var error));
        Assert.Contains("24", error);
    }

    [Fact]
    public void Encode_RefusesLengthsBeyondTheLimits()
    {
        var bytes = new byte[BulkFrameHeader.Size];
        Assert.Throws<ArgumentOutOfRangeException>(() => new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 1, 0, BulkFrameHeader.MaxDataBytes + 1).Encode(bytes));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 1, BulkFrameHeader.MaxMetaBytes + 1, 0).Encode(bytes));
        Assert.Throws<ArgumentException>(() => new BulkFrameHeader(BulkOp.WriteChunk, StatusCode.OK, 1, 0, 0).Encode(new byte[10]));
    }
}
