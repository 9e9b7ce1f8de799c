namespace BigFS.Cli;

/// <summary>
/// Minimal parsing for the admin commands: `--name value` / `--name=value` options and
/// positional arguments. Daemons use the .NET configuration stack instead (see DaemonConfiguration).
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public List<string> Positional { get; } = [];

    public CommandLine(string[] args, IReadOnlySet<string> valueOptions, IReadOnlySet<string>? flags = null)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                Positional.AddRange(args[(i + 1)..]);
                break;
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                Positional.Add(arg);
                continue;
            }
            var eq = arg.IndexOf('=');
            var name = eq > 0 ? arg[2..eq] : arg[2..];
            if (flags?.Contains(name) == true && eq < 0)
            {
                _flags.Add(name);
                continue;
            }
            if (!valueOptions.Contains(name))
                throw new CliUsageException($"unknown option --{name}");
            string value;
            if (eq > 0) value = arg[(eq + 1)..];
            else if (i + 1 < args.Length) value = args[++i];
            else throw new CliUsageException($"option --{name} needs a value");
            if (!_options.TryGetValue(name, out var list))
                _options[name] = list = [];
            list.Add(value);
        }
    }

    public string? Get(string name) => _options.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> GetAll(string name) => _options.TryGetValue(name, out var v) ? v : [];

    public bool Has(string name) => _flags.Contains(name);

    public string MetaAddress =>
        Get("meta") ?? Environment.GetEnvironmentVariable("BIGFS_META") ?? "http://127.0.0.1:9000";

    public int GetInt(string name, int fallback) =>
        Get(name) is { } s ? int.TryParse(s, out var v) ? v : throw new CliUsageException($"--{name} must be a number, not '{s}'") : fallback;
}
