using System.Buffers.Binary;
using System.Text;

namespace BigFS.Metadata.Storage;

/// <summary>
/// Reads what <see cref="JournalWriter"/> wrote. The payload's checksum already matched, so a
/// structure that does not add up is a bug or a foreign file: every read is bounds-checked and
/// fails with <see cref="InvalidDataException"/>, never with garbage or an index error.
/// </summary>
/// <summary>Reads one item of a list (see <see cref="JournalReader.List{T}"/>).</summary>
internal delegate T JournalItemReader<out T>(ref JournalReader r);

internal ref struct JournalReader(ReadOnlySpan<byte> span)
{
    private readonly ReadOnlySpan<byte> _span = span;
    private int _position;

    private readonly int Remaining => _span.Length - _position;

    public readonly InvalidDataException Malformed(string problem) =>
        new($"malformed metadata journal record: {problem} (at payload byte {_position} of {_span.Length})");

    private ReadOnlySpan<byte> Take(int size, string what)
    {
        if (size < 0 || size > Remaining)
            throw Malformed($"{what} of {size} bytes runs past the end of the payload");
        var s = _span.Slice(_position, size);
        _position += size;
        return s;
    }

    public byte Byte() => Take(1, "a byte")[0];

    public bool Bool() => Byte() switch
    {
        0 => false,
        1 => true,
        var b => throw Malformed($"boolean byte {b}"),
    };

    public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4, "an int32"));

    public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8, "an int64"));

    /// <summary>
    /// A collection's item count, -1 meaning null. Each item takes at least
    /// <paramref name="minItemSize"/> bytes, so a count the payload cannot hold fails here
    /// rather than after allocating for it.
    /// </summary>
    public int Count(int minItemSize, string what)
    {
        var count = Int32();
        if (count < -1 || (count > 0 && count > Remaining / minItemSize))
            throw Malformed($"{what} count {count} does not fit the {Remaining} bytes left");
        return count;
    }

    /// <summary>What <see cref="JournalWriter.List{T}"/> wrote: null for count -1 (see <see cref="Count"/>).</summary>
    public List<T>? List<T>(int minItemSize, string what, JournalItemReader<T> item)
    {
        var count = Count(minItemSize, what);
        if (count < 0)
            return null;
        var list = new List<T>(count);
        for (var i = 0; i < count; i++)
            list.Add(item(ref this));
        return list;
    }

    private int Length(string what)
    {
        var length = Int32();
        if (length < -1 || length > Remaining)
            throw Malformed($"{what} length {length} runs past the end of the payload ({Remaining} bytes left)");
        return length;
    }

    public byte[]? Bytes()
    {
        var length = Length("byte string");
        return length < 0 ? null : Take(length, "byte string").ToArray();
    }

    public string? String()
    {
        var length = Length("string");
        return length < 0 ? null : Encoding.UTF8.GetString(Take(length, "string"));
    }

    public long[]? Int64Array()
    {
        var count = Count(sizeof(long), "int64 array");
        if (count < 0)
            return null;
        var s = Take(count * sizeof(long), "int64 array");
        var values = new long[count];
        for (var i = 0; i < count; i++)
            values[i] = BinaryPrimitives.ReadInt64LittleEndian(s[(i * sizeof(long))..]);
        return values;
    }

    public readonly void EnsureEnd()
    {
        if (Remaining != 0)
            throw Malformed($"{Remaining} bytes left over after the last change");
    }
}
