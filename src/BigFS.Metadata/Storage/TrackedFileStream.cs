namespace BigFS.Metadata.Storage;

/// <summary>
/// A file that knows whether it was written since it was last made durable, so the flush
/// policy can fsync only files that changed: an fsync of a clean file still costs a device
/// cache flush, and LiteDB may already have fsync'd the log through <see cref="Flush"/>.
/// Writes may come from LiteDB's own threads, hence the interlocked counters.
/// The owner disposes the underlying file.
/// </summary>
public sealed class TrackedFileStream(FileStream file) : WriteInterceptingStream(file)
{
    private long _writes;
    private long _durableWrites;
    private long _syncs;

    /// <summary>How many fsyncs actually reached the disk.</summary>
    public long Syncs => Interlocked.Read(ref _syncs);

    public bool IsDirty => Interlocked.Read(ref _writes) != Interlocked.Read(ref _durableWrites);

    /// <summary>fsync, unless nothing was written since the last one; true if it synced.</summary>
    public bool SyncIfDirty()
    {
        var seen = Interlocked.Read(ref _writes);
        if (seen == Interlocked.Read(ref _durableWrites))
            return false;
        file.Flush(flushToDisk: true);
        // A racing older sync may store a smaller value afterwards: that only causes one extra fsync.
        Interlocked.Exchange(ref _durableWrites, seen);
        Interlocked.Increment(ref _syncs);
        return true;
    }

    // Counted after the write completed: a sync that starts later covers it, and a write still in
    // progress while another thread syncs leaves the file dirty for the next sync.
    private void NoteWrite() => Interlocked.Increment(ref _writes);

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        file.Write(buffer);
        NoteWrite();
    }

    public override void SetLength(long value)
    {
        file.SetLength(value);
        NoteWrite();
    }

    /// <summary>LiteDB calls Flush where it wants durability.</summary>
    public override void Flush() => SyncIfDirty();
}
