namespace BigFS.Storage;

/// <summary>
/// An exclusive lock on a data directory (flock through FileShare.None on Linux), so two
/// storage nodes never share one directory.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _file;

    private DataDirectoryLock(FileStream file) => _file = file;

    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "node.lock");
        try
        {
            return new DataDirectoryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException ex)
        {
            throw new IOException($"data directory '{dataDirectory}' is in use by another storage node (lock file {path})", ex);
        }
    }

    public void Dispose() => _file.Dispose();
}
