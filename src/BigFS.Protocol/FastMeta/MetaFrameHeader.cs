using System.Buffers.Binary;
using Grpc.Core;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// The fixed 24-byte header in front of every frame of the fast metadata transport, request
/// or reply (little endian):
/// <code>
///  0  magic "BFSM"     4  method id u16     6  status u8     7  session length u8
///  8  request id u64  16  payload length u32                20  reserved u32 (0)
/// </code>
/// A request carries <c>session length</c> bytes of the caller's mount session id (ASCII, what
/// gRPC calls send as the <c>bigfs-session</c> header), then the protobuf request. A reply echoes
/// the method and request id, has session length 0, and carries the protobuf reply when status
/// is OK (0), else the error text (UTF-8); status is the gRPC status code the gRPC service
/// would have returned, so callers handle failures the same way on both transports. A server
/// that stops sends a go-away frame first (<see cref="GoAwayMethod"/>).
/// </summary>
public readonly record struct MetaFrameHeader(ushort Method, StatusCode Status, int SessionLength, ulong RequestId, int PayloadLength)
{
    public const int Size = 24;
    public const uint Magic = 0x4D534642; // "BFSM" read as little endian
    /// <summary>Largest payload either side accepts: gRPC's limit here, so no call fits one transport and not the other.</summary>
    public const int MaxPayloadBytes = GrpcServerHost.MaxMessageBytes;
    public const int MaxSessionBytes = 128;

    /// <summary>
    /// The method id of a server's go-away frame (no payload): it is stopping, and processes
    /// no request of this connection beyond the one whose id the frame carries (0: none).
    /// </summary>
    public const ushort GoAwayMethod = ushort.MaxValue;

    public void Encode(Span<byte> destination)
    {
        if (destination.Length < Size)
            throw new ArgumentException("destination is shorter than a frame header", nameof(destination));
        if (PayloadLength is < 0 or > MaxPayloadBytes || SessionLength is < 0 or > MaxSessionBytes)
            throw new ArgumentOutOfRangeException(nameof(PayloadLength), "frame lengths beyond the protocol limits");
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Method);
        destination[6] = (byte)Status;
        destination[7] = (byte)SessionLength;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], RequestId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], (uint)PayloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], 0);
    }

    /// <summary>Strict decoding: bad magic, unknown status, reserved bits and over-limit lengths are errors (the method id is checked by the dispatcher).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> source, out MetaFrameHeader header, out string? error)
    {
        header = default;
        error = null;
        if (source.Length < Size)
            error = $"a frame header is {Size} bytes, got {source.Length}";
        else if (BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
            error = "not a BigFS metadata frame (bad magic)";
        else if (source[6] > (byte)StatusCode.Unauthenticated)
            error = $"unknown status {source[6]}";
        else if (source[7] > MaxSessionBytes)
            error = $"session length {source[7]} exceeds {MaxSessionBytes}";
        else if (BinaryPrimitives.ReadUInt32LittleEndian(source[20..]) != 0)
            error = "reserved header bits are set";
        else
        {
            var payload = BinaryPrimitives.ReadUInt32LittleEndian(source[16..]);
            if (payload > MaxPayloadBytes)
                error = $"payload length {payload} exceeds {MaxPayloadBytes}";
            else
                header = new MetaFrameHeader(BinaryPrimitives.ReadUInt16LittleEndian(source[4..]), (StatusCode)source[6], source[7],
                    BinaryPrimitives.ReadUInt64LittleEndian(source[8..]), (int)payload);
        }
        return error is null;
    }
}
