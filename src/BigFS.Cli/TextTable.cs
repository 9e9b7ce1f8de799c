using System.Text;

namespace BigFS.Cli;

/// <summary>A plain aligned text table for terminal output.</summary>
public sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Add(params string[] cells) => _rows.Add(cells);

    public string Render()
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        AppendRow(sb, headers, widths);
        foreach (var row in _rows)
            AppendRow(sb, row, widths);
        return sb.ToString().TrimEnd('\n');
    }

    private static void AppendRow(StringBuilder sb, string[] cells, int[] widths)
    {
        for (var i = 0; i < cells.Length; i++)
        {
            sb.Append(cells[i].PadRight(widths[i]));
            if (i < cells.Length - 1) sb.Append("  ");
        }
        sb.Append('\n');
    }
}

public static class Units
{
    public static string Bytes(ulong bytes) => Bytes((double)bytes);

    public static string Bytes(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        var i = 0;
        while (bytes >= 1024 && i < units.Length - 1) { bytes /= 1024; i++; }
        return i == 0 ? $"{bytes:0} B" : $"{bytes:0.0} {units[i]}";
    }
}
