using BigFS.Metadata;
using BigFS.Protocol;
using BigFS.Storage;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Configuration;

/// <summary>
/// The settings of each daemon, by the names of the design's configuration section, mapped
/// onto the component libraries' option classes. Contradictions are rejected here, at start.
/// </summary>
public static class DaemonSettings
{
    public const string ConfigDirectory = "/etc/bigfs";

    public static readonly Dictionary<string, string> MetaShortOptions = new()
    {
        ["--data"] = "data_dir",
        ["--listen"] = "listen",
        ["--fast-listen"] = "meta_fast_listen",
    };

    public static readonly Dictionary<string, string> NodeShortOptions = new()
    {
        ["--data"] = "data_dir",
        ["--listen"] = "listen",
        ["--meta"] = "meta",
        ["--advertise"] = "advertise_address",
        ["--data-listen"] = "data_listen",
        ["--capacity"] = "capacity",
        ["--labels"] = "labels",
    };

    public static readonly Dictionary<string, string> UpShortOptions = new()
    {
        ["--data"] = "data_dir",
        ["--port"] = "port",
        ["--nodes"] = "nodes",
        ["--mount"] = "mount",
        ["--goal"] = "goal",
        ["--min-copies-before-ack"] = "min_copies_before_ack",
        ["--chunk-size"] = "chunk_size",
        ["--meta-fast-listen"] = "meta_fast_listen",
        ["--meta-fast-unix"] = "meta_fast_unix",
        ["--log-level"] = "log_level",
    };

    /// <summary>
    /// `bigfs up`: one machine's whole cluster. Goal and copies before the ack default to what
    /// the nodes can give (3 and 2 with three nodes), and may not ask for more.
    /// </summary>
    public static LocalClusterSettings ReadUp(SettingsReader s)
    {
        var nodes = s.GetInt("nodes", 3, 1, 16);
        var goal = s.GetInt("goal", Math.Min(3, nodes), 1, 16);
        var minCopies = s.GetInt("min_copies_before_ack", Math.Min(2, goal), 1, 16);
        var settings = new LocalClusterSettings(
            DataDirectory: Path.GetFullPath(s.GetString("data_dir", ".bigfs")),
            Port: s.GetInt("port", 9000, 1, 65535 - 100 - nodes),
            Nodes: nodes,
            MountPoint: s.GetString("mount") is { } mount ? Path.GetFullPath(mount) : null,
            Goal: goal,
            MinCopiesBeforeAck: minCopies,
            ChunkSize: (int)Math.Min(int.MaxValue, s.GetSize("chunk_size", 4 * 1024 * 1024)),
            MetaFastListen: s.GetString("meta_fast_listen"),
            MetaFastUnix: s.GetBool("meta_fast_unix", true),
            LogLevel: ReadLogLevel(s));
        s.RejectUnknownKeys();
        if (goal > nodes)
            throw new ConfigurationError("goal", $"{goal} copies need at least {goal} storage nodes (nodes is {nodes})");
        CheckMinCopies(minCopies, goal);
        CheckChunkSize(settings.ChunkSize);
        return settings;
    }

    public static MetadataServerOptions ReadMeta(SettingsReader s)
    {
        var o = new MetadataServerOptions
        {
            DataDirectory = s.RequireString("data_dir", "--data DIR"),
            Listen = ReadAddress(s, "listen", "127.0.0.1:9000"),
            FastListen = ReadOptionalListen(s, "meta_fast_listen", MetadataServerOptions.NoFastListener),
            FastListenUnix = s.GetBool("meta_fast_unix", true),
            ChunkSize = (int)Math.Min(int.MaxValue, s.GetSize("chunk_size", 4 * 1024 * 1024)),
            DefaultGoal = s.GetInt("goal", 3, 1, 16),
            MinCopiesBeforeAck = s.GetInt("min_copies_before_ack", 2, 1, 16),
            HeartbeatInterval = s.GetDuration("heartbeat_interval", TimeSpan.FromSeconds(15)),
            HeartbeatTimeout = s.GetDuration("heartbeat_timeout", TimeSpan.FromSeconds(30)),
            DeadTimeout = s.GetDuration("dead_timeout", TimeSpan.FromSeconds(120)),
            ReplicaConfirmationTimeout = s.GetDuration("replica_confirmation_timeout", TimeSpan.FromSeconds(30)),
            MaxReplicaConfirmationRetries = s.GetInt("max_replica_confirmation_retries", 3, 0, 100),
            CleanupInterval = s.GetDuration("cleanup_interval", TimeSpan.FromSeconds(60)),
            TimestampHeuristicThreshold = s.GetDuration("timestamp_heuristic_threshold", TimeSpan.FromSeconds(300)),
            UncommittedChunkGrace = s.GetDuration("uncommitted_chunk_grace", TimeSpan.FromHours(1)),
            SessionLease = s.GetDuration("session_lease", TimeSpan.FromSeconds(60)),
            LockReclaimGrace = s.GetDuration("lock_reclaim_grace", TimeSpan.FromSeconds(10)),
        };
        s.GetString("log_level");
        s.RejectUnknownKeys();

        CheckChunkSize(o.ChunkSize);
        CheckMinCopies(o.MinCopiesBeforeAck, o.DefaultGoal);
        if (o.HeartbeatTimeout <= o.HeartbeatInterval)
            throw new ConfigurationError("heartbeat_timeout", $"must be longer than heartbeat_interval ({o.HeartbeatInterval.TotalSeconds}s)");
        if (o.DeadTimeout < o.HeartbeatTimeout)
            throw new ConfigurationError("dead_timeout", $"must not be shorter than heartbeat_timeout ({o.HeartbeatTimeout.TotalSeconds}s)");
        if (o.TimestampHeuristicThreshold <= o.HeartbeatInterval)
            throw new ConfigurationError("timestamp_heuristic_threshold", "must be longer than heartbeat_interval");
        return o;
    }

