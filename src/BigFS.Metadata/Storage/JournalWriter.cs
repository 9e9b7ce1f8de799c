using System.Buffers.Binary;
using System.Text;

namespace BigFS.Metadata.Storage;

/// <summary>
/// Little-endian writer of the journal's binary record format into one span. Past the span's end
/// it only counts, so the encoder can retry once with exactly the room the record needs instead
/// of measuring every record first.
/// </summary>
/// <summary>Writes one item of a list (see <see cref="JournalWriter.List{T}"/>).</summary>
internal delegate void JournalItemWriter<in T>(ref JournalWriter w, T item);

internal ref struct JournalWriter(Span<byte> span)
{
    private readonly Span<byte> _span = span;
    private int _position;

    /// <summary>Bytes written, or needed when <see cref="Overflowed"/>.</summary>
    public readonly int Position => _position;

    public readonly bool Overflowed => _position > _span.Length;

    /// <summary>The next <paramref name="size"/> bytes, or empty once the span has run out.</summary>
    private Span<byte> Take(int size)
    {
        var at = _position;
        _position = checked(_position + size);
        return _position <= _span.Length ? _span.Slice(at, size) : default;
    }

    public void Byte(byte value)
    {
        var s = Take(1);
        if (!s.IsEmpty)
            s[0] = value;
    }

    public void Bool(bool value) => Byte(value ? (byte)1 : (byte)0);

    public void Int32(int value)
    {
        var s = Take(4);
        if (!s.IsEmpty)
            BinaryPrimitives.WriteInt32LittleEndian(s, value);
    }

    public void Int64(long value)
    {
        var s = Take(8);
        if (!s.IsEmpty)
            BinaryPrimitives.WriteInt64LittleEndian(s, value);
    }

    /// <summary>A count of items that follow; -1 for a null collection.</summary>
    public void Count(int count) => Int32(count);

    /// <summary>Item count (-1 for null), then each item as <paramref name="item"/> writes it.</summary>
    public void List<T>(List<T>? list, JournalItemWriter<T> item)
    {
        if (list is null)
        {
            Count(-1);
            return;
        }
        Count(list.Count);
        foreach (var x in list)
            item(ref this, x);
    }

    /// <summary>Byte length, then the bytes; -1 for null.</summary>
    public void Bytes(byte[]? value)
    {
        if (value is null)
        {
            Int32(-1);
            return;
        }
        Int32(value.Length);
        var s = Take(value.Length);
        if (!s.IsEmpty)
            value.CopyTo(s);
    }

    /// <summary>UTF-8 byte length, then the UTF-8 bytes; -1 for null.</summary>
    public void String(string? value)
    {
        if (value is null)
        {
            Int32(-1);
            return;
        }
        var start = _position + sizeof(int);
        if (start <= _span.Length && Encoding.UTF8.TryGetBytes(value, _span[start..], out var written))
        {
            Int32(written);
            _position += written;
            return;
        }
        var length = Encoding.UTF8.GetByteCount(value);
        Int32(length);
        Take(length);
    }

    public void Int64Array(long[]? values)
    {
        if (values is null)
        {
            Int32(-1);
            return;
        }
        Int32(values.Length);
        var s = Take(checked(values.Length * sizeof(long)));
        if (s.IsEmpty)
            return;
        for (var i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteInt64LittleEndian(s[(i * sizeof(long))..], values[i]);
    }
}
