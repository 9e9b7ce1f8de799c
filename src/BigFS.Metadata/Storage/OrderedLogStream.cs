namespace BigFS.Metadata.Storage;

/// <summary>
/// The LiteDB log file, wrapped so that a checkpoint cannot lose acknowledged data on power
/// loss: a checkpoint copies log pages into the data file and then truncates or rewinds the
/// log. Before the log is truncated, or overwritten below its high-water mark, the data file
/// is made durable (fsync'd unless nothing was written to it since its last fsync), so the
/// pages being dropped from the log are already on disk in the data file.
/// Flush() also reaches the disk (LiteDB calls it where it wants durability).
/// </summary>
public sealed class OrderedLogStream(TrackedFileStream log, TrackedFileStream data) : WriteInterceptingStream(log)
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

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        BeforeOverwrite(log.Position);
        log.Write(buffer);
        _highWater = Math.Max(_highWater, log.Position);
    }

    public override void SetLength(long value)
    {
        BeforeOverwrite(value);
        log.SetLength(value);
        _highWater = value;
    }

    public override void Flush() => log.SyncIfDirty();

    protected override void Dispose(bool disposing)
    {
        // The owner (LiteDbMetadataStore) disposes the underlying files after the final sync.
        base.Dispose(disposing);
    }
}
