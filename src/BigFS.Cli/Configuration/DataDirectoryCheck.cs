namespace BigFS.Cli.Configuration;

/// <summary>
/// Checks at start that the data directory can be created and written, so a wrong path or a
/// read-only mount stops the daemon with one line naming data_dir instead of a failure deep
/// inside the store.
/// </summary>
public static class DataDirectoryCheck
{
    public static void EnsureWritable(string key, string path)
    {
        try
        {
            Directory.CreateDirectory(path);
            var probe = Path.Combine(path, $".write-probe-{Environment.ProcessId}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationError(key, $"'{path}' is not a writable directory ({e.Message.TrimEnd('.')})");
        }
    }
}
