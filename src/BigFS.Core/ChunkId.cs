using System.Buffers.Binary;
using System.Security.Cryptography;

namespace BigFS.Core;

/// <summary>
/// A chunk's 128-bit random id, written as exactly 32 lowercase hex digits. Ids arrive from
/// the network and become file names on storage nodes, so parsing is strict: anything else
/// (path separators, dots, upper case, wrong length) is rejected.
/// </summary>
public readonly record struct ChunkId(ulong High, ulong Low)
{
    public const int TextLength = 32;

    public static ChunkId NewRandom()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return new ChunkId(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));
    }

    public static bool TryParse(ReadOnlySpan<char> text, out ChunkId id)
    {
        id = default;
        if (text.Length != TextLength)
            return false;
        ulong high = 0, low = 0;
        for (var i = 0; i < TextLength; i++)
        {
            var c = text[i];
            int nibble = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'a' and <= 'f' => c - 'a' + 10,
                _ => -1,
            };
            if (nibble < 0)
                return false;
            if (i < 16) high = (high << 4) | (uint)nibble;
            else low = (low << 4) | (uint)nibble;
        }
        id = new ChunkId(high, low);
        return true;
    }

    public static ChunkId Parse(string text) =>
        TryParse(text, out var id) ? id : throw new FormatException($"'{Printable(text)}' is not a chunk id (32 lowercase hex digits)");

    public static bool IsValid(string? text) => text is not null && TryParse(text, out _);

    public override string ToString() => $"{High:x16}{Low:x16}";

    private static string Printable(string text) => text.Length > 64 ? text[..64] + "…" : text;
}
