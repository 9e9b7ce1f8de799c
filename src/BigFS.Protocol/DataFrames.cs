namespace BigFS.Protocol;

/// <summary>Sizes of the bulk data messages (see storage.proto).</summary>
public static class DataFrames
{
    /// <summary>
    /// Upload data frames (ChunkUpload.data) are up to 1 MiB: per-message costs (HTTP/2 and gRPC
    /// framing, awaits, thread-pool hops) dominated with 64 KiB frames. Receivers get a 1 MiB
    /// array per frame; the daemons raise the GC's LOH threshold so these stay in gen 0.
    /// </summary>
    public const int MaxUploadFrameBytes = 1024 * 1024;
}
