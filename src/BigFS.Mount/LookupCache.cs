using BigFS.Fuse;
using BigFS.Protocol;

namespace BigFS.Mount;

/// <summary>What a lookup in the cache found.</summary>
internal enum CachedLookup
{
    /// <summary>Not known here: ask the metadata server.</summary>
    Unknown,
    /// <summary>The name exists; its attributes are current.</summary>
    Found,
    /// <summary>The directory is known completely and has no such name.</summary>
    Absent,
}

/// <summary>
/// Names and attributes this mount has learned, kept until the metadata server's change feed
/// says another session changed them (or <see cref="MaxAge"/> passes, as a safety net), so
/// lookups — the most frequent call a kernel makes — are answered without a round trip.
/// <para>
/// Every change, ours or a notice of another session's, advances <see cref="Generation"/>;
/// what a call learned is kept only if no change happened while it was in flight, so a reply
/// that raced with a change is never cached. The cache is usable only while the feed is
/// connected (<see cref="Enable"/>); without it nothing is cached.
/// </para>
/// </summary>
internal sealed class LookupCache(int maxEntries, TimeSpan maxAge, TimeProvider time)
{
    private sealed class Directory
    {
        public readonly Dictionary<string, ulong> Names = new(StringComparer.Ordinal);
        /// <summary>Every name of the directory is in <see cref="Names"/>: a missing one does not exist (unless <see cref="Unsettled"/>).</summary>
        public bool Complete;
        /// <summary>
        /// Names of a complete directory that this mount is changing or failed to change: whether
        /// they exist is not known here until a reply says so (a failed rmdir leaves its name).
        /// </summary>
        public HashSet<string>? Unsettled;

        public bool IsUnsettled(string name) => Unsettled is { } u && u.Contains(name);

        public void Settle(string name) => Unsettled?.Remove(name);
    }

    private readonly record struct CachedAttr(InodeAttr Attr, long LearnedAt);

    private readonly Lock _sync = new();
    private readonly Dictionary<ulong, Directory> _directories = [];
    private readonly Dictionary<ulong, CachedAttr> _attrs = [];
    /// <summary>
    /// Extended attribute names known NOT to exist, per inode. The kernel asks for
    /// security.capability before every write to a FUSE file (to drop privileges), which
    /// was one metadata round trip per write.
    /// </summary>
    private readonly Dictionary<ulong, Dictionary<string, long>> _absentXattrs = [];
    private int _absentXattrCount;
    private int _names;
    private long _generation;
    private bool _enabled;

    private const int MaxNameBytes = 255;

    public TimeSpan MaxAge { get; } = maxAge;

    public long Generation
    {
        get { lock (_sync) return _generation; }
    }

    public bool Enabled
    {
        get { lock (_sync) return _enabled; }
    }

    /// <summary>The change feed is connected: from now on, what is learned may be kept.</summary>
    public void Enable()
    {
        lock (_sync)
        {
            ClearLocked();
            _enabled = true;
        }
    }

    /// <summary>The change feed is gone: nothing cached can be trusted any more.</summary>
    public void Disable()
    {
        lock (_sync)
        {
            ClearLocked();
            _enabled = false;
        }
    }

    public CachedLookup TryLookup(ulong parent, string name, out InodeAttr? attr)
    {
        attr = null;
        if (FileNameEncoding.GetByteCount(name) > MaxNameBytes)
            return CachedLookup.Unknown;   // the server answers with the right error
        lock (_sync)
        {
            if (!_enabled || !_directories.TryGetValue(parent, out var dir))
                return CachedLookup.Unknown;
            if (!dir.Names.TryGetValue(name, out var ino))
                return dir.Complete && !dir.IsUnsettled(name) ? CachedLookup.Absent : CachedLookup.Unknown;
            if (!_attrs.TryGetValue(ino, out var cached) || time.GetElapsedTime(cached.LearnedAt) > MaxAge)
                return CachedLookup.Unknown;
            attr = cached.Attr;
            return CachedLookup.Found;
        }
    }

    /// <summary>Called before this mount changes the namespace: replies already in flight are not cached.</summary>
    public long BeginChange()
    {
        lock (_sync)
            return ++_generation;
    }

    /// <summary>A lookup found <paramref name="name"/> in <paramref name="parent"/>; kept only if nothing changed meanwhile.</summary>
    public void LearnLookup(long generation, ulong parent, string name, InodeAttr attr)
    {
        lock (_sync)
        {
            if (!_enabled || generation != _generation)
                return;
            AddNameLocked(parent, name, attr.Ino);
            _attrs[attr.Ino] = new CachedAttr(attr, time.GetTimestamp());
        }
    }

    /// <summary>
    /// This mount made <paramref name="name"/> (create, mkdir, link, rename target). The name is
    /// recorded whatever happened meanwhile — a directory known completely must not miss it —
    /// but the attributes only if nothing changed while the call was in flight.
    /// </summary>
    public void LearnNewEntry(long generation, ulong parent, string name, InodeAttr attr, bool isNewDirectory = false)
    {
        lock (_sync)
        {
            if (!_enabled)
                return;
            AddNameLocked(parent, name, attr.Ino);
            if (generation != _generation)
            {
                _attrs.Remove(attr.Ino);
                return;
            }
            _attrs[attr.Ino] = new CachedAttr(attr, time.GetTimestamp());
            if (isNewDirectory && !_directories.ContainsKey(attr.Ino))
                _directories[attr.Ino] = new Directory { Complete = true };   // empty, so known completely
        }
    }

