using BigFS.Cli.Configuration;
using BigFS.Mount;
using Microsoft.Extensions.Logging;

namespace BigFS.Cli.Commands;

/// <summary>
/// `bigfs mount META_ADDR MOUNTPOINT [-o opt,opt=value]`: the mount daemon, in the foreground
/// until SIGINT/SIGTERM or `umount`. `-o` takes fstab-style options.
/// </summary>
public static class MountCommand
{
    // Generic options mount(8) and fstab pass along that mean nothing to the daemon.
    private static readonly HashSet<string> GenericMountOptions =
        ["defaults", "rw", "_netdev", "nofail", "noauto", "auto", "user", "nouser", "users", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "async", "sync", "default_permissions"];

    public static readonly Dictionary<string, string> ShortOptions = new()
    {
        ["--meta"] = "meta",
        ["--attr-timeout"] = "attr_timeout",
        ["--entry-timeout"] = "entry_timeout",
    };

    public static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        if (args.Contains("--background"))
            return await BackgroundLauncher.RunAsync([.. args.Where(a => a != "--background")], ct);

        string[] normalized;
        try
        {
            normalized = Normalize(args);
        }
        catch (ConfigurationError e)
        {
            Console.Error.WriteLine($"bigfs mount: configuration error: {e.Message}");
            return 2;
        }
        return await new DaemonRunner<BigFsMountOptions, BigFsMount>
        {
            Name = "mount",
            ConfigFile = "mount.json",
            ShortOptions = ShortOptions,
            Read = Read,
            Listen = _ => null,
            Start = (o, logs, token) =>
            {
                s_heapGovernor ??= new ManagedHeapGovernor(HeapSoftLimitFor(o));
                return BigFsMount.StartAsync(o, logs, token);
            },
            Describe = (mount, log) => $"mounted at {mount.MountPoint}",
            Completion = mount => mount.Completion,   // `umount` ends the daemon too
            // Flushes every open file's dirty data, then unmounts.
            Stop = mount => mount.StopAsync(),
        }.RunAsync(normalized, ct);
    }

    private const long HeapHeadroom = 64L << 20;
    /// <summary>Held for the life of the process (a timer nobody references may be collected).</summary>
    private static ManagedHeapGovernor? s_heapGovernor;

    /// <summary>
    /// The heap size past which the mount daemon collects in full (<see cref="ManagedHeapGovernor"/>):
    /// both data budgets plus headroom for everything else (FUSE request buffers, chunk
    /// assembly, read-ahead, RPC buffers).
    /// </summary>
    internal static long HeapSoftLimitFor(BigFsMountOptions o) => o.WriteBufferBytes + o.ChunkCacheBytes + HeapHeadroom;

    /// <summary>Positional META_ADDR MOUNTPOINT and `-o a,b=c` become configuration keys.</summary>
    internal static string[] Normalize(string[] args)
    {
        var result = new List<string>();
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "-o")
            {
                if (i + 1 >= args.Length) throw new ConfigurationError("-o", "needs a list of options");
                foreach (var opt in args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var eq = opt.IndexOf('=');
                    var (key, value) = eq < 0 ? (opt, "true") : (opt[..eq], opt[(eq + 1)..]);
                    if (GenericMountOptions.Contains(key)) continue;
                    if (key == "ro") (key, value) = ("read_only", "true");
                    result.Add($"--{key}={value}");
                }
            }
            else if (a.StartsWith('-'))
            {
                result.Add(a);
                if (!a.Contains('=') && i + 1 < args.Length && !args[i + 1].StartsWith('-') && a != "--config")
                    result.Add(args[++i]);
                else if (a == "--config" && i + 1 < args.Length)
                    result.Add(args[++i]);
            }
            else
            {
                positional.Add(a);
            }
        }
        if (positional.Count > 2)
            throw new ConfigurationError(positional[2], "unexpected argument (usage: bigfs mount META_ADDR MOUNTPOINT [-o options])");
        if (positional.Count == 2)
            result.AddRange(["--meta", positional[0], "--mount_point", positional[1]]);
        else if (positional.Count == 1)
            result.AddRange(["--mount_point", positional[0]]);
        return [.. result];
    }

    private static BigFsMountOptions Read(SettingsReader s)
    {
        var meta = s.GetString("meta", "127.0.0.1:9000");
        var options = new BigFsMountOptions
        {
            MetadataAddress = meta.StartsWith("http", StringComparison.Ordinal) ? meta : "http://" + meta,
            MountPoint = s.RequireString("mount_point", "bigfs mount META_ADDR MOUNTPOINT"),
            AttrTimeout = s.GetDuration("attr_timeout", TimeSpan.FromSeconds(1)),
            EntryTimeout = s.GetDuration("entry_timeout", TimeSpan.FromSeconds(1)),
            AllowOther = GetBool(s, "allow_other", Environment.UserName == "root"),
            ReadOnly = GetBool(s, "read_only", false),
            LocalLocks = GetBool(s, "local_locks", false),
            WriteBufferBytes = s.GetSize("write_buffer", 128L << 20),
            ChunkCacheBytes = s.GetSize("chunk_cache", 128L << 20),
            FillPageCache = GetBool(s, "fill_page_cache", true),
            LookupCacheEntries = s.GetInt("lookup_cache_entries", 200_000, min: 0),
            LookupCacheMaxAge = s.GetDuration("lookup_cache_max_age", TimeSpan.FromSeconds(60)),
            MetadataOutageWindow = s.GetDuration("meta_outage_timeout", TimeSpan.FromSeconds(60), allowZero: true),
            StorageOutageWindow = s.GetDuration("node_outage_timeout", TimeSpan.FromSeconds(60), allowZero: true),
        };
        s.GetString("log_level");
        s.RejectUnknownKeys();
        if (!Directory.Exists(options.MountPoint))
            throw new ConfigurationError("mount_point", $"{options.MountPoint} is not a directory");
        return options;
    }

    private static bool GetBool(SettingsReader s, string key, bool fallback) => s.GetString(key) switch
    {
        null => fallback,
        "true" or "1" or "yes" or "on" => true,
        "false" or "0" or "no" or "off" => false,
        var other => throw new ConfigurationError(key, $"'{other}' is not true or false"),
    };
}
