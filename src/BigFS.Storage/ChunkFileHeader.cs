using System.Buffers.Binary;
using BigFS.Core;

namespace BigFS.Storage;

/// <summary>
/// The header at the start of every chunk file. Layout (little endian):
/// <code>
///  0  magic "BFSC"         4  version u16 (1)     6  reserved u16
///  8  block count u32     12  reserved u32
/// 16  data size u64       24  whole-chunk XxHash3 u64
/// 32  created unix ms i64 40  block XxHash3 u64 × block count
/// </code>
/// The data starts at the next 4 KiB boundary after the block checksums, so data reads are aligned.
/// </summary>
public sealed record ChunkFileHeader(long Size, ulong Checksum, long CreatedUnixMs, ulong[] BlockChecksums)
{
    public const ushort CurrentVersion = 1;
    public const int FixedLength = 40;
    public const int Alignment = 4096;
    private const uint MagicValue = 0x43534642; // "BFSC" read as little endian

    public long DataOffset => DataOffsetFor(Size);

    public static long DataOffsetFor(long size)
    {
        var raw = FixedLength + 8L * ChunkChecksum.BlockCount(size);
        return (raw + Alignment - 1) / Alignment * Alignment;
    }

    /// <summary>Header bytes padded to <see cref="DataOffset"/>.</summary>
    public byte[] Encode()
    {
        var bytes = new byte[DataOffset];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, MagicValue);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], CurrentVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)BlockChecksums.Length);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(span[24..], Checksum);
        BinaryPrimitives.WriteInt64LittleEndian(span[32..], CreatedUnixMs);
        for (var i = 0; i < BlockChecksums.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(span[(FixedLength + 8 * i)..], BlockChecksums[i]);
        return bytes;
    }

    /// <summary>Decodes a header; <paramref name="bytes"/> must hold at least the fixed part and the block checksums.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out ChunkFileHeader? header, out string error)
    {
        header = null;
        if (bytes.Length < FixedLength) { error = "file shorter than a header"; return false; }
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != MagicValue) { error = "bad magic"; return false; }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != CurrentVersion) { error = $"unsupported version {version}"; return false; }
        var blocks = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
        var size = BinaryPrimitives.ReadInt64LittleEndian(bytes[16..]);
        if (size <= 0 || size > LocalChunkStore.MaxChunkSize || blocks != ChunkChecksum.BlockCount(size))
        { error = $"inconsistent size {size} / block count {blocks}"; return false; }
        if (bytes.Length < FixedLength + 8 * (int)blocks) { error = "truncated block checksums"; return false; }
        var checksums = new ulong[blocks];
        for (var i = 0; i < checksums.Length; i++)
            checksums[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(FixedLength + 8 * i)..]);
        header = new ChunkFileHeader(size, BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[32..]), checksums);
        error = "";
        return true;
    }
}