    public static StorageNodeOptions ReadNode(SettingsReader s)
    {
        var o = new StorageNodeOptions
        {
            DataDirectory = s.RequireString("data_dir", "--data DIR"),
            Listen = ReadAddress(s, "listen", "127.0.0.1:9100"),
            MetadataAddress = ReadAddress(s, "meta", "127.0.0.1:9000", allowHostName: true),
            AdvertiseAddress = s.GetString("advertise_address"),
            DataListen = ReadDataListen(s),
            CapacityBytes = s.GetSize("capacity", 0),
            Labels = s.GetList("labels"),
            InventoryInterval = s.GetDuration("inventory_interval", TimeSpan.FromMinutes(10)),
            MinCopiesBeforeAck = s.GetInt("min_copies_before_ack", 2, 1, 16),
            MetadataOutageWindow = s.GetDuration("meta_outage_timeout", TimeSpan.FromSeconds(60), allowZero: true),
        };
        s.GetString("log_level");
        s.RejectUnknownKeys();
        if (!o.MetadataAddress.StartsWith("http", StringComparison.Ordinal))
            o.MetadataAddress = "http://" + o.MetadataAddress;
        return o;
    }

    /// <summary>The bulk data listener: host:port, "none", or unset (gRPC port + 1000 on the same host).</summary>
    private static string? ReadDataListen(SettingsReader s) => ReadOptionalListen(s, "data_listen", StorageNodeOptions.NoDataListener);

    /// <summary>A second listener beside gRPC: host:port, the word for none, or unset (the component's default).</summary>
    private static string? ReadOptionalListen(SettingsReader s, string key, string none)
    {
        var text = s.GetString(key);
        if (text is null || string.Equals(text, none, StringComparison.OrdinalIgnoreCase))
            return text;
        return ReadAddress(s, key, text);
    }

    /// <summary>
    /// host:port (or http://host:port). A listen address needs a numeric IP, localhost or
    /// 0.0.0.0/* (Kestrel binds to addresses); an address to dial may be a DNS name.
    /// </summary>
    private static string ReadAddress(SettingsReader s, string key, string fallback, bool allowHostName = false)
    {
        var text = s.GetString(key, fallback);
        try
        {
            var (host, _) = GrpcServerHost.ParseListen(text);
            var isIp = System.Net.IPAddress.TryParse(host.Trim('[', ']'), out _);
            if (allowHostName ? !isIp && Uri.CheckHostName(host) != UriHostNameType.Dns
                              : !isIp && host is not ("*" or "" or "localhost"))
                throw new ConfigurationError(key, $"'{text}': '{host}' is not {(allowHostName ? "a host name or IP address" : "an IP address")}");
            return text;
        }
        catch (FormatException)
        {
            throw new ConfigurationError(key, $"'{text}' is not host:port (e.g. 127.0.0.1:9000)");
        }
    }

    private static void CheckMinCopies(int minCopies, int goal)
    {
        if (minCopies > goal)
            throw new ConfigurationError("min_copies_before_ack", $"{minCopies} is more than goal ({goal})");
    }

    private static void CheckChunkSize(int size)
    {
        if (size < 64 * 1024 || size > 64 * 1024 * 1024 || size % (64 * 1024) != 0)
            throw new ConfigurationError("chunk_size", "must be a multiple of 64KiB between 64KiB and 64MiB");
    }

    public static LogLevel ReadLogLevel(SettingsReader s)
    {
        var text = s.GetString("log_level");
        if (text is null) return LogLevel.Information;
        return Enum.TryParse<LogLevel>(text, ignoreCase: true, out var level)
            ? level
            : throw new ConfigurationError("log_level", $"'{text}' is not one of {string.Join(", ", Enum.GetNames<LogLevel>())}");
    }
}
