using System.Text;
using BigFS.Metadata.Model;

namespace BigFS.Metadata.Logic;

/// <summary>The entries of one directory, by name and in cookie order (for stable paged listing).</summary>
public sealed class DirectoryIndex
{
    private readonly Dictionary<string, DirentRecord> _byName = new(StringComparer.Ordinal);
    private readonly SortedList<long, DirentRecord> _byCookie = [];

    public int Count => _byName.Count;

    // Latin-1 maps every byte to one char: a cheap, exact dictionary key for byte names.
    public static string NameKey(ReadOnlySpan<byte> name) => Encoding.Latin1.GetString(name);

    public DirentRecord? Find(ReadOnlySpan<byte> name) => _byName.GetValueOrDefault(NameKey(name));

    public void Add(DirentRecord dirent)
    {
        _byName.Add(NameKey(dirent.Name), dirent);
        _byCookie.Add(dirent.Cookie, dirent);
    }

    public void Remove(DirentRecord dirent)
    {
        _byName.Remove(NameKey(dirent.Name));
        _byCookie.Remove(dirent.Cookie);
    }

    /// <summary>Entries with a cookie greater than <paramref name="after"/>, in cookie order.</summary>
    public IEnumerable<DirentRecord> After(long after)
    {
        // Binary search for the first cookie > after; stable whatever was inserted/removed meanwhile.
        var keys = _byCookie.Keys;
        int lo = 0, hi = keys.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (keys[mid] <= after) lo = mid + 1;
            else hi = mid;
        }
        for (var i = lo; i < _byCookie.Count; i++)
            yield return _byCookie.Values[i];
    }

    public IEnumerable<DirentRecord> All => _byName.Values;
}
