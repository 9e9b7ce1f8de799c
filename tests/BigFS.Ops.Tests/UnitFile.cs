namespace BigFS.Ops.Tests;

/// <summary>
/// The parts of a systemd unit file the tests need: settings by section and key (in order, a key
/// may repeat), with the instance specifiers %i / %I expanded, and ExecStart= split into words
/// the way systemd splits it (double quotes group, no shell).
/// </summary>
public sealed class UnitFile
{
    private readonly List<(string Section, string Key, string Value)> _settings;

    private UnitFile(string name, List<(string, string, string)> settings)
    {
        Name = name;
        _settings = settings;
    }

    public string Name { get; }

    public static UnitFile Load(string path, string? instance = null) => Parse(Path.GetFileName(path), File.ReadAllText(path), instance);

    public static UnitFile Parse(string name, string text, string? instance = null)
    {
        var settings = new List<(string, string, string)>();
        var section = "";
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            if (line[0] == '[') { section = line.Trim('[', ']'); continue; }
            var eq = line.IndexOf('=');
            if (eq < 0) throw new FormatException($"{name}: not a setting: {line}");
            var value = line[(eq + 1)..].Trim();
            if (instance is not null)
                value = value.Replace("%i", instance).Replace("%I", instance);
            settings.Add((section, line[..eq].Trim(), value));
        }
        return new UnitFile(name, settings);
    }

    public IReadOnlyList<string> All(string section, string key) =>
        _settings.Where(s => s.Section == section && s.Key == key).Select(s => s.Value).ToList();

    public string? Get(string section, string key) => All(section, key).LastOrDefault();

    public IReadOnlyList<string> ExecStart => SplitWords(Get("Service", "ExecStart") ?? throw new InvalidOperationException($"{Name}: no ExecStart="));

    /// <summary>Environment= assignments, later ones winning.</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get
        {
            var env = new Dictionary<string, string>();
            foreach (var line in All("Service", "Environment"))
                foreach (var word in SplitWords(line))
                {
                    var eq = word.IndexOf('=');
                    if (eq > 0) env[word[..eq]] = word[(eq + 1)..];
                }
            return env;
        }
    }

    public static List<string> SplitWords(string line)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        var quoted = false;
        var any = false;
        foreach (var c in line)
        {
            if (c == '"') { quoted = !quoted; any = true; continue; }
            if (char.IsWhiteSpace(c) && !quoted)
            {
                if (any) words.Add(current.ToString());
                current.Clear();
                any = false;
                continue;
            }
            current.Append(c);
            any = true;
        }
        if (quoted) throw new FormatException($"unbalanced quotes: {line}");
        if (any) words.Add(current.ToString());
        return words;
    }
}
