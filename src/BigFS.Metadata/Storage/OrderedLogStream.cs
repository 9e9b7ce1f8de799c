namespace BigFS.Metadata.Storage;

/// <summary>
/// The LiteDB log file, wrapped so that a checkpoint cannot lose acknowledged data on power
/// loss: a checkpoint copies log pages into the data file and then truncates or rewinds the
/// log. Before the log is truncated, or overwritten below its high-water mark, the data file
/// is made durable (fsync'd unless nothing was written to it since its last fsync), so the
/// pages being dropped from the log are already on disk in the data file.
/// Flush() also reaches the disk (LiteDB calls it where it wants durability).
/// </summary>
public sealed class OrderedLogStream(TrackedFileStream log, TrackedFileStream data) : Stream
{
    private long _highWater = log.Length;

    /// <summary>How often the log was reused after a checkpoint (each time behind a durable data file).</summary>
    public long DataSyncs { get; private set; }

    private void BeforeOverwrite(long position)
    {
        if (position >= _highWater)
            return;
        data.SyncIfDirty();
        DataSyncs++;
        _highWater = position;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        BeforeOverwrite(log.Position);
        log.Write(buffer);
        _highWater = Math.Max(_highWater, log.Position);
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void SetLength(long value)
    {
        BeforeOverwrite(value);
        log.SetLength(value);
        _highWater = value;
    }

    public override void Flush() => log.SyncIfDirty();
    public override int Read(byte[] buffer, int offset, int count) => log.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => log.Read(buffer);
    public override long Seek(long offset, SeekOrigin origin) => log.Seek(offset, origin);
    public override bool CanRead => log.CanRead;
    public override bool CanSeek => log.CanSeek;
    public override bool CanWrite => log.CanWrite;
    public override long Length => log.Length;

    public override long Position
    {
        get => log.Position;
        set => log.Position = value;
    }

    protected override void Dispose(bool disposing)
    {
        // The owner (LiteDbMetadataStore) disposes the underlying files after the final sync.
        base.Dispose(disposing);
    }
}
