using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace BigFS.Cli.Configuration;

/// <summary>
/// Reads typed settings by key with clear errors (the key and what was expected), and reports
/// keys nobody asked for: a typo in a configuration file must stop the daemon, not be ignored.
/// </summary>
public sealed class SettingsReader(IConfiguration configuration, IReadOnlySet<string> explicitKeys, string? file)
{
    private readonly HashSet<string> _known = new(StringComparer.OrdinalIgnoreCase);

    public string? File { get; } = file;

    public string? GetString(string key)
    {
        _known.Add(key);
        var section = configuration.GetSection(key);
        // An object or array where a single value belongs would otherwise read as "not set".
        if (section.GetChildren().Any())
            throw new ConfigurationError(key, "expected a single value, not an object or a list");
        var value = section.Value;
        return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
    }

    public string GetString(string key, string fallback) => GetString(key) ?? fallback;

    public string RequireString(string key, string hint) =>
        GetString(key) ?? throw new ConfigurationError(key, $"required ({hint})");

    public int GetInt(string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var text = GetString(key);
        if (text is null) return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            throw new ConfigurationError(key, $"'{text}' is not a whole number");
        if (value < min || value > max)
            throw new ConfigurationError(key, $"{value} is out of range [{min}, {max}]");
        return value;
    }

    public bool GetBool(string key, bool fallback)
    {
        var text = GetString(key);
        if (text is null) return fallback;
        return text.ToLowerInvariant() switch
        {
            "true" or "yes" or "on" or "1" => true,
            "false" or "no" or "off" or "0" => false,
            _ => throw new ConfigurationError(key, $"'{text}' is not true or false"),
        };
    }

    public TimeSpan GetDuration(string key, TimeSpan fallback, bool allowZero = false)
    {
        var text = GetString(key);
        if (text is null) return fallback;
        var value = ParseDuration(text) ?? throw new ConfigurationError(key, $"'{text}' is not a duration (e.g. 500ms, 30s, 5m, 1h)");
        if (value < TimeSpan.Zero || (value == TimeSpan.Zero && !allowZero))
            throw new ConfigurationError(key, allowZero ? "must not be negative" : "must be positive");
        return value;
    }

    public long GetSize(string key, long fallback)
    {
        var text = GetString(key);
        if (text is null) return fallback;
        return ParseSize(text) ?? throw new ConfigurationError(key, $"'{text}' is not a size (e.g. 4MiB, 512KiB, 10GiB, or bytes)");
    }

    public List<string> GetList(string key)
    {
        _known.Add(key);
        var section = configuration.GetSection(key);
        if (section.GetChildren().Any(c => c.GetChildren().Any()))
            throw new ConfigurationError(key, "expected a list of strings or a comma-separated string");
        var children = section.GetChildren().Select(c => c.Value).Where(v => !string.IsNullOrWhiteSpace(v)).Select(v => v!.Trim()).ToList();
        if (children.Count > 0) return children;
        return section.Value is { } single
            ? single.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList()
            : [];
    }

    /// <summary>Throws for the first key given in the file or on the command line that no setting read.</summary>
    public void RejectUnknownKeys()
    {
        foreach (var key in explicitKeys.Order())
        {
            var top = key.Split(':')[0];
            if (!_known.Contains(top))
                throw new ConfigurationError(key, $"unknown setting{(File is null ? "" : $" (in {File} or the command line)")}; known: {string.Join(", ", _known.Order())}");
        }
    }

    public static TimeSpan? ParseDuration(string text)
    {
        text = text.Trim();
        (string Suffix, double Seconds)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)];
        foreach (var (suffix, seconds) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
                && !(suffix == "m" && text.EndsWith("ms", StringComparison.OrdinalIgnoreCase)))
                return TimeSpan.FromSeconds(n * seconds);
        }
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var plainSeconds))
            return TimeSpan.FromSeconds(plainSeconds);
        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var ts) ? ts : null;
    }

    public static long? ParseSize(string text)
    {
        text = text.Trim();
        (string Suffix, long Bytes)[] units =
        [
            ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("TiB", 1L << 40),
            ("KB", 1000), ("MB", 1000_000), ("GB", 1000_000_000), ("TB", 1000_000_000_000),
            ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30), ("T", 1L << 40), ("B", 1),
        ];
        foreach (var (suffix, bytes) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
                return (long)(n * bytes);
        }
        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var plain) && plain >= 0 ? plain : null;
    }
}
