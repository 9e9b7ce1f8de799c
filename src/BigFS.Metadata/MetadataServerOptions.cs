namespace BigFS.Metadata;

/// <summary>Settings of the metadata server (design §8 defaults).</summary>
public sealed class MetadataServerOptions
{
    public string DataDirectory { get; set; } = "";
    public string Listen { get; set; } = "127.0.0.1:9000";     // port 0 = any free port

    /// <summary>
    /// The fast metadata listener (docs/metadata-transport.md), host:port. Default: the gRPC
    /// host, port = gRPC port + <see cref="DefaultFastPortOffset"/> (0 when the gRPC port is 0).
    /// <see cref="NoFastListener"/> turns it off: clients then make every call over gRPC.
    /// </summary>
    public string? FastListen { get; set; }

    /// <summary>
    /// Also serve the fast listener on a Unix socket in the data directory, for clients on this
    /// host (a uniquely named <c>fast-*.sock</c>, advertised to clients; about 20 µs less per
    /// call than TCP loopback). Only with a fast listener.
    /// </summary>
    public bool FastListenUnix { get; set; } = true;

    public const int DefaultFastPortOffset = 1000;
    public const string NoFastListener = "none";

    /// <summary>The fast listen address in effect, or null when turned off.</summary>
    public string? EffectiveFastListen()
    {
        if (string.Equals(FastListen, NoFastListener, StringComparison.OrdinalIgnoreCase))
            return null;
        if (!string.IsNullOrWhiteSpace(FastListen))
            return FastListen;
        var (host, port) = BigFS.Protocol.GrpcServerHost.ParseListen(Listen);
        var fastPort = port == 0 ? 0 : port + DefaultFastPortOffset;
        if (fastPort > 65535)
            throw new ArgumentException($"no default fast metadata port for listen port {port}; set FastListen");
        return $"{host}:{fastPort}";
    }
    public int ChunkSize { get; set; } = 4 * 1024 * 1024;
    public int DefaultGoal { get; set; } = 3;
    public int MinCopiesBeforeAck { get; set; } = 2;
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(30);   // Active -> Suspect
    public TimeSpan DeadTimeout { get; set; } = TimeSpan.FromSeconds(120);       // -> Dead
    public TimeSpan ReplicaConfirmationTimeout { get; set; } = TimeSpan.FromSeconds(30);
    public int MaxReplicaConfirmationRetries { get; set; } = 3;
    public TimeSpan CleanupInterval { get; set; } = TimeSpan.FromSeconds(60);    // GC / maintenance pass
    public TimeSpan TimestampHeuristicThreshold { get; set; } = TimeSpan.FromSeconds(300);
    public TimeSpan UncommittedChunkGrace { get; set; } = TimeSpan.FromHours(1);
    public TimeSpan SessionLease { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// After a restart over existing data, how long new advisory locks wait so that mounts can
    /// take back the locks they held first (they notice the restart within about a second).
    /// At most <see cref="SessionLease"/>.
    /// </summary>
    public TimeSpan LockReclaimGrace { get; set; } = TimeSpan.FromSeconds(10);

    public const int MaxGoal = 16;

    /// <summary>Throws ArgumentException naming the first invalid option.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
            throw new ArgumentException("MetadataServerOptions.DataDirectory must be set", nameof(DataDirectory));
        if (string.IsNullOrWhiteSpace(Listen))
            throw new ArgumentException("MetadataServerOptions.Listen must be host:port", nameof(Listen));
        try { BigFS.Protocol.GrpcServerHost.ParseListen(Listen); }
        catch (FormatException ex) { throw new ArgumentException($"MetadataServerOptions.Listen: {ex.Message}", nameof(Listen), ex); }
        try
        {
            if (EffectiveFastListen() is { } fast)
                BigFS.Protocol.GrpcServerHost.ParseListen(fast);
        }
        catch (FormatException ex) { throw new ArgumentException($"MetadataServerOptions.FastListen: {ex.Message}", nameof(FastListen), ex); }
        if (ChunkSize < BigFS.Core.ChunkChecksum.BlockSize || ChunkSize % BigFS.Core.ChunkChecksum.BlockSize != 0 || ChunkSize > 64 * 1024 * 1024)
            throw new ArgumentException($"MetadataServerOptions.ChunkSize must be a multiple of 64 KiB between 64 KiB and 64 MiB (was {ChunkSize})", nameof(ChunkSize));
        if (DefaultGoal is < 1 or > MaxGoal)
            throw new ArgumentException($"MetadataServerOptions.DefaultGoal must be 1..{MaxGoal} (was {DefaultGoal})", nameof(DefaultGoal));
        // Capped at the goal where used, so a single-copy cluster may leave the default of 2.
        if (MinCopiesBeforeAck < 1)
            throw new ArgumentException($"MetadataServerOptions.MinCopiesBeforeAck must be at least 1 (was {MinCopiesBeforeAck})", nameof(MinCopiesBeforeAck));
        Positive(HeartbeatInterval, nameof(HeartbeatInterval));
        Positive(HeartbeatTimeout, nameof(HeartbeatTimeout));
        Positive(DeadTimeout, nameof(DeadTimeout));
        if (DeadTimeout < HeartbeatTimeout)
            throw new ArgumentException("MetadataServerOptions.DeadTimeout must not be shorter than HeartbeatTimeout", nameof(DeadTimeout));
        Positive(ReplicaConfirmationTimeout, nameof(ReplicaConfirmationTimeout));
        if (MaxReplicaConfirmationRetries < 0)
            throw new ArgumentException("MetadataServerOptions.MaxReplicaConfirmationRetries must be >= 0", nameof(MaxReplicaConfirmationRetries));
        Positive(CleanupInterval, nameof(CleanupInterval));
        Positive(TimestampHeuristicThreshold, nameof(TimestampHeuristicThreshold));
        Positive(UncommittedChunkGrace, nameof(UncommittedChunkGrace));
        Positive(SessionLease, nameof(SessionLease));
        if (LockReclaimGrace < TimeSpan.Zero)
            throw new ArgumentException($"MetadataServerOptions.LockReclaimGrace must not be negative (was {LockReclaimGrace})", nameof(LockReclaimGrace));
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero || value.TotalMilliseconds > uint.MaxValue)
            throw new ArgumentException($"MetadataServerOptions.{name} must be positive (was {value})", name);
    }
}
