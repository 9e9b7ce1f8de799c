namespace BigFS.Client;

public sealed class BigFsClientOptions
{
    public int MaxInFlightChunkUploads { get; set; } = 4;
    public long WriteBufferBytes { get; set; } = 256L * 1024 * 1024;   // global bound, all files
    public int UploadRetries { get; set; } = 3;                         // then EIO
    public long ChunkCacheBytes { get; set; } = 256L * 1024 * 1024;
    public long ReadAheadBytes { get; set; } = 16L * 1024 * 1024;          // sequential reads; capped at half the cache

    /// <summary>Unary namespace calls over the metadata server's fast listener when it advertises one (false = gRPC only).</summary>
    public bool FastMetadataTransport { get; set; } = true;

    /// <summary>
    /// Fast transport replies complete their callers on the receiving thread (no thread hop).
    /// Only for callers whose continuations never block (the mount's FUSE handlers).
    /// </summary>
    public bool InlineMetadataCompletions { get; set; }

    /// <summary>
    /// How long calls wait out an unreachable metadata server (a restart) before failing; only
    /// calls that are safe to repeat wait (see <see cref="BigFS.Protocol.OutageRetryInterceptor"/>).
    /// Zero (the default for programs and the CLI) fails at once.
    /// </summary>
    public TimeSpan MetadataOutageWindow { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// How long an upload waits for a storage node when none is active (all restarting, or all
    /// unheard-of by a metadata server that was itself cut off) before failing with EIO.
    /// Zero (the default for programs and the CLI) fails after the upload's retries.
    /// </summary>
    public TimeSpan StorageOutageWindow { get; set; } = TimeSpan.Zero;
}