    private void AddNameLocked(ulong parent, string name, ulong ino)
    {
        if (_names >= maxEntries)
            ClearLocked();
        if (!_directories.TryGetValue(parent, out var dir))
            _directories[parent] = dir = new Directory();
        if (dir.Names.TryAdd(name, ino))
            _names++;
        else
            dir.Names[name] = ino;
        dir.Settle(name);
    }

    /// <summary>
    /// Attributes fetched or returned by a change (getattr, open, setattr, a directory after a
    /// create): kept if nothing changed while the call was in flight, else the old copy goes too.
    /// </summary>
    public void LearnAttr(long generation, InodeAttr? attr)
    {
        if (attr is null)
            return;
        lock (_sync)
        {
            if (!_enabled || generation != _generation)
            {
                _attrs.Remove(attr.Ino);
                return;
            }
            if (_attrs.Count >= maxEntries)
                ClearLocked();
            _attrs[attr.Ino] = new CachedAttr(attr, time.GetTimestamp());
        }
    }

    public bool TryGetAttr(ulong ino, out InodeAttr? attr)
    {
        lock (_sync)
        {
            if (_enabled && _attrs.TryGetValue(ino, out var cached) && time.GetElapsedTime(cached.LearnedAt) <= MaxAge)
            {
                attr = cached.Attr;
                return true;
            }
        }
        attr = null;
        return false;
    }

    public void ForgetAttr(ulong ino)
    {
        lock (_sync)
            _attrs.Remove(ino);
    }

    /// <summary>
    /// This mount is about to remove or replace <paramref name="name"/>: the name goes, and the
    /// attributes of the inode it named (its link count changes). If that inode is not known
    /// here, another cached name may still link to it, so every attribute goes. The name stays
    /// unknown — not absent — until <see cref="LearnRemoved"/> or a reply naming it.
    /// </summary>
    public void ForgetEntry(ulong parent, string name)
    {
        lock (_sync)
        {
            if (!_directories.TryGetValue(parent, out var dir))
            {
                _attrs.Clear();
                return;
            }
            if (dir.Complete)
                (dir.Unsettled ??= new(StringComparer.Ordinal)).Add(name);
            if (dir.Names.Remove(name, out var ino))
            {
                _names--;
                _attrs.Remove(ino);
                if (_directories.Remove(ino, out var removed))   // a removed directory: nothing below it is reachable by name
                    _names -= removed.Names.Count;
            }
            else if (!dir.Complete)
            {
                _attrs.Clear();
            }
        }
    }

    /// <summary>This mount's change removed <paramref name="name"/> from <paramref name="parent"/>: a complete directory may answer it absent again.</summary>
    public void LearnRemoved(ulong parent, string name)
    {
        lock (_sync)
            if (_directories.TryGetValue(parent, out var dir))
                dir.Settle(name);
    }

    /// <summary>Stands for every name in <see cref="_absentXattrs"/> (no extended attribute has an empty name).</summary>
    private const string AllXattrs = "";

    /// <summary>True when <paramref name="name"/> is known not to be an extended attribute of <paramref name="ino"/>.</summary>
    public bool IsXattrAbsent(ulong ino, string name)
    {
        lock (_sync)
            return _enabled && _absentXattrs.TryGetValue(ino, out var names)
                && (names.TryGetValue(name, out var learnedAt) || names.TryGetValue(AllXattrs, out learnedAt))
                && time.GetElapsedTime(learnedAt) <= MaxAge;
    }

    /// <summary>
    /// This mount just created <paramref name="ino"/>: it has no extended attributes, so the
    /// kernel's ask for <c>security.capability</c> before its first write needs no server call.
    /// Kept, like any absence, until this mount changes its attributes or the change feed names it.
    /// </summary>
    public void LearnNoXattrs(long generation, ulong ino) => LearnXattrAbsent(generation, ino, AllXattrs);

    /// <summary>The server said <paramref name="ino"/> has no attribute <paramref name="name"/>; kept if nothing changed meanwhile.</summary>
    public void LearnXattrAbsent(long generation, ulong ino, string name)
    {
        lock (_sync)
        {
            if (!_enabled || generation != _generation)
                return;
            if (_absentXattrCount >= maxEntries)
            {
                _absentXattrs.Clear();
                _absentXattrCount = 0;
            }
            if (!_absentXattrs.TryGetValue(ino, out var names))
                _absentXattrs[ino] = names = new Dictionary<string, long>(StringComparer.Ordinal);
            if (names.TryAdd(name, time.GetTimestamp()))
                _absentXattrCount++;
            else
                names[name] = time.GetTimestamp();
        }
    }

    /// <summary>This mount is changing <paramref name="ino"/>'s extended attributes: what is known goes, replies in flight are not kept.</summary>
    public void ForgetXattrs(ulong ino)
    {
        lock (_sync)
        {
            _generation++;
            ForgetXattrsLocked(ino);
        }
    }

    private void ForgetXattrsLocked(ulong ino)
    {
        if (_absentXattrs.Remove(ino, out var names))
            _absentXattrCount -= names.Count;
    }

    /// <summary>Another session changed these directories' entries and these inodes.</summary>
    public void Apply(ChangeNotice notice)
    {
        lock (_sync)
        {
            _generation++;
            if (notice.Reset)
            {
                ClearLocked();
                return;
            }
            foreach (var d in notice.Directories)
                if (_directories.Remove(d, out var dir))
                    _names -= dir.Names.Count;
            foreach (var i in notice.Inodes)
            {
                _attrs.Remove(i);
                ForgetXattrsLocked(i);
            }
        }
    }

    private void ClearLocked()
    {
        _generation++;
        _directories.Clear();
        _attrs.Clear();
        _absentXattrs.Clear();
        _absentXattrCount = 0;
        _names = 0;
    }
}
