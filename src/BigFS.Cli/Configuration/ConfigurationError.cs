namespace BigFS.Cli.Configuration;

/// <summary>A configuration value that cannot be used. The message names the key; the daemon stops with it.</summary>
public sealed class ConfigurationError(string key, string message) : Exception($"{key}: {message}")
{
    public string Key { get; } = key;
}
