using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Configuration;

/// <summary>What `bigfs up` runs: the cluster's shape and the few settings worth a what-if on one machine.</summary>
public sealed record LocalClusterSettings(
    string DataDirectory,
    int Port,
    int Nodes,
    string? MountPoint,
    int Goal,
    int MinCopiesBeforeAck,
    int ChunkSize,
    string? MetaFastListen,
    bool MetaFastUnix,
    LogLevel LogLevel);
