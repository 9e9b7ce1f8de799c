using Microsoft.Extensions.Configuration;

namespace BigFS.Cli.Configuration;

/// <summary>
/// The standard .NET configuration stack for a daemon: a JSON file (default under /etc/bigfs),
/// then BIGFS_-prefixed environment variables, then the command line. Keys are the snake_case
/// names of the design's configuration section (heartbeat_timeout, chunk_size, …).
/// </summary>
public static class DaemonConfiguration
{
    /// <param name="defaultFile">Used when --config is not given; missing is fine. A --config file must exist.</param>
    /// <param name="shortOptions">Command-line spellings, e.g. "--data" → "data_dir".</param>
    public static SettingsReader Load(string[] args, string defaultFile, IDictionary<string, string> shortOptions)
    {
        var (configFile, rest) = ExtractConfigOption(args);
        var explicitFile = configFile is not null;
        configFile ??= Environment.GetEnvironmentVariable("BIGFS_CONFIG") ?? defaultFile;

        foreach (var arg in rest)
        {
            if (!arg.StartsWith("--", StringComparison.Ordinal) && !arg.StartsWith('-') && !IsValueOfPrevious(rest, arg))
                throw new ConfigurationError(arg, "unexpected argument (options are --key value)");
        }

        var builder = new ConfigurationBuilder();
        var fileKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (File.Exists(configFile))
        {
            var fileOnly = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
            try
            {
                foreach (var (key, _) in fileOnly.Build().AsEnumerable())
                    if (!key.Contains(':')) fileKeys.Add(key);
            }
            catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
            {
                throw new ConfigurationError(configFile, $"not valid JSON ({FirstLine(e)})");
            }
            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }
        else if (explicitFile)
        {
            throw new ConfigurationError(configFile, "configuration file not found");
        }

        builder.AddEnvironmentVariables("BIGFS_");
        var commandLineKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        IConfiguration commandLine;
        try
        {
            commandLine = new ConfigurationBuilder().AddCommandLine(rest, shortOptions).Build();
        }
        catch (FormatException e)
        {
            throw new ConfigurationError("command line", FirstLine(e));
        }
        foreach (var (key, _) in commandLine.AsEnumerable())
            commandLineKeys.Add(key);
        builder.AddCommandLine(rest, shortOptions);

        IConfiguration configuration;
        try
        {
            configuration = builder.Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException)
        {
            throw new ConfigurationError(configFile, FirstLine(e));
        }
        // Unknown keys are errors when they come from the file or the command line; the
        // environment is shared by every process and may hold anything.
        return new SettingsReader(configuration, fileKeys.Concat(commandLineKeys).ToHashSet(StringComparer.OrdinalIgnoreCase),
            File.Exists(configFile) ? configFile : null);
    }

    private static (string? File, string[] Remaining) ExtractConfigOption(string[] args)
    {
        string? file = null;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--config")
            {
                if (i + 1 >= args.Length) throw new ConfigurationError("--config", "needs a file name");
                file = args[++i];
            }
            else if (args[i].StartsWith("--config=", StringComparison.Ordinal))
                file = args[i]["--config=".Length..];
            else
                rest.Add(args[i]);
        }
        return (file, rest.ToArray());
    }

    private static bool IsValueOfPrevious(string[] args, string arg)
    {
        var i = Array.IndexOf(args, arg);
        return i > 0 && args[i - 1].StartsWith('-') && !args[i - 1].Contains('=');
    }

    private static string FirstLine(Exception e) => e.Message.Split('\n')[0].Trim();
}
