namespace BigFS.Client;

public sealed class BigFsClientOptions
{
    public int MaxInFlightChunkUploads { get; set; } = 4;
    public long WriteBufferBytes { get; set; } = 256L * 1024 * 1024;   // global bound, all files
    public int UploadRetries { get; set; } = 3;                         // then EIO
    public long ChunkCacheBytes { get; set; } = 256L * 1024 * 1024;
    public long ReadAheadBytes { get; set; } = 16L * 1024 * 1024;          // sequential reads; capped at half the cache
}
