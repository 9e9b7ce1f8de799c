namespace BigFS.Storage;

public sealed class StorageNodeOptions
{
    public string DataDirectory { get; set; } = "";
    public string Listen { get; set; } = "127.0.0.1:9100";   // port 0 = any free port
    public string MetadataAddress { get; set; } = "http://127.0.0.1:9000";
    public string? AdvertiseAddress { get; set; }            // default: the bound address

    /// <summary>
    /// The bulk data listener (docs/data-path.md), host:port. Default: the gRPC host, port =
    /// gRPC port + <see cref="DefaultDataPortOffset"/> (0 when the gRPC port is 0).
    /// <see cref="NoDataListener"/> turns it off: clients and nodes then use gRPC for chunk data.
    /// </summary>
    public string? DataListen { get; set; }

    public const int DefaultDataPortOffset = 1000;
    public const string NoDataListener = "none";

    /// <summary>The data listen address in effect, or null when turned off.</summary>
    public string? EffectiveDataListen()
    {
        if (string.Equals(DataListen, NoDataListener, StringComparison.OrdinalIgnoreCase))
            return null;
        if (!string.IsNullOrWhiteSpace(DataListen))
            return DataListen;
        var (host, port) = BigFS.Protocol.GrpcServerHost.ParseListen(Listen);
        var dataPort = port == 0 ? 0 : port + DefaultDataPortOffset;
        if (dataPort > 65535)
            throw new ArgumentException($"no default data port for listen port {port}; set DataListen");
        return $"{host}:{dataPort}";
    }
    public long CapacityBytes { get; set; }                  // 0 = used + free space of the data dir's filesystem
    public List<string> Labels { get; set; } = [];
    public TimeSpan InventoryInterval { get; set; } = TimeSpan.FromMinutes(10);
    public int MinCopiesBeforeAck { get; set; } = 2;

    /// <summary>Pause between two scrub passes over every local chunk.</summary>
    public TimeSpan ScrubInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Bound on scrub reads, so scrubbing never competes seriously with client I/O.</summary>
    public long ScrubBytesPerSecond { get; set; } = 32L * 1024 * 1024;

    /// <summary>
    /// How long calls to an unreachable metadata server (a restart) wait for it before failing,
    /// so a writer's upload pauses instead of failing; only calls safe to repeat wait. Zero fails at once.
    /// The mount's default window too: an upload's registration here waits as long as its writer does.
    /// </summary>
    public TimeSpan MetadataOutageWindow { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Chunk registrations that failed are retried at this pace (with back-off up to 30 s).</summary>
    public TimeSpan RegistrationRetryInterval { get; set; } = TimeSpan.FromSeconds(1);
}
