using BigFS.Core;

namespace BigFS.Storage;

/// <summary>The node id: generated on first start and kept in the data directory (file "node-id").</summary>
public static class NodeIdentity
{
    public static string LoadOrCreate(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, "node-id");
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path).Trim();
            if (text.Length is > 0 and <= 64 && text.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
                return text;
            throw new InvalidDataException($"'{path}' does not hold a valid node id");
        }
        var id = Guid.NewGuid().ToString("n");
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(id + "\n"));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        DirectorySync.Fsync(dataDirectory);
        return id;
    }
}
