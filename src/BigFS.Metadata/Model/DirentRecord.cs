namespace BigFS.Metadata.Model;

/// <summary>(parent, name) → child. Cookie orders a directory's entries stably for paged listing.</summary>
public sealed class DirentRecord
{
    public string Id { get; set; } = "";   // KeyOf(parent, name)
    public long Parent { get; set; }
    public byte[] Name { get; set; } = [];
    public long Child { get; set; }
    public long Cookie { get; set; }

    public static string KeyOf(long parent, ReadOnlySpan<byte> name) => $"{parent}/{Convert.ToHexString(name)}";

    public DirentRecord Clone() => (DirentRecord)MemberwiseClone();
}
