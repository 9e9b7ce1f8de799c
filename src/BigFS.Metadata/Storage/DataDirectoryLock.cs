namespace BigFS.Metadata.Storage;

/// <summary>
/// An exclusive lock on the data directory (LiteDB direct mode takes none): a lock file held
/// open with FileShare.None, which .NET implements with flock(LOCK_EX) on Linux.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    public const string FileName = "metadata.lock";
    private readonly FileStream _file;

    private DataDirectoryLock(FileStream file) => _file = file;

    public static DataDirectoryLock Acquire(string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        try
        {
            var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            file.SetLength(0);
            using (var w = new StreamWriter(file, leaveOpen: true))
                w.Write(Environment.ProcessId);
            file.Flush();
            return new DataDirectoryLock(file);
        }
        catch (IOException ex)
        {
            throw new IOException(
                $"metadata data directory '{directory}' is in use by another metadata server (lock file {path} is held)", ex);
        }
    }

    public void Dispose() => _file.Dispose();
}
