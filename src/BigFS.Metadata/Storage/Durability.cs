namespace BigFS.Metadata.Storage;

/// <summary>When a metadata change may be acknowledged.</summary>
public enum Durability
{
    /// <summary>After it is on disk (fsync'd): commits of file data from fsync, cluster bookkeeping.</summary>
    Durable,

    /// <summary>
    /// After it is written to the store's files (it survives a crash of the server process, like a
    /// local filesystem's page cache survives a crash of an application), reaching the disk with
    /// the next flush — within <see cref="GroupCommitWriter.LazyFlushDelay"/>, or sooner when a
    /// durable change or a sync barrier needs one. POSIX namespace changes, and commits of file
    /// data from close (the data itself is durable on the nodes), are of this kind:
    /// fsync/fsyncdir make them durable.
    /// </summary>
    Written,
}
