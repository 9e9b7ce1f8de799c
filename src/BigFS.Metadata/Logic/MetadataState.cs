using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using BigFS.Protocol;

namespace BigFS.Metadata.Logic;

/// <summary>
/// All metadata, in memory, guarded by <see cref="Sync"/>. Operations mutate it under the lock
/// and mark what they touched; <see cref="CommitAsync"/> (also under the lock) snapshots the
/// touched records into one batch for the group-commit writer, so batches reach the store in
/// mutation order. Callers await the returned task outside the lock before replying.
/// </summary>
public sealed class MetadataState
{
    public const long RootIno = 1;

    public Lock Sync { get; } = new();
    public MetadataServerOptions Options { get; }
    public TimeProvider Time { get; }
    public long StartedMs { get; }
    /// <summary>Mounts watching for other sessions' changes.</summary>
    public ChangeFeed Feed { get; } = new();

    public Dictionary<long, InodeRecord> Inodes { get; } = [];
    public Dictionary<long, DirectoryIndex> Directories { get; } = [];
    public Dictionary<long, ExtentMap> Layouts { get; } = [];
    /// <summary>Chunk id → inodes whose layout references it.</summary>
    public Dictionary<string, HashSet<long>> ChunkRefs { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, ChunkRecord> Chunks { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, NodeRecord> Nodes { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, SessionRecord> Sessions { get; } = new(StringComparer.Ordinal);
    /// <summary>Inode → number of opens over all live sessions.</summary>
    public Dictionary<long, int> OpenCounts { get; } = [];
    /// <summary>Advisory locks (memory only; mounts reclaim theirs after a restart).</summary>
    public LockManager Locks { get; }
    public CountersRecord Counters { get; private set; } = new();
    /// <summary>The reply cache: (session, slot) key → the last reply run there (<see cref="ReplyCache"/>).</summary>
    public Dictionary<string, ReplyRecord> Replies { get; } = new(StringComparer.Ordinal);

    private readonly IChangeLog _log;
    private readonly NodeLivenessClock _liveness;
    private readonly HashSet<long> _dirtyInodes = [];
    /// <summary>Directories whose entries changed since the last commit (for the change feed).</summary>
    private readonly HashSet<long> _changedDirectories = [];
    /// <summary>The names behind <see cref="_changedDirectories"/>, for the change feed only (kept while someone watches, up to a bound).</summary>
    private readonly List<DirentRecord> _changedNames = [];
    private const int MaxChangedNamesPerChange = 64;
    private readonly Dictionary<string, DirentRecord?> _dirtyDirents = new(StringComparer.Ordinal);
    private readonly Dictionary<long, (long Lo, long Hi)> _dirtyLayouts = [];
    private readonly HashSet<string> _dirtyChunks = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirtyNodes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirtyReplies = new(StringComparer.Ordinal);
    private bool _dirtyCounters;

    public MetadataState(MetadataServerOptions options, TimeProvider time, MetadataSnapshot snapshot,
        IChangeLog log)
    {
        Options = options;
        Time = time;
        StartedMs = NowMs;
        _liveness = new NodeLivenessClock(StartedMs, options.HeartbeatTimeout, options.DeadTimeout);
        _log = log;
        Load(snapshot);
        // Only a restart over a namespace in use can have had locks to reclaim.
        var reclaiming = Inodes.Count > 1 || Counters.NextInode > 2;
        var grace = TimeSpan.FromTicks(Math.Min(options.LockReclaimGrace.Ticks, options.SessionLease.Ticks));
        Locks = new LockManager(time, reclaiming ? StartedMs + (long)grace.TotalMilliseconds : StartedMs);
    }

    public long NowMs => Time.GetUtcNow().ToUnixTimeMilliseconds();
    public long NowNs => (Time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100;

    private void Load(MetadataSnapshot s)
    {
        if (s.Counters is not null)
            Counters = s.Counters.Clone();
        foreach (var inode in s.Inodes)
        {
            Inodes[inode.Id] = inode;
            if (inode.Type == (int)InodeType.Directory)
                Directories[inode.Id] = new DirectoryIndex();
            Counters.NextInode = Math.Max(Counters.NextInode, inode.Id + 1);
        }
        foreach (var d in s.Dirents)
        {
            if (Directories.TryGetValue(d.Parent, out var dir))
                dir.Add(d);
            Counters.NextCookie = Math.Max(Counters.NextCookie, d.Cookie + 1);
        }
        foreach (var group in s.Layouts.GroupBy(r => r.Ino))
        {
            var extents = group.OrderBy(r => r.Region).SelectMany(r => r.Extents)
                .Select(e => new FileExtent(e.FileOffset, e.Length, e.ChunkId, e.ChunkOffset));
            var map = new ExtentMap(extents.OrderBy(e => e.FileOffset));
            Layouts[group.Key] = map;
            if (Inodes.TryGetValue(group.Key, out var owner))
                owner.StoredBytes = map.StoredBytes;
            foreach (var id in map.ChunkIds())
                RefsOf(id).Add(group.Key);
        }
        foreach (var c in s.Chunks)
            Chunks[c.Id] = c;
        foreach (var n in s.Nodes)
            Nodes[n.Id] = n;
        foreach (var r in s.Replies ?? [])
            Replies[r.Id] = r;

        if (!Inodes.ContainsKey(RootIno))
        {
            var now = NowNs;
            Inodes[RootIno] = new InodeRecord
            {
                Id = RootIno, Type = (int)InodeType.Directory, Mode = 0x1ED /* 0755 */, Nlink = 2,
                AtimeNs = now, MtimeNs = now, CtimeNs = now, Goal = Options.DefaultGoal, Parent = RootIno,
            };
            Directories[RootIno] = new DirectoryIndex();
            MarkInode(RootIno);
            _dirtyCounters = true;
        }
    }

    private HashSet<long> RefsOf(string chunkId)
    {
        if (!ChunkRefs.TryGetValue(chunkId, out var refs))
            ChunkRefs[chunkId] = refs = [];
        return refs;
    }

    public long AllocateInode()
    {
        _dirtyCounters = true;
        return Counters.NextInode++;
    }

    public void MarkInode(long ino) => _dirtyInodes.Add(ino);
    public void MarkChunk(string id) => _dirtyChunks.Add(id);
    public void MarkNode(string id) => _dirtyNodes.Add(id);
    public void MarkReply(string key) => _dirtyReplies.Add(key);

    /// <summary>True when something was changed (under the lock) that the next commit will store.</summary>
    public bool HasUncommittedChanges => _dirtyInodes.Count > 0 || _dirtyDirents.Count > 0 || _dirtyLayouts.Count > 0
        || _dirtyChunks.Count > 0 || _dirtyNodes.Count > 0 || _dirtyCounters;

    public void MarkLayout(long ino, long lo, long hi)
    {
        if (hi <= lo)
            return;
        _dirtyLayouts[ino] = _dirtyLayouts.TryGetValue(ino, out var r) ? (Math.Min(r.Lo, lo), Math.Max(r.Hi, hi)) : (lo, hi);
    }

    public DirentRecord AddDirent(long parent, ReadOnlySpan<byte> name, long child)
    {
        _dirtyCounters = true;
        var d = new DirentRecord
        {
            Id = DirentRecord.KeyOf(parent, name), Parent = parent, Name = name.ToArray(), Child = child,
            Cookie = Counters.NextCookie++,
        };
        Directories[parent].Add(d);
        _dirtyDirents[d.Id] = d;
        NameChanged(d);
        return d;
    }

    /// <summary>Persists an in-place change of a dirent (its child, for RENAME_EXCHANGE; the cookie stays).</summary>
    public void MarkDirent(DirentRecord d)
    {
        _dirtyDirents[d.Id] = d;
        NameChanged(d);
    }

    public void RemoveDirent(DirentRecord d)
    {
        Directories[d.Parent].Remove(d);
        _dirtyDirents[d.Id] = null;
        NameChanged(d);
    }

    private void NameChanged(DirentRecord d)
    {
        _changedDirectories.Add(d.Parent);
        if (Feed.HasWatchers && _changedNames.Count < MaxChangedNamesPerChange)
            _changedNames.Add(d);
    }

    public ExtentMap LayoutOf(long ino)
    {
        if (!Layouts.TryGetValue(ino, out var map))
            Layouts[ino] = map = new ExtentMap();
        return map;
    }

    /// <summary>After a layout change: chunks newly referenced become Live, unreferenced ones Garbage.</summary>
    public void UpdateChunkRefs(long ino, HashSet<string> before, HashSet<string> after)
    {
        // Every layout change passes here: keep the inode's derived stored-bytes count current.
        if (Inodes.TryGetValue(ino, out var inode))
            inode.StoredBytes = Layouts.TryGetValue(ino, out var layout) ? layout.StoredBytes : 0;
        foreach (var id in after)
        {
            if (before.Contains(id))
                continue;
            RefsOf(id).Add(ino);
            if (Chunks.TryGetValue(id, out var c) && c.State == ChunkState.Uncommitted)
            {
                c.State = ChunkState.Live;
                MarkChunk(id);
            }
        }
        foreach (var id in before)
        {
            if (after.Contains(id))
                continue;
            if (ChunkRefs.TryGetValue(id, out var refs))
            {
                refs.Remove(ino);
                if (refs.Count > 0)
                    continue;
                ChunkRefs.Remove(id);
            }
            if (Chunks.TryGetValue(id, out var c) && c.State != ChunkState.Garbage)
            {
                c.State = ChunkState.Garbage;
                MarkChunk(id);
            }
        }
    }

    /// <summary>Removes an inode for good (nlink 0 and not open): its layout goes, its chunks become garbage.</summary>
    public void DestroyInode(long ino)
    {
        if (Layouts.Remove(ino, out var map))
        {
            MarkLayout(ino, 0, map.DataEnd);
            UpdateChunkRefs(ino, map.ChunkIds(), []);
        }
        Inodes.Remove(ino);
        Directories.Remove(ino);
        Locks.ReleaseFile(ino);
        MarkInode(ino);
    }

    /// <summary>Active, Suspect or Dead by its heartbeats; neither a restart nor a silence of every node at once (this server's own) counts against a node.</summary>
    public NodeLiveness LivenessOf(NodeRecord node) => _liveness.LivenessOf(node, NowMs);

    /// <summary>AVAILABLE copies on nodes not counted dead: what a chunk's goal is measured against.</summary>
    public int HealthyCopies(ChunkRecord chunk)
    {
        var healthy = 0;
        foreach (var c in chunk.Copies)
            if (c.Status == CopyState.Available && Nodes.TryGetValue(c.NodeId, out var n) && LivenessOf(n) != NodeLiveness.Dead)
                healthy++;
        return healthy;
    }

    /// <summary>A heartbeat or registration from <paramref name="node"/> arrived now.</summary>
    public void HeardFrom(NodeRecord node)
    {
        var now = NowMs;
        _liveness.Heard(node, now, Nodes.Values);
        node.LastHeartbeatMs = now;
    }

    /// <summary>Forgets what liveness knows of a node taken out of the registry.</summary>
    public void ForgetNode(string nodeId) => _liveness.Forget(nodeId);

    public bool IsOpen(long ino) => OpenCounts.ContainsKey(ino);

    /// <summary>
    /// Applies a change under the lock and replies once it is stored as asked: the change is
    /// queued inside the lock (so the log follows the order changes were made), and awaited
    /// outside it.
    /// </summary>
    public async Task<T> MutateAsync<T>(Func<T> op, Durability durability = Durability.Durable)
    {
        T reply;
        Task stored;
        var start = BigFS.Protocol.MetaTrace.Enabled ? BigFS.Protocol.MetaTrace.Now() : 0;
        lock (Sync)
        {
            reply = op();
            stored = CommitAsync(durability, callerWrites: true);
        }
        // Written here, outside the lock: a Written change is acknowledged with no thread hand-off.
        _log.WriteQueued();
        if (BigFS.Protocol.MetaTrace.Enabled)
        {
            BigFS.Protocol.MetaTrace.Record("server.mutate.locked", start);
            start = BigFS.Protocol.MetaTrace.Now();
        }
        await stored.ConfigureAwait(false);
        if (BigFS.Protocol.MetaTrace.Enabled)
            BigFS.Protocol.MetaTrace.Record($"server.mutate.stored.{durability}", start);
        return reply;
    }

    /// <summary>Completes once every change acknowledged so far is durable.</summary>
    public Task SyncAsync() => _log.SyncAsync();

    /// <summary>Hands everything marked so far to the log; call under <see cref="Sync"/>, await outside it.</summary>
    public Task CommitAsync(Durability durability = Durability.Durable, bool callerWrites = false)
    {
        var changes = new List<StoreChange>();
        foreach (var ino in _dirtyInodes)
            changes.Add(Inodes.TryGetValue(ino, out var i)
                ? StoreChange.Put(RecordKind.Inode, ino, i.Clone())
                : StoreChange.Delete(RecordKind.Inode, ino));
        foreach (var (key, d) in _dirtyDirents)
            changes.Add(d is null ? StoreChange.Delete(RecordKind.Dirent, key) : StoreChange.Put(RecordKind.Dirent, key, d.Clone()));
        foreach (var (ino, (lo, hi)) in _dirtyLayouts)
            AddLayoutChanges(changes, ino, lo, hi);
        foreach (var id in _dirtyChunks)
            changes.Add(Chunks.TryGetValue(id, out var c)
                ? StoreChange.Put(RecordKind.Chunk, id, c.Clone())
                : StoreChange.Delete(RecordKind.Chunk, id));
        foreach (var id in _dirtyNodes)
            changes.Add(Nodes.TryGetValue(id, out var n)
                ? StoreChange.Put(RecordKind.Node, id, n.Clone())
                : StoreChange.Delete(RecordKind.Node, id));
        if (_dirtyCounters)
            changes.Add(StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, Counters.Clone()));
        foreach (var key in _dirtyReplies)
            changes.Add(Replies.TryGetValue(key, out var r)
                ? StoreChange.Put(RecordKind.Reply, key, r.Clone())
                : StoreChange.Delete(RecordKind.Reply, key));
        if (Feed.HasWatchers)
            Feed.Publish(_changedDirectories, _dirtyInodes, _changedNames, ChangeOrigin.Session);
        _changedDirectories.Clear();
        _changedNames.Clear();
        _dirtyInodes.Clear();
        _dirtyDirents.Clear();
        _dirtyLayouts.Clear();
        _dirtyChunks.Clear();
        _dirtyNodes.Clear();
        _dirtyReplies.Clear();
        _dirtyCounters = false;
        return changes.Count == 0 ? Task.CompletedTask : _log.AppendAsync(changes, durability, callerWrites);
    }

    private void AddLayoutChanges(List<StoreChange> changes, long ino, long lo, long hi)
    {
        const long R = LayoutRegionRecord.RegionSize;
        Layouts.TryGetValue(ino, out var map);
        for (var region = lo / R; region <= (hi - 1) / R; region++)
        {
            var key = LayoutRegionRecord.KeyOf(ino, region);
            var extents = map?.Find(region * R, (region + 1) * R);
            if (extents is null || extents.Count == 0)
            {
                changes.Add(StoreChange.Delete(RecordKind.Layout, key));
                continue;
            }
            changes.Add(StoreChange.Put(RecordKind.Layout, key, new LayoutRegionRecord
            {
                Id = key, Ino = ino, Region = region,
                Extents = extents.ConvertAll(e => new ExtentRecord
                    { FileOffset = e.FileOffset, Length = e.Length, ChunkId = e.ChunkId, ChunkOffset = e.ChunkOffset }),
            }));
        }
    }
}
