using System.Text;

namespace BigFS.Fuse;

/// <summary>
/// Linux names (entries, symlink targets, xattr names) are bytes, not text: any byte but '/' and
/// NUL, valid UTF-8 or not (an old archive's Latin-1 names). This maps them to .NET strings and
/// back without loss, as Python's <c>surrogateescape</c> does: valid UTF-8 decodes as usual, and
/// each byte of an invalid sequence becomes the lone surrogate U+DC80–U+DCFF, which valid UTF-8
/// can never produce, so encoding turns it back into that byte.
/// </summary>
public static class FileNameEncoding
{
    private const char FirstEscape = '\uDC80', LastEscape = '\uDCFF';

    public static string GetString(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
            return Encoding.UTF8.GetString(bytes);
        var text = new StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out int consumed) == System.Buffers.OperationStatus.Done)
            {
                text.Append(rune.ToString());
            }
            else
            {
                foreach (var b in bytes[..consumed])
                    text.Append((char)(0xDC00 | b));   // invalid UTF-8 bytes are all ≥ 0x80
            }
            bytes = bytes[consumed..];
        }
        return text.ToString();
    }

    public static byte[] GetBytes(string name)
    {
        if (!HasEscapes(name))
            return Encoding.UTF8.GetBytes(name);
        var bytes = new byte[GetByteCount(name)];
        Encode(name, bytes);
        return bytes;
    }

    public static int GetByteCount(string name)
    {
        if (!HasEscapes(name))
            return Encoding.UTF8.GetByteCount(name);
        int count = 0;
        foreach (var (start, length, escaped) in Pieces(name))
            count += escaped ? 1 : Encoding.UTF8.GetByteCount(name.AsSpan(start, length));
        return count;
    }

    /// <summary>Encodes into <paramref name="destination"/>; false when it is too small.</summary>
    public static bool TryGetBytes(string name, Span<byte> destination, out int written)
    {
        if (!HasEscapes(name))
            return Encoding.UTF8.TryGetBytes(name, destination, out written);
        written = 0;
        if (GetByteCount(name) > destination.Length)
            return false;
        written = Encode(name, destination);
        return true;
    }

    private static bool HasEscapes(string name) => name.AsSpan().IndexOfAnyInRange(FirstEscape, LastEscape) >= 0;

    private static int Encode(string name, Span<byte> destination)
    {
        int at = 0;
        foreach (var (start, length, escaped) in Pieces(name))
        {
            if (escaped)
                destination[at++] = (byte)(name[start] & 0xFF);
            else
                at += Encoding.UTF8.GetBytes(name.AsSpan(start, length), destination[at..]);
        }
        return at;
    }

    /// <summary>
    /// Splits a name into runs of ordinary text and single escaped bytes. A low surrogate that
    /// completes a pair is text (a character above U+FFFF); only a lone one is an escaped byte.
    /// </summary>
    private static IEnumerable<(int Start, int Length, bool Escaped)> Pieces(string name)
    {
        int runStart = 0;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1]))
            {
                i++;
                continue;
            }
            if (c is >= FirstEscape and <= LastEscape)
            {
                if (i > runStart) yield return (runStart, i - runStart, false);
                yield return (i, 1, true);
                runStart = i + 1;
            }
        }
        if (name.Length > runStart) yield return (runStart, name.Length - runStart, false);
    }
}
