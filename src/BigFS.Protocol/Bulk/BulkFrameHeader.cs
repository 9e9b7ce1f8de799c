using System.Buffers.Binary;
using Grpc.Core;

namespace BigFS.Protocol.Bulk;

/// <summary>
/// The fixed 24-byte header in front of every bulk frame, request or reply (little endian):
/// <code>
///  0  magic "BFSD"     4  op u8     5  status u8     6  reserved u16 (0)
///  8  request id u64  16  meta length u32           20  data length u32
/// </code>
/// followed by <c>meta length</c> bytes of control data (a protobuf message, checksums, or an
/// error text) and <c>data length</c> bytes of chunk data. A reply echoes the op and request id;
/// its status is a gRPC status code (0 = OK), so callers map failures exactly as for gRPC.
/// </summary>
public readonly record struct BulkFrameHeader(BulkOp Op, StatusCode Status, ulong RequestId, int MetaLength, int DataLength)
{
    public const int Size = 24;
    public const uint Magic = 0x44534642; // "BFSD" read as little endian
    public const int MaxMetaBytes = 64 * 1024;
    /// <summary>The largest chunk (LocalChunkStore.MaxChunkSize); frames announcing more are refused unread.</summary>
    public const int MaxDataBytes = 64 * 1024 * 1024;

    public void Encode(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException("destination is shorter than a frame header", nameof(destination));
        if (MetaLength is < 0 or > MaxMetaBytes || DataLength is < 0 or > MaxDataBytes)
            throw new ArgumentOutOfRangeException(nameof(DataLength), "frame lengths beyond the protocol limits");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        destination[4] = (byte)Op;
        destination[5] = (byte)Status;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], RequestId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], (uint)MetaLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], (uint)DataLength);
    }

    /// <summary>Strict decoding: unknown magic, op or status, non-zero reserved bits and over-limit lengths are errors.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> source, out BulkFrameHeader header, out string? error)
    {
        header = default;
        error = null;
        if (source.Length < Size)
            error = $"a frame header is {Size} bytes, got {source.Length}";
        else if (BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
            error = "not a BigFS bulk frame (bad magic)";
        else if (!Enum.IsDefined((BulkOp)source[4]))
            error = $"unknown op {source[4]}";
        else if (source[5] > (byte)StatusCode.Unauthenticated)
            error = $"unknown status {source[5]}";
        else if (BinaryPrimitives.ReadUInt16LittleEndian(source[6..]) != 0)
            error = "reserved header bits are set";
        else
        {
            var meta = BinaryPrimitives.ReadUInt32LittleEndian(source[16..]);
            var data = BinaryPrimitives.ReadUInt32LittleEndian(source[20..]);
            if (meta > MaxMetaBytes)
                error = $"meta length {meta} exceeds {MaxMetaBytes}";
            else if (data > MaxDataBytes)
                error = $"data length {data} exceeds {MaxDataBytes}";
            else
                header = new BulkFrameHeader((BulkOp)source[4], (StatusCode)source[5], BinaryPrimitives.ReadUInt64LittleEndian(source[8..]), (int)meta, (int)data);
        }
        return error is null;
    }
}
