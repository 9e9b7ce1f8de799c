using System.Buffers;
using BigFS.Core;
using BigFS.Protocol;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Client;

/// <summary>
/// The data handle of one inode: buffers writes (bounded by the client's global budget),
/// turns them into chunks in the background, commits them on flush, and reads through the
/// layout, its own uncommitted data and the block cache. Safe for concurrent use.
/// </summary>
/// <remarks>
/// Read overlay order, oldest to newest: committed layout, pending chunks in seal order,
/// then buffered segments (which are always newer than anything sealed they overlap).
/// </remarks>
public sealed class BigFsFile : IAsyncDisposable
{
    private const long LayoutWindow = 64L * 1024 * 1024;
    private const int MaxPiece = 1024 * 1024;
    private static readonly string LocalData = "";

    private readonly BigFsClient _client;
    private readonly ILogger _logger;
    private readonly object _sync = new();
    private readonly DirtyRangeSet _dirty;
    private readonly List<PendingChunk> _pending = [];
    private readonly Dictionary<long, CachedLayoutWindow> _layout = [];
    private readonly SemaphoreSlim _flushLock = new(1, 1);
    private long _committedSize;
    private long _sequence;
    private int _layoutGeneration;
    /// <summary>The lowest inode version among the cached layout windows (0: none cached).</summary>
    private long _layoutVersion;
    private long _lastReadEnd = -1;
    private long _changeEpoch;
    // The inode version _committedSize belongs to (0: as known when opened); sizes from older versions are not adopted.
    private ulong _committedVersion;
    private long _readAheadEnd;
    private readonly List<Task> _readAheads = [];
    private readonly RegionMergePolicy _mergePolicy;
    private readonly CompactionPolicy _compactionPolicy;
    private readonly RegionChunkBounds _regionChunks;

    internal BigFsFile(BigFsClient client, ulong ino, long knownSize, ILogger logger)
    {
        _client = client;
        _logger = logger;
        Ino = ino;
        _committedSize = knownSize;
        _dirty = new DirtyRangeSet(client.ChunkSize,
            size => _client.Pages.Rent(size),
            page => _client.Pages.Return(page));
        _mergePolicy = new RegionMergePolicy(client.ChunkSize);
        _compactionPolicy = new CompactionPolicy(client.ChunkSize);
        _regionChunks = new RegionChunkBounds(client.ChunkSize);
        if (knownSize == 0)
            _regionChunks.ResetEmpty();
    }

    public ulong Ino { get; }

    /// <summary>The size including uncommitted writes.</summary>
    public long Size
    {
        get { lock (_sync) return SizeLocked(); }
    }

    internal bool HasDirtyData { get { lock (_sync) return !_dirty.IsEmpty; } }

    /// <summary>
    /// Moves whenever this handle's content may change under a reader: a write or truncate begins,
    /// or the caches are invalidated. Data read while it stayed the same is still this file's data.
    /// </summary>
    public long ChangeEpoch => Interlocked.Read(ref _changeEpoch);
    internal int PendingCount { get { lock (_sync) return _pending.Count; } }

    private long SizeLocked()
    {
        var size = Math.Max(_committedSize, _dirty.End);
        foreach (var p in _pending)
            size = Math.Max(size, p.End);
        return size;
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        if (offset < 0 || offset + (long)data.Length < offset)
            throw new BigFsException(Errno.EINVAL, $"bad write offset {offset}");
        if (_client.Uploader.RecentlyFull)
            throw new BigFsException(Errno.ENOSPC, "the cluster has no room for new data");
        Interlocked.Increment(ref _changeEpoch);
        while (!data.IsEmpty)
        {
            // First without new memory: overwrites and the spare room of the last page.
            long none = 0;
            int written;
            lock (_sync)
            {
                written = _dirty.Write(offset, data.Span, ref none);
                SealFullLocked();
            }
            if (written == 0)
            {
                var piece = Math.Min(data.Length, MaxPiece);
                // The data plus one short page doubling on the way: pages are sized to what is written.
                var bytes = (long)piece + DirtySegment.PageSize;
                await _client.AcquireBufferAsync(bytes, ct);
                var allowance = bytes;
                lock (_sync)
                {
                    written = _dirty.Write(offset, data.Span[..piece], ref allowance);
                    SealFullLocked();
                }
                _client.Budget.Release(allowance);
            }
            if (written > 0)
                _client.TrackDirty(this);
            offset += written;
            data = data[written..];
        }
    }

