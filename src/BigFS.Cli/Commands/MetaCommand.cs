using BigFS.Cli.Configuration;
using BigFS.Metadata;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>`bigfs meta --data DIR --listen HOST:PORT`: the metadata server, until SIGINT/SIGTERM.</summary>
public static class MetaCommand
{
    public static Task<int> RunAsync(string[] args, CancellationToken ct) => new DaemonRunner<MetadataServerOptions, MetadataServer>
    {
        Name = "meta",
        ConfigFile = "meta.json",
        ShortOptions = DaemonSettings.MetaShortOptions,
        Read = DaemonSettings.ReadMeta,
        Validate = o => DataDirectoryCheck.EnsureWritable("data_dir", o.DataDirectory),
        Listen = o => o.Listen,
        Start = (o, logs, token) => MetadataServer.StartAsync(o, logs, token),
        Describe = (server, log) =>
        {
            log.LogInformation("Metadata server serving at {Address}", server.Address);
            return $"serving at {server.Address}";
        },
        Stop = server => server.StopAsync(),
    }.RunAsync(args, ct);

    internal static async Task WaitForCancellation(CancellationToken ct)
    {
        try { await Task.Delay(Timeout.Infinite, ct); }
        catch (OperationCanceledException) { }
    }
}
