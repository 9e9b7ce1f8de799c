namespace BigFS.Fuse.Mounting;

/// <summary>Reads /proc/self/mountinfo: which device (major:minor) is mounted at a path.</summary>
public static class MountInfo
{
    /// <summary>The "major:minor" of the filesystem mounted exactly at <paramref name="mountPoint"/> (the last such mount), or null.</summary>
    public static string? FindDevice(string mountPoint, string mountInfoText)
    {
        string? device = null;
        foreach (var line in mountInfoText.Split('\n'))
        {
            var fields = line.Split(' ');
            if (fields.Length < 5) continue;
            if (Unescape(fields[4]) == mountPoint) device = fields[2];
        }
        return device;
    }

    public static string? FindDevice(string mountPoint) => FindDevice(mountPoint, File.ReadAllText("/proc/self/mountinfo"));

    public static bool IsMounted(string mountPoint) => FindDevice(mountPoint) is not null;

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo octal.</summary>
    public static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var sb = new System.Text.StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length
                && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                sb.Append((char)((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0')));
                i += 3;
            }
            else sb.Append(field[i]);
        }
        return sb.ToString();
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}