    public async ValueTask<int> ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        if (offset < 0)
            throw new BigFsException(Errno.EINVAL, $"bad read offset {offset}");
        var size = Size;
        if (offset >= size || buffer.IsEmpty)
            return 0;
        var n = (int)Math.Min(buffer.Length, size - offset);
        await ReadRangeAsync(offset, buffer[..n], ct);
        MaybeReadAhead(offset, n);
        return n;
    }

    /// <summary>
    /// Uploads and commits what is buffered (close-to-open); true if there was something to
    /// commit. The data is durable on its nodes when this returns; the commit is acknowledged
    /// once it is in the metadata server's journal (it survives a crash of that server, and
    /// reaches its disk within milliseconds) — like close(2) on a local filesystem, only
    /// <see cref="SyncAsync"/> waits for the disk.
    /// </summary>
    public async Task<bool> FlushAsync(CancellationToken ct = default)
    {
        await _flushLock.WaitAsync(ct);
        try
        {
            var written = await FlushCoreAsync(durable: false, ct);
            if (written is not null)
                await CompactAsync(written, ct);
            return written is not null;
        }
        finally
        {
            _flushLock.Release();
        }
    }

    /// <summary>
    /// Starts uploading what is buffered, committing nothing: the writer has moved on to the
    /// file's attributes (cp -a, rsync and install set times, owner, mode or ACLs between the
    /// last write and close), so the flush at close finds its upload already under way. Writes
    /// that still follow are buffered as usual and go out with the flush.
    /// </summary>
    public void StartUpload()
    {
        lock (_sync)
            SealAllLocked();
        _client.UntrackIfClean(this);
    }

    /// <summary>
    /// fsync(2): commits what is buffered (a commit is durable with everything before it). With
    /// nothing to commit, it still waits until the namespace changes acknowledged so far — this
    /// file's creation, a rename — are durable.
    /// </summary>
    /// <returns>true if something was committed.</returns>
    public async Task<bool> SyncAsync(CancellationToken ct = default)
    {
        bool committed;
        await _flushLock.WaitAsync(ct);
        try
        {
            committed = await FlushCoreAsync(durable: true, ct) is not null;
        }
        finally
        {
            _flushLock.Release();
        }
        if (!committed)
            await _client.SyncMetadataAsync(ct);
        return committed;
    }

    public async Task TruncateAsync(long size, CancellationToken ct = default)
    {
        if (size < 0)
            throw new BigFsException(Errno.EINVAL, $"bad size {size}");
        Interlocked.Increment(ref _changeEpoch);
        await _flushLock.WaitAsync(ct);
        try
        {
            // Commit what is buffered first, so the truncate applies on top of every earlier write.
            await FlushCoreAsync(durable: false, ct);
            AttrReply reply;
            try
            {
                reply = await _client.Namespace.SetAttrAsync(new SetAttrRequest { Ino = Ino, Valid = 8, Size = (ulong)size },
                    deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);
            }
            catch (RpcException ex)
            {
                throw BigFsException.Io("truncate failed: " + ex.Status.Detail, ex);
            }
            if (reply.Errno != 0)
                throw new BigFsException(reply.Errno, $"truncate of inode {Ino} failed: errno {reply.Errno}");
            long freed;
            List<string> dropped;
            _client.ReportOwnDataChange(Ino, reply.Attr.Version);
            lock (_sync)
            {
                _committedSize = size;
                _committedVersion = Math.Max(_committedVersion, reply.Attr.Version);
                // Writes that raced with the truncate must not resurrect data beyond it.
                freed = _dirty.Truncate(size);
                foreach (var p in _pending)
                    p.Length = (int)Math.Clamp(size - p.FileOffset, 0, p.Length);
                dropped = _pending.Where(p => p.Length == 0 && p.ChunkId is not null).Select(p => p.ChunkId!).ToList();
                _pending.RemoveAll(p => p.Length == 0 && p.ChunkId is not null);
                InvalidateLayoutLocked();
                if (size == 0 && _pending.Count == 0)
                    _regionChunks.ResetEmpty();
            }
            _client.Budget.Release(freed);
            await AbandonAsync(dropped);   // uploaded, now wholly beyond the new size
        }
        finally
        {
            _flushLock.Release();
        }
    }

    /// <summary>
    /// Punches a hole over [<paramref name="offset"/>, +<paramref name="length"/>): the range then
    /// reads as zeros and holds no data (fallocate's PUNCH_HOLE and ZERO_RANGE). Buffered writes
    /// are committed first, so the hole lands on top of them. The size is kept, or grown to the
    /// range's end when <paramref name="keepSize"/> is false; chunks left unreferenced become garbage.
    /// </summary>
    public async Task PunchHoleAsync(long offset, long length, bool keepSize, CancellationToken ct = default)
    {
        if (offset < 0 || length <= 0 || offset > long.MaxValue - length)
            throw new BigFsException(Errno.EINVAL, $"bad range {offset}+{length}");
        Interlocked.Increment(ref _changeEpoch);
        await _flushLock.WaitAsync(ct);
        try
        {
            await FlushCoreAsync(durable: false, ct);
            long end;
            lock (_sync)
                end = keepSize ? Math.Min(offset + length, SizeLocked()) : offset + length;
            if (end > offset)
                await CommitAsync([new FileExtent(offset, end - offset, ChunkId: "", ChunkOffset: 0)], ifVersion: 0, durable: false, ct);
            lock (_sync)
            {
                InvalidateLayoutLocked();
                ForgetRegionChunksLocked();
            }
        }
        finally
        {
            _flushLock.Release();
        }
    }

    /// <summary>
    /// copy_file_range into this file: [<paramref name="offset"/>, +<paramref name="length"/>)
    /// comes to share the committed bytes (and holes) of [<paramref name="sourceOffset"/>, +length)
    /// of <paramref name="sourceIno"/>. The metadata server does it in one transaction and no data
    /// moves. This handle's buffered writes are committed first, so the copy lands on top of
    /// them; the source's buffered writes are the caller's to commit before.
    /// </summary>
    /// <returns>The bytes copied: fewer than asked when the source ends first.</returns>
    public async Task<long> CopyFromAsync(ulong sourceIno, long sourceOffset, long offset, long length, CancellationToken ct = default)
    {
        if (sourceOffset < 0 || offset < 0 || length < 0)
            throw new BigFsException(Errno.EINVAL, $"bad copy {sourceOffset} -> {offset} +{length}");
        Interlocked.Increment(ref _changeEpoch);
        await _flushLock.WaitAsync(ct);
        try
        {
            await FlushCoreAsync(durable: false, ct);
            var request = new CopyRangeRequest
                { InoIn = sourceIno, OffsetIn = (ulong)sourceOffset, InoOut = Ino, OffsetOut = (ulong)offset, Length = (ulong)length };
            CopyRangeReply reply;
            try
            {
                reply = await _client.Namespace.CopyRangeAsync(request, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);
            }
            catch (RpcException ex)
            {
                throw BigFsException.Io("copy_file_range failed: " + ex.Status.Detail, ex);
            }
            if (reply.Errno != 0)
                throw new BigFsException(reply.Errno, $"copy from inode {sourceIno} into inode {Ino} failed: errno {reply.Errno}");
            if (reply.Copied > 0)
                AdoptOwnChange(reply.Attr, layoutChanged: true);   // the kernel drops its pages of the range itself
            return (long)reply.Copied;
        }
        finally
        {
            _flushLock.Release();
        }
    }

    public void InvalidateCache()
    {
        Interlocked.Increment(ref _changeEpoch);
        lock (_sync)
        {
            InvalidateLayoutLocked();
            ForgetRegionChunksLocked();
        }
    }

    /// <summary>
    /// Another client committed: drops the layout cache and adopts the committed size of
    /// <paramref name="version"/>, unless this handle already knows a newer one (its own commit
    /// may have landed after the reply carrying it). Buffered writes stay and still read over it.
    /// </summary>
    public void AdoptCommitted(long committedSize, ulong version)
    {
        Interlocked.Increment(ref _changeEpoch);
        lock (_sync)
        {
            if (version <= _committedVersion)
                return;
            _committedVersion = version;
            _committedSize = committedSize;
            InvalidateLayoutLocked();
            ForgetRegionChunksLocked();
        }
    }

    /// <summary>Others may have committed: only an empty file's chunk counts are still known.</summary>
    private void ForgetRegionChunksLocked()
    {
        if (_committedSize == 0 && _pending.Count == 0)
            _regionChunks.ResetEmpty();
        else
            _regionChunks.Forget();
    }

    /// <summary>
    /// Memory pressure: seals buffered data worth at least <paramref name="target"/> bytes of
    /// budget, cheapest to upload first (see <see cref="RegionMergePolicy.CheapestFirst"/>);
    /// returns the budget bytes sealed. What stays buffered keeps gathering writes, so regions
    /// are sealed denser and upload less for the same writes.
    /// </summary>
    internal long SealCheapest(long target)
    {
        lock (_sync)
        {
            if (_dirty.IsEmpty)
                return 0;
            var segments = _dirty.Segments.ToList();
            var pieces = segments.Select(s => new RegionMergePolicy.Piece(s.Offset, s.Length)).ToList();
            var chosen = new List<RegionMergePolicy.Group>();
            long sealedBytes = 0;
            foreach (var group in RegionMergePolicy.CheapestFirst(pieces, _mergePolicy.Plan(pieces, SizeLocked())))
            {
                if (sealedBytes >= target)
                    break;
                chosen.Add(group);
                for (var k = group.First; k < group.First + group.Count; k++)
                    sealedBytes += segments[k].MemoryBytes;
            }
            _dirty.RemoveRanges(chosen.Select(g => (g.First, g.Count)));
            foreach (var group in chosen)
                SealGroupLocked(segments, group);
            return sealedBytes;
        }
    }

    private void SealAllLocked()
    {
        var size = SizeLocked();
        SealLocked(_dirty.TakeAll(), size);
    }

    private void SealFullLocked()
    {
        var full = _dirty.TakeFull();
        if (full.Count > 0)
            SealLocked(full, SizeLocked());
    }

    /// <summary>
    /// Turns sorted segments into uploads: one chunk per segment, except where the merge policy
    /// combines the many small pieces of one region into one chunk read-and-merged at upload.
    /// </summary>
    private void SealLocked(List<DirtySegment> segments, long fileSize)
    {
        if (segments.Count == 0)
            return;
        var pieces = new List<RegionMergePolicy.Piece>(segments.Count);
        foreach (var s in segments)
            pieces.Add(new RegionMergePolicy.Piece(s.Offset, s.Length));
        foreach (var group in _mergePolicy.Plan(pieces, fileSize))
            SealGroupLocked(segments, group);
    }

    private void SealGroupLocked(List<DirtySegment> segments, RegionMergePolicy.Group group)
    {
        PendingChunk pending;
        if (group.Merge)
        {
            pending = new PendingChunk(_sequence++, group.SpanStart, (int)(group.SpanEnd - group.SpanStart), null)
            {
                IsMerged = true,
                Pieces = segments.GetRange(group.First, group.Count),
                Clusters = group.Clusters,
            };
        }
        else
        {
            var segment = segments[group.First];
            pending = new PendingChunk(_sequence++, segment.Offset, segment.Length, segment.Pages);
        }
        _pending.Add(pending);
        StartUploadLocked(pending);
    }

    private void StartUploadLocked(PendingChunk pending)
    {
        var bytes = pending.BudgetBytes;
        _client.AddUploading(bytes);
        pending.Upload = Task.Run(async () =>
        {
            try { await (pending.IsMerged ? UploadMergedAsync(pending) : UploadAsync(pending)); }
            finally { _client.AddUploading(-bytes); }
        });
    }

    /// <summary>
    /// Uploads a merged chunk or a rewrite: reads its span through the file (committed data,
    /// older uploads, its own pieces; holes stay holes), packs what is not a hole into one
    /// chunk, uploads it, then releases the pieces. At most MaxInFlightChunkUploads assemble at
    /// once, which bounds the memory this takes beyond the write budget.
    /// </summary>
    private async Task UploadMergedAsync(PendingChunk pending)
    {
        await _client.MergeSlots.WaitAsync();
        try
        {
            List<RegionMergePolicy.Cluster> clusters;
            int generation;
            lock (_sync)
            {
                // A truncate may have shortened the span since it was sealed.
                clusters = pending.Clusters
                    .Select(c => new RegionMergePolicy.Cluster(c.Start, Math.Min(c.End, pending.End)))
                    .Where(c => c.Length > 0).ToList();
                pending.PieceRanges = pending.Pieces?.Select(p => (p.Offset, p.End)).ToList() ?? [];
                generation = _layoutGeneration;
            }
            var (pages, runs, chunkLength) = await AssembleAsync(clusters);
            lock (_sync)
                pending.ReadVersion = generation != _layoutGeneration ? -1 : _layoutVersion;
            var id = "";
            IReadOnlyList<ChunkCopy> copies = [];
            try
            {
                if (chunkLength > 0)
                    (id, copies) = await _client.Uploader.UploadAsync(pages, chunkLength, Ino, CancellationToken.None);
            }
            finally
            {
                foreach (var page in pages)
                    _client.Pages.Return(page);
            }
            List<DirtySegment>? pieces;
            lock (_sync)
            {
                pending.ChunkId = id;
                pending.Copies = copies;
                pending.Runs = runs;
                pending.Error = null;
                pieces = pending.Pieces;
                pending.Pieces = null;
                if (pending.Length == 0)
                    _pending.Remove(pending);
            }
            if (pieces is not null)
                _client.Budget.Release(ReturnPieces(pieces));
        }
        catch (Exception ex)
        {
            lock (_sync)
                pending.Error = ex;
            _logger.LogError(ex, "Merged upload of [{Offset}, +{Length}) of inode {Ino} failed; the next flush reports it", pending.FileOffset, pending.UploadLength, Ino);
        }
        finally
        {
            _client.MergeSlots.Release();
        }
    }

    private long ReturnPieces(List<DirtySegment> pieces)
    {
        long bytes = 0;
        foreach (var s in pieces)
        {
            bytes += s.MemoryBytes;
            foreach (var page in s.Pages)
                _client.Pages.Return(page);
            s.Pages.Clear();
        }
        return bytes;
    }

    /// <summary>Reads the clusters through the file and packs their non-hole runs into pooled pages.</summary>
    private async Task<(List<byte[]> Pages, List<FileExtent> Runs, int Length)> AssembleAsync(List<RegionMergePolicy.Cluster> clusters)
    {
        var total = (int)clusters.Sum(c => c.Length);
        var buffer = _client.AssemblyBuffers.Rent(total);
        try
        {
            // The buffer holds the clusters back to back (read in parallel); a run's ChunkOffset is its place in it.
            var reads = new List<(int At, RegionMergePolicy.Cluster Cluster, List<FileExtent> Runs, Task Read)>();
            var at = 0;
            foreach (var c in clusters)
            {
                var clusterRuns = new List<FileExtent>();
                reads.Add((at, c, clusterRuns, ReadRangeAsync(c.Start, buffer.AsMemory(at, (int)c.Length), CancellationToken.None, clusterRuns)));
                at += (int)c.Length;
            }
            await Task.WhenAll(reads.Select(r => r.Read));
            var coverage = new List<FileExtent>();
            foreach (var (clusterAt, c, clusterRuns, _) in reads)
            {
                foreach (var r in clusterRuns)
                    coverage.Add(r with { ChunkOffset = clusterAt + (r.FileOffset - c.Start) });
            }
            var packed = 0;
            foreach (var c in coverage)
                packed += (int)c.Length;
            var pages = new List<byte[]>((packed + DirtySegment.PageSize - 1) / DirtySegment.PageSize);
            for (var pageStart = 0; pageStart < packed; pageStart += DirtySegment.PageSize)
                pages.Add(_client.Pages.Rent(DirtySegment.PageFor(Math.Min(DirtySegment.PageSize, packed - pageStart))));
            var runs = new List<FileExtent>(coverage.Count);
            var chunkOffset = 0;
            foreach (var c in coverage)
            {
                DirtySegment.CopyIn(pages, chunkOffset, buffer.AsSpan((int)c.ChunkOffset, (int)c.Length));
                runs.Add(new FileExtent(c.FileOffset, c.Length, "", chunkOffset));
                chunkOffset += (int)c.Length;
            }
            return (pages, runs, packed);
        }
        finally
        {
            _client.AssemblyBuffers.Return(buffer);
        }
    }

    private async Task UploadAsync(PendingChunk pending)
    {
        try
        {
            var result = await _client.Uploader.UploadAsync(pending.Pages!, pending.UploadLength, Ino, CancellationToken.None);
            List<byte[]> pages;
            lock (_sync)
            {
                pending.ChunkId = result.ChunkId;
                pending.Copies = result.Copies;
                pending.Error = null;
                pages = pending.Pages!;
                pending.Pages = null;
                if (pending.Length == 0)
                    _pending.Remove(pending);
            }
            foreach (var page in pages)
                _client.Pages.Return(page);
            _client.Budget.Release(DirtySegment.BytesOf(pages));
        }
        catch (Exception ex)
        {
            lock (_sync)
                pending.Error = ex;
            _logger.LogError(ex, "Upload of [{Offset}, +{Length}) of inode {Ino} failed; the next flush reports it", pending.FileOffset, pending.UploadLength, Ino);
        }
    }

    /// <returns>The extents committed, or null when nothing was.</returns>
    private async Task<List<FileExtent>?> FlushCoreAsync(bool durable, CancellationToken ct)
    {
        List<PendingChunk> batch;
        lock (_sync)
        {
            SealAllLocked();
            batch = [.. _pending];
        }
        _client.UntrackIfClean(this);
        if (batch.Count == 0)
            return null;
        await Task.WhenAll(batch.Select(p => p.Upload)).WaitAsync(ct);

        List<PendingChunk> failed;
        lock (_sync)
        {
            failed = batch.Where(p => p.ChunkId is null).ToList();
            foreach (var p in failed)
                StartUploadLocked(p); // one more round before giving up
        }
        if (failed.Count > 0)
        {
            await Task.WhenAll(failed.Select(p => p.Upload)).WaitAsync(ct);
            lock (_sync)
            {
                if (failed.FirstOrDefault(p => p.ChunkId is null) is { } stillFailing)
                    throw stillFailing.Error as BigFsException ?? BigFsException.Io("chunk upload failed", stillFailing.Error);
            }
        }

        List<FileExtent> extents;
        long ifVersion;
        lock (_sync)
        {
            extents = batch.OrderBy(p => p.Sequence).SelectMany(p => p.UploadedExtents()).ToList();
            ifVersion = FilledFromVersion(batch);
        }
        if (extents.Count > 0 && (ifVersion < 0 || !await CommitAsync(extents, ifVersion, durable, ct)))
        {
            // Gaps were filled from a layout another commit has replaced since: commit only what
            // was written here, never older bytes over someone else's.
            lock (_sync)
                extents = batch.OrderBy(p => p.Sequence).SelectMany(p => p.UploadedExtents(piecesOnly: true)).ToList();
            if (extents.Count > 0)
                await CommitAsync(extents, 0, durable, ct);
        }
        lock (_sync)
        {
            foreach (var p in batch)
                _pending.Remove(p);
            InvalidateLayoutLocked();
            _regionChunks.AddCommitted(extents);
        }
        return extents.Count == 0 ? null : extents;
    }

    /// <summary>
    /// The version the merged chunks of a batch read committed bytes at: 0 when none did (the
    /// commit needs no condition), -1 when they disagree or the layout changed while reading.
    /// </summary>
    private static long FilledFromVersion(IEnumerable<PendingChunk> chunks)
    {
        long version = 0;
        foreach (var p in chunks)
        {
            if (!p.IsMerged || p.ReadVersion == 0)
                continue;
            if (p.ReadVersion < 0 || version != 0 && version != p.ReadVersion)
                return -1;
            version = p.ReadVersion;
        }
        return version;
    }

    /// <summary>
    /// Commits extents; with <paramref name="ifVersion"/> non-zero only if the inode is still at
    /// that version (false if not). Not <paramref name="durable"/>: acknowledged once journaled.
    /// </summary>
    private async Task<bool> CommitAsync(List<FileExtent> extents, long ifVersion, bool durable, CancellationToken ct)
    {
        var request = new CommitWriteRequest { Ino = Ino, SessionId = _client.SessionId ?? "", IfVersion = (ulong)ifVersion, Lazy = !durable };
        foreach (var e in extents)
            request.Extents.Add(new Extent { FileOffset = (ulong)e.FileOffset, Length = (ulong)e.Length, ChunkId = e.ChunkId, ChunkOffset = (ulong)e.ChunkOffset });
        AttrReply reply;
        try
        {
            reply = await _client.Namespace.CommitWriteAsync(request, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);
        }
        catch (RpcException ex)
        {
            throw BigFsException.Io("commit failed: " + ex.Status.Detail, ex);
        }
        if (reply.Errno == Errno.ESTALE && ifVersion != 0)
            return false;
        if (reply.Errno != 0)
            throw new BigFsException(reply.Errno, $"commit of inode {Ino} failed: errno {reply.Errno}");
        AdoptOwnChange(reply.Attr, layoutChanged: false);   // the committed extents are this handle's own
        return true;
    }

    /// <summary>
    /// This handle's own change is committed as <paramref name="attr"/>'s version: the size is
    /// the server's, and the mount may keep what the kernel cached (it went through it). With
    /// <paramref name="layoutChanged"/> the server placed data this handle did not write, so
    /// what it knows of the layout goes.
    /// </summary>
    private void AdoptOwnChange(InodeAttr attr, bool layoutChanged)
    {
        _client.ReportOwnDataChange(Ino, attr.Version);
        lock (_sync)
        {
            _committedSize = (long)attr.Size;
            _committedVersion = Math.Max(_committedVersion, attr.Version);
            if (layoutChanged)
            {
                InvalidateLayoutLocked();
                ForgetRegionChunksLocked();
            }
        }
    }

    /// <summary>
    /// After a commit: regions of [start, end) whose committed layout draws on too many chunks
    /// (see <see cref="CompactionPolicy"/>) are rewritten as one chunk each and committed; the
    /// chunks they replace become garbage on the metadata server. The data is already durable,
    /// so a failure here is logged, not reported.
    /// </summary>
    private async Task CompactAsync(List<FileExtent> committedExtents, CancellationToken ct)
    {
        var regionSize = _client.ChunkSize;
        var rewrites = new List<PendingChunk>();
        var compacted = false;
        long start = 0, end = 0;
        try
        {
            HashSet<long> candidates;
            long committed;
            int generation;
            lock (_sync)
            {
                (committed, generation) = (_committedSize, _layoutGeneration);
                // Only regions this commit touched that may be over the bound: usually none, and then no layout fetch.
                candidates = committedExtents
                    .SelectMany(e => Enumerable.Range(0, (int)((e.End - 1) / regionSize - e.FileOffset / regionSize + 1)).Select(k => e.FileOffset / regionSize + k))
                    .Where(r => _regionChunks.MayExceed(r, _compactionPolicy.MaxChunksPerRegion))
                    .ToHashSet();
            }
            if (candidates.Count == 0)
                return;
            start = candidates.Min() * regionSize;
            end = Math.Min(committed, (candidates.Max() + 1) * regionSize);
            if (end <= start)
                return;
            var windows = await FetchWindowsAsync(start, end, generation, ct);
            var extents = windows.SelectMany(w => w.Window.Extents);
            var regions = _compactionPolicy.RegionsToCompact(extents, start, end).Where(r => candidates.Contains(r / regionSize)).ToList();
            if (regions.Count == 0)
                return;
            lock (_sync)
            {
                foreach (var region in regions)
                {
                    // Only committed bytes: buffered writes beyond them are not this rewrite's to publish.
                    var length = (int)Math.Min(regionSize, _committedSize - region);
                    if (length <= 0)
                        continue;
                    var rewrite = new PendingChunk(_sequence++, region, length, null)
                    {
                        IsMerged = true,
                        Clusters = [new RegionMergePolicy.Cluster(region, region + length)],
                    };
                    _pending.Add(rewrite);
                    rewrites.Add(rewrite);
                    StartUploadLocked(rewrite);
                }
            }
            await Task.WhenAll(rewrites.Select(p => p.Upload)).WaitAsync(ct);
            List<FileExtent> replaced;
            long readVersion;
            lock (_sync)
            {
                replaced = rewrites.SelectMany(p => p.UploadedExtents()).ToList();
                readVersion = FilledFromVersion(rewrites);
            }
            // A rewrite is all read-back bytes: if anyone committed since they were read, drop it.
            if (replaced.Count > 0 && (readVersion <= 0 || !await CommitAsync(replaced, readVersion, durable: false, ct)))
            {
                _logger.LogDebug("Inode {Ino}: compaction skipped, the file changed while it was read", Ino);
                replaced.Clear();
            }
            if (replaced.Count > 0)
            {
                compacted = true;
                lock (_sync)
                {
                    foreach (var p in rewrites.Where(p => p.ChunkId is not null))
                        _regionChunks.Set(p.FileOffset / regionSize, 1);
                }
            }
            _logger.LogDebug("Inode {Ino}: {Regions} fragmented regions rewritten", Ino, rewrites.Count);
        }
        catch (Exception ex) when (ex is BigFsException or RpcException or OperationCanceledException)
        {
            _logger.LogWarning("Inode {Ino}: compaction of [{Start}, {End}) failed: {Reason}", Ino, start, end, ex.Message);
        }
        finally
        {
            if (rewrites.Count > 0)
            {
                lock (_sync)
                {
                    foreach (var p in rewrites)
                        _pending.Remove(p);
                    InvalidateLayoutLocked();
                }
                if (!compacted)
                    await AbandonAsync(rewrites.Select(p => p.ChunkId).OfType<string>().ToList());   // skipped or failed: the rewritten chunks go now
            }
        }
    }

    private void InvalidateLayoutLocked()
    {
        _layout.Clear();
        _layoutVersion = 0;
        _layoutGeneration++;
        _readAheadEnd = 0;
    }

    /// <param name="coverage">When given, receives the non-hole runs of the range (chunk ids left empty), merged where adjacent.</param>
    private Task ReadRangeAsync(long offset, Memory<byte> destination, CancellationToken ct, List<FileExtent>? coverage = null) =>
        ReadRangeAsync(offset, destination.Length, destination, warmOnly: false, ct, coverage);

    /// <summary>
    /// Reads [offset, +length) into <paramref name="destination"/>, or with <paramref name="warmOnly"/>
    /// only brings the chunk blocks behind it into the block cache (read-ahead: nothing is copied).
    /// </summary>
    private async Task ReadRangeAsync(long offset, long length, Memory<byte> destination, bool warmOnly, CancellationToken ct, List<FileExtent>? coverage = null)
    {
        try
        {
            await ReadRangeOnceAsync(offset, length, destination, warmOnly, ct, coverage);
        }
        catch (BigFsException e) when (e.ChunkGone)
        {
            // The layout this read used is stale: another client committed over these extents and
            // the replaced chunk was already collected. Its commit is what the file holds now.
            _logger.LogInformation("A chunk of inode {Ino} is gone ({Reason}); reading again with a fresh layout", Ino, e.Message);
            lock (_sync)
                InvalidateLayoutLocked();
            coverage?.Clear();
            await ReadRangeOnceAsync(offset, length, destination, warmOnly, ct, coverage);
        }
    }

    private async Task ReadRangeOnceAsync(long offset, long length, Memory<byte> destination, bool warmOnly, CancellationToken ct, List<FileExtent>? coverage)
    {
        var end = offset + length;
        var map = new ExtentMap();
        var copies = new Dictionary<string, IReadOnlyList<ChunkCopy>>(StringComparer.Ordinal);
        while (true)
        {
            int generation;
            List<(long Start, CachedLayoutWindow Window)>? windows;
            lock (_sync)
            {
                generation = _layoutGeneration;
                windows = CachedWindowsLocked(offset, end);
            }
            windows ??= await FetchWindowsAsync(offset, end, generation, ct);
            lock (_sync)
            {
                if (generation != _layoutGeneration)
                    continue; // a commit or truncate happened meanwhile: its data is in the layout now
                foreach (var (start, window) in windows)
                {
                    foreach (var e in window.Overlapping(Math.Max(start, offset), Math.Min(start + LayoutWindow, end)))
                    {
                        map.Write(e);
                        if (window.CopiesOf(e.ChunkId) is { } chunkCopies)
                            copies[e.ChunkId] = chunkCopies;
                    }
                }
                foreach (var p in _pending)
                {
                    if (p.Length == 0 || p.End <= offset || p.FileOffset >= end)
                        continue;
                    if (p.ChunkId is not null)
                    {
                        foreach (var uploaded in p.UploadedExtents())
                        {
                            if (uploaded.Clip(offset, end) is not { } part)
                                continue;
                            map.Write(part);
                            copies[part.ChunkId] = p.Copies;
                        }
                    }
                    else if (p.Pages is { } pages)
                    {
                        var part = new FileExtent(p.FileOffset, p.Length, LocalData, 0).Clip(offset, end)!.Value;
                        if (!warmOnly)
                            DirtySegment.CopyOut(pages, (int)(part.FileOffset - p.FileOffset),
                                destination.Span.Slice((int)(part.FileOffset - offset), (int)part.Length));
                        map.Write(part);
                    }
                    else if (p.Pieces is { } pieces)
                    {
                        // A merged chunk still being assembled: its own buffered data (a rewrite has none).
                        foreach (var s in pieces)
                            OverlayLocal(s, Math.Max(offset, p.FileOffset), Math.Min(end, p.End));
                    }
                }
                foreach (var s in _dirty.Overlapping(offset, end))
                    OverlayLocal(s, offset, end);
            }
            break;

            void OverlayLocal(DirtySegment s, long from, long to)
            {
                if (new FileExtent(s.Offset, s.Length, LocalData, 0).Clip(from, to) is not { } part)
                    return;
                if (!warmOnly)
                    s.CopyOut((int)(part.FileOffset - s.Offset), destination.Span.Slice((int)(part.FileOffset - offset), (int)part.Length));
                map.Write(part);
            }
        }

        var reads = new List<Task>();
        var position = offset;
        foreach (var e in map.Find(offset, end))
        {
            if (coverage is not null)
            {
                if (coverage.Count > 0 && coverage[^1].End == e.FileOffset)
                    coverage[^1] = coverage[^1] with { Length = coverage[^1].Length + e.Length };
                else
                    coverage.Add(new FileExtent(e.FileOffset, e.Length, LocalData, 0));
            }
            if (e.FileOffset > position && !warmOnly)
                destination.Span.Slice((int)(position - offset), (int)(e.FileOffset - position)).Clear(); // hole
            if (e.ChunkId.Length > 0)
            {
                if (!copies.TryGetValue(e.ChunkId, out var chunkCopies))
                    throw BigFsException.Io($"layout names chunk {e.ChunkId} without its copies");
                reads.Add(warmOnly
                    ? _client.Reader.WarmAsync(e.ChunkId, chunkCopies, e.ChunkOffset, e.Length, ct)
                    : _client.Reader.ReadAsync(e.ChunkId, chunkCopies, e.ChunkOffset, destination.Slice((int)(e.FileOffset - offset), (int)e.Length), ct));
            }
            position = e.End;
        }
        if (position < end && !warmOnly)
            destination.Span[(int)(position - offset)..].Clear();
        await Task.WhenAll(reads);
    }

    /// <summary>
    /// The committed extents of [offset, end) from cached layout windows (under the lock); null when
    /// this handle holds uncommitted data there or a window is not cached.
    /// </summary>
    private ExtentMap? CommittedCachedExtentsLocked(long offset, long end)
    {
        if (_dirty.Overlapping(offset, end).Any() || _pending.Any(p => p.Length > 0 && p.End > offset && p.FileOffset < end))
            return null;
        if (CachedWindowsLocked(offset, end) is not { } windows)
            return null;
        var map = new ExtentMap();
        foreach (var (start, window) in windows)
        {
            foreach (var e in window.Overlapping(Math.Max(start, offset), Math.Min(start + LayoutWindow, end)))
                map.Write(e);
        }
        return map;
    }

    /// <summary>
    /// Copies [offset, +destination.Length) when it can be served from memory alone: committed data
    /// whose layout and chunk blocks are cached (verified), holes as zeros. False (and nothing
    /// fetched) when a layout window or a block is missing, the range passes the end of the file,
    /// or this handle holds uncommitted data there. No side effects on read-ahead.
    /// </summary>
    public bool TryReadCached(long offset, Memory<byte> destination)
    {
        var end = offset + destination.Length;
        if (offset < 0 || destination.IsEmpty)
            return false;
        ExtentMap map;
        lock (_sync)
        {
            if (end > SizeLocked() || CommittedCachedExtentsLocked(offset, end) is not { } found)
                return false;
            map = found;
        }
        var position = offset;
        foreach (var e in map.Find(offset, end))
        {
            if (e.FileOffset > position)
                destination.Span.Slice((int)(position - offset), (int)(e.FileOffset - position)).Clear();
            if (e.ChunkId.Length > 0 && !_client.Reader.TryCopyCached(e.ChunkId, e.ChunkOffset, destination.Slice((int)(e.FileOffset - offset), (int)e.Length)))
                return false;
            position = e.End;
        }
        if (position < end)
            destination.Span[(int)(position - offset)..].Clear();
        return true;
    }

    /// <summary>
    /// A read like <see cref="ReadAsync"/> served without copying: when [offset, +length) (clipped
    /// to the file's size) is committed data whose layout and blocks are all cached, the cached
    /// blocks themselves, leased until the result is disposed. Null when anything would need a
    /// fetch or this handle's uncommitted data — then use <see cref="ReadAsync"/>.
    /// </summary>
    public LeasedRead? TryReadLeased(long offset, int length)
    {
        if (offset < 0 || length < 0)
            return null;
        var read = new LeasedRead(_client.Cache);
        ExtentMap map;
        long end;
        lock (_sync)
        {
            end = Math.Min(offset + length, SizeLocked());
            if (end <= offset)
                return read; // end of file
            if (CommittedCachedExtentsLocked(offset, end) is not { } found)
                return null;
            map = found;
        }
        var position = offset;
        foreach (var e in map.Find(offset, end))
        {
            if (e.FileOffset > position)
                read.AddZeros(e.FileOffset - position);
            if (e.ChunkId.Length > 0 && !_client.Reader.TryLeaseCached(e.ChunkId, e.ChunkOffset, e.Length, read))
            {
                read.Dispose();
                return null;
            }
            position = e.End;
        }
        if (position < end)
            read.AddZeros(end - position);
        MaybeReadAhead(offset, read.Length);
        return read;
    }

    private List<(long Start, CachedLayoutWindow Window)>? CachedWindowsLocked(long offset, long end)
    {
        var result = new List<(long, CachedLayoutWindow)>();
        for (var w = offset / LayoutWindow; w * LayoutWindow < end; w++)
        {
            if (!_layout.TryGetValue(w, out var reply))
                return null;
            result.Add((w * LayoutWindow, reply));
        }
        return result;
    }

    private async Task<List<(long Start, CachedLayoutWindow Window)>> FetchWindowsAsync(long offset, long end, int generation, CancellationToken ct)
    {
        var result = new List<(long, CachedLayoutWindow)>();
        for (var w = offset / LayoutWindow; w * LayoutWindow < end; w++)
        {
            CachedLayoutWindow? window;
            lock (_sync)
                _layout.TryGetValue(w, out window);
            if (window is null)
            {
                LayoutReply reply;
                try
                {
                    reply = await _client.Namespace.GetLayoutAsync(new GetLayoutRequest { Ino = Ino, Offset = (ulong)(w * LayoutWindow), Length = LayoutWindow },
                        deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);
                }
                catch (RpcException ex)
                {
                    throw BigFsException.Io("GetLayout failed: " + ex.Status.Detail, ex);
                }
                if (reply.Errno != 0)
                    throw new BigFsException(reply.Errno, $"GetLayout of inode {Ino} failed: errno {reply.Errno}");
                window = new CachedLayoutWindow(w * LayoutWindow, LayoutWindow, reply);
                lock (_sync)
                {
                    if (generation == _layoutGeneration)
                    {
                        var version = (long)reply.Attr.Version;
                        _layoutVersion = _layoutVersion == 0 ? version : Math.Min(_layoutVersion, version);
                        _layout[w] = window;
                        _regionChunks.Observe(w * LayoutWindow, LayoutWindow, window.Extents);
                    }
                }
            }
            result.Add((w * LayoutWindow, window));
        }
        return result;
    }

    /// <summary>
    /// Sequential reads keep a sliding window of read-ahead (<see cref="BigFsClientOptions.ReadAheadBytes"/>,
    /// at most half the block cache) in flight, one fetch per chunk-aligned piece, topped up as
    /// the reader advances rather than only once the previous batch has finished.
    /// </summary>
    private void MaybeReadAhead(long offset, int length)
    {
        var chunkSize = _client.ChunkSize;
        var window = Math.Min(_client.Options.ReadAheadBytes, _client.Options.ChunkCacheBytes / 2);
        lock (_sync)
        {
            var sequential = offset == _lastReadEnd;
            _lastReadEnd = offset + length;
            if (!sequential)
            {
                _readAheadEnd = 0; // a seek: read-ahead restarts from the new position
                return;
            }
            _readAheads.RemoveAll(t => t.IsCompleted);
            if (window < chunkSize / 2)
                return;
            var from = Math.Max(_readAheadEnd, offset + length);
            var to = Math.Min(SizeLocked(), offset + length + window);
            // Top up in pieces of at least half a chunk (or the file's tail), not per application read.
            if (to - from < chunkSize / 2 && !(to == SizeLocked() && to > from))
                return;
            _readAheadEnd = to;
            for (var at = from; at < to;)
            {
                var pieceEnd = Math.Min(to, (at / chunkSize + 1) * chunkSize); // chunk-aligned: one chunk per fetch
                var (start, pieceLength) = (at, (int)(pieceEnd - at));
                _readAheads.Add(Task.Run(() => PrefetchAsync(start, pieceLength)));
                at = pieceEnd;
            }
        }
    }

    /// <summary>Brings a piece into the block cache; nothing is copied (the reader copies from the cache).</summary>
    private async Task PrefetchAsync(long from, int length)
    {
        try
        {
            await ReadRangeAsync(from, length, Memory<byte>.Empty, warmOnly: true, CancellationToken.None);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "Read-ahead of inode {Ino} at {From} failed", Ino, from);
        }
    }

    /// <summary>Chunks uploaded for data that is dropped uncommitted: their space is given back now, not after the metadata server's grace.</summary>
    private async Task AbandonAsync(List<string> chunkIds)
    {
        if (chunkIds.Count == 0)
            return;
        try
        {
            var request = new AbandonChunksRequest();
            request.ChunkIds.AddRange(chunkIds);
            await _client.Namespace.AbandonChunksAsync(request, deadline: DateTime.UtcNow.AddSeconds(10));
        }
        catch (RpcException ex)
        {
            _logger.LogWarning("Inode {Ino}: {Count} uploaded chunks not given back ({Status}); they go after the grace period", Ino, chunkIds.Count, ex.StatusCode);
        }
    }

    /// <summary>Flushes what is buffered (errors are logged: call FlushAsync to see them), then frees the buffers.</summary>
    public async ValueTask DisposeAsync()
    {
        Interlocked.Increment(ref _changeEpoch);
        try
        {
            await FlushAsync();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Flush on dispose of inode {Ino} failed; unflushed data is dropped", Ino);
        }
        await DiscardAsync();
    }

    /// <summary>
    /// Frees the file without committing what is still buffered: for an owner whose last flush
    /// failed and was reported. Trying again here would commit, once the cluster is back, data
    /// its writer was told was lost, over whatever was written since.
    /// </summary>
    public async ValueTask DiscardAsync()
    {
        Interlocked.Increment(ref _changeEpoch);
        Task[] readAheads;
        lock (_sync)
            readAheads = [.. _readAheads];
        await Task.WhenAll(readAheads); // never faults: failures are logged inside
        List<PendingChunk> pending;
        long freed;
        lock (_sync)
        {
            freed = _dirty.Truncate(0);
            pending = [.. _pending];
            _pending.Clear();
        }
        await Task.WhenAll(pending.Select(p => p.Upload));
        await AbandonAsync(pending.Select(p => p.ChunkId).OfType<string>().ToList());
        foreach (var p in pending)
        {
            if (p.Pages is { } pages)
            {
                freed += DirtySegment.BytesOf(pages);
                pages.ForEach(page => _client.Pages.Return(page));
                p.Pages = null;
            }
            if (p.Pieces is { } pieces)
            {
                freed += ReturnPieces(pieces);
                p.Pieces = null;
            }
        }
        _client.Budget.Release(freed);
        _client.UntrackIfClean(this);
    }
}
