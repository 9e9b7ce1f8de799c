using BigFS.Client;

namespace BigFS.Mount;

public sealed class BigFsMountOptions
{
    public string MetadataAddress { get; set; } = "http://127.0.0.1:9000";
    public string MountPoint { get; set; } = "";
    /// <summary>How long the kernel trusts attributes and names (close-to-open holds regardless).</summary>
    public TimeSpan AttrTimeout { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan EntryTimeout { get; set; } = TimeSpan.FromSeconds(1);
    /// <summary>
    /// Names and attributes kept in the daemon between changes, which the metadata server's
    /// change feed reports (0 turns the cache off). Past the limit the cache starts over.
    /// </summary>
    public int LookupCacheEntries { get; set; } = 200_000;
    /// <summary>How long a cached attribute is trusted at most even without a change notice.</summary>
    public TimeSpan LookupCacheMaxAge { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>Let users other than the mounting one in (permissions still checked by the kernel).</summary>
    public bool AllowOther { get; set; } = true;
    public bool ReadOnly { get; set; }
    /// <summary>
    /// fcntl and flock locks only among this machine's processes, kept by its kernel (like NFS's
    /// local_lock=all): no metadata call per lock, no exclusion of other mounts.
    /// </summary>
    public bool LocalLocks { get; set; }
    /// <summary>Bounds the daemon's memory: dirty data waiting for upload, and cached chunk blocks.</summary>
    public long WriteBufferBytes { get; set; } = 128L * 1024 * 1024;
    public long ChunkCacheBytes { get; set; } = 128L * 1024 * 1024;
    public int MaxInFlightChunkUploads { get; set; } = 4;
    /// <summary>
    /// After a small (random) read, push the rest of the fetched 64 KiB block into the kernel's
    /// page cache, so the neighbouring pages are read without a round trip to the daemon.
    /// </summary>
    public bool FillPageCache { get; set; } = true;
    /// <summary>
    /// Metadata replies complete the FUSE handlers on the thread that received them, sparing a
    /// thread-pool hop per namespace syscall (the handlers never block, so this is safe here).
    /// </summary>
    public bool InlineMetadataCompletions { get; set; } = true;
    /// <summary>
    /// A metadata server restart shows as a pause of up to this long, not as EIO: calls that
    /// are safe to repeat wait for the server to come back (like an NFS hard mount, but bounded).
    /// </summary>
    public TimeSpan MetadataOutageWindow { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// Likewise for the storage nodes: while none is active (all restarting, or the metadata
    /// server briefly cut off from them), uploads wait for one for up to this long.
    /// </summary>
    public TimeSpan StorageOutageWindow { get; set; } = TimeSpan.FromSeconds(60);

    internal BigFsClientOptions ToClientOptions() => new()
    {
        WriteBufferBytes = WriteBufferBytes,
        ChunkCacheBytes = ChunkCacheBytes,
        MaxInFlightChunkUploads = MaxInFlightChunkUploads,
        InlineMetadataCompletions = InlineMetadataCompletions,
        MetadataOutageWindow = MetadataOutageWindow,
        StorageOutageWindow = StorageOutageWindow,
    };
}
