namespace BigFS.Metadata.Storage;

/// <summary>
/// A stream over another whose reads, seeks and properties pass straight through, so a
/// subclass says only what it does around writes, truncation and flushes.
/// </summary>
public abstract class WriteInterceptingStream(Stream inner) : Stream
{
    public override abstract void Write(ReadOnlySpan<byte> buffer);
    public override abstract void SetLength(long value);
    public override abstract void Flush();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void WriteByte(byte value) => Write([value]);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => inner.CanSeek;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => inner.Position = value;
    }
}
