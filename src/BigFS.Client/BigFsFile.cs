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
    private readonly Dictionary<long, LayoutReply> _layout = [];
    private readonly SemaphoreSlim _flushLock = new(1, 1);
    private long _committedSize;
    private long _sequence;
    private int _layoutGeneration;
    private long _lastReadEnd = -1;
    private long _readAheadEnd;
    private readonly List<Task> _readAheads = [];

    internal BigFsFile(BigFsClient client, ulong ino, long knownSize, ILogger logger)
    {
        _client = client;
        _logger = logger;
        Ino = ino;
        _committedSize = knownSize;
        _dirty = new DirtyRangeSet(client.ChunkSize,
            () => ArrayPool<byte>.Shared.Rent(DirtySegment.PageSize),
            page => ArrayPool<byte>.Shared.Return(page));
    }

    public ulong Ino { get; }

    /// <summary>The size including uncommitted writes.</summary>
    public long Size
    {
        get { lock (_sync) return SizeLocked(); }
    }

    internal bool HasDirtyData { get { lock (_sync) return !_dirty.IsEmpty; } }
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
        while (!data.IsEmpty)
        {
            // First without new memory: overwrites and the spare room of the last page.
            var none = 0;
            int written;
            lock (_sync)
            {
                written = _dirty.Write(offset, data.Span, ref none);
                SealFullLocked();
            }
            if (written == 0)
            {
                var piece = Math.Min(data.Length, MaxPiece);
                var pages = piece / DirtySegment.PageSize + 2;
                await _client.AcquireBufferAsync((long)pages * DirtySegment.PageSize, ct);
                var allowance = pages;
                lock (_sync)
                {
                    written = _dirty.Write(offset, data.Span[..piece], ref allowance);
                    SealFullLocked();
                }
                _client.Budget.Release((long)allowance * DirtySegment.PageSize);
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

    /// <summary>Uploads and commits what is buffered (close-to-open); true if there was something to commit.</summary>
    public async Task<bool> FlushAsync(CancellationToken ct = default)
    {
        await _flushLock.WaitAsync(ct);
        try
        {
            return await FlushCoreAsync(ct);
        }
        finally
        {
            _flushLock.Release();
        }
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
            committed = await FlushCoreAsync(ct);
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
        await _flushLock.WaitAsync(ct);
        try
        {
            // Commit what is buffered first, so the truncate applies on top of every earlier write.
            await FlushCoreAsync(ct);
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
            int freed;
            lock (_sync)
            {
                _committedSize = size;
                // Writes that raced with the truncate must not resurrect data beyond it.
                freed = _dirty.Truncate(size);
                foreach (var p in _pending)
                    p.Length = (int)Math.Clamp(size - p.FileOffset, 0, p.Length);
                _pending.RemoveAll(p => p.Length == 0 && p.Pages is null);
                InvalidateLayoutLocked();
            }
            _client.Budget.Release((long)freed * DirtySegment.PageSize);
        }
        finally
        {
            _flushLock.Release();
        }
    }

    public void InvalidateCache()
    {
        lock (_sync)
            InvalidateLayoutLocked();
    }

    /// <summary>Drops the layout cache and adopts the committed size the metadata server just reported (open, getattr).</summary>
    public void InvalidateCache(long committedSize)
    {
        lock (_sync)
        {
            _committedSize = committedSize;
            InvalidateLayoutLocked();
        }
    }

    /// <summary>Seals every buffered segment into an upload (memory pressure, flush).</summary>
    internal void SealAll()
    {
        lock (_sync)
            SealLocked(_dirty.TakeAll());
    }

    private void SealFullLocked()
    {
        var full = _dirty.TakeFull();
        if (full.Count > 0)
            SealLocked(full);
    }

    private void SealLocked(List<DirtySegment> segments)
    {
        foreach (var segment in segments)
        {
            var pending = new PendingChunk(_sequence++, segment.Offset, segment.Length, segment.Pages);
            _pending.Add(pending);
            StartUploadLocked(pending);
        }
    }

    private void StartUploadLocked(PendingChunk pending)
    {
        var bytes = (long)pending.Pages!.Count * DirtySegment.PageSize;
        _client.AddUploading(bytes);
        pending.Upload = Task.Run(async () =>
        {
            try { await UploadAsync(pending); }
            finally { _client.AddUploading(-bytes); }
        });
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
                ArrayPool<byte>.Shared.Return(page);
            _client.Budget.Release((long)pages.Count * DirtySegment.PageSize);
        }
        catch (Exception ex)
        {
            lock (_sync)
                pending.Error = ex;
            _logger.LogError(ex, "Upload of [{Offset}, +{Length}) of inode {Ino} failed; the next flush reports it", pending.FileOffset, pending.UploadLength, Ino);
        }
    }

    /// <summary>Uploads and commits what is buffered; true if a commit was made.</summary>
    private async Task<bool> FlushCoreAsync(CancellationToken ct)
    {
        List<PendingChunk> batch;
        lock (_sync)
        {
            SealLocked(_dirty.TakeAll());
            batch = [.. _pending];
        }
        _client.UntrackIfClean(this);
        if (batch.Count == 0)
            return false;
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

        var request = new CommitWriteRequest { Ino = Ino, SessionId = _client.SessionId ?? "" };
        lock (_sync)
        {
            foreach (var p in batch.Where(p => p.Length > 0).OrderBy(p => p.Sequence))
                request.Extents.Add(new Extent { FileOffset = (ulong)p.FileOffset, Length = (ulong)p.Length, ChunkId = p.ChunkId, ChunkOffset = 0 });
        }
        if (request.Extents.Count > 0)
        {
            AttrReply reply;
            try
            {
                reply = await _client.Namespace.CommitWriteAsync(request, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);
            }
            catch (RpcException ex)
            {
                throw BigFsException.Io("commit failed: " + ex.Status.Detail, ex);
            }
            if (reply.Errno != 0)
                throw new BigFsException(reply.Errno, $"commit of inode {Ino} failed: errno {reply.Errno}");
            lock (_sync)
                _committedSize = (long)reply.Attr.Size;
        }
        lock (_sync)
        {
            foreach (var p in batch)
                _pending.Remove(p);
            InvalidateLayoutLocked();
        }
        return request.Extents.Count > 0;
    }

    private void InvalidateLayoutLocked()
    {
        _layout.Clear();
        _layoutGeneration++;
        _readAheadEnd = 0;
    }

    private async Task ReadRangeAsync(long offset, Memory<byte> destination, CancellationToken ct)
    {
        var end = offset + destination.Length;
        var map = new ExtentMap();
        var copies = new Dictionary<string, IReadOnlyList<ChunkCopy>>(StringComparer.Ordinal);
        while (true)
        {
            int generation;
            List<(long Start, LayoutReply Reply)>? windows;
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
                foreach (var (start, reply) in windows)
                {
                    foreach (var e in reply.Extents)
                    {
                        var clipped = new FileExtent((long)e.FileOffset, (long)e.Length, e.ChunkId, (long)e.ChunkOffset)
                            .Clip(Math.Max(start, offset), Math.Min(start + LayoutWindow, end));
                        if (clipped is { } c)
                            map.Write(c);
                    }
                    foreach (var location in reply.Chunks)
                        copies[location.ChunkId] = location.Copies;
                }
                foreach (var p in _pending)
                {
                    if (new FileExtent(p.FileOffset, p.Length, LocalData, 0).Clip(offset, end) is not { } part)
                        continue;
                    if (p.ChunkId is { } id)
                    {
                        map.Write(new FileExtent(part.FileOffset, part.Length, id, part.FileOffset - p.FileOffset));
                        copies[id] = p.Copies;
                    }
                    else
                    {
                        DirtySegment.CopyOut(p.Pages!, (int)(part.FileOffset - p.FileOffset),
                            destination.Span.Slice((int)(part.FileOffset - offset), (int)part.Length));
                        map.Write(part);
                    }
                }
                foreach (var s in _dirty.Segments)
                {
                    if (new FileExtent(s.Offset, s.Length, LocalData, 0).Clip(offset, end) is not { } part)
                        continue;
                    s.CopyOut((int)(part.FileOffset - s.Offset), destination.Span.Slice((int)(part.FileOffset - offset), (int)part.Length));
                    map.Write(part);
                }
            }
            break;
        }

        var reads = new List<Task>();
        var position = offset;
        foreach (var e in map.Find(offset, end))
        {
            if (e.FileOffset > position)
                destination.Span.Slice((int)(position - offset), (int)(e.FileOffset - position)).Clear(); // hole
            if (e.ChunkId.Length > 0)
            {
                if (!copies.TryGetValue(e.ChunkId, out var chunkCopies))
                    throw BigFsException.Io($"layout names chunk {e.ChunkId} without its copies");
                reads.Add(_client.Reader.ReadAsync(e.ChunkId, chunkCopies, e.ChunkOffset,
                    destination.Slice((int)(e.FileOffset - offset), (int)e.Length), ct));
            }
            position = e.End;
        }
        if (position < end)
            destination.Span[(int)(position - offset)..].Clear();
        await Task.WhenAll(reads);
    }

    private List<(long, LayoutReply)>? CachedWindowsLocked(long offset, long end)
    {
        var result = new List<(long, LayoutReply)>();
        for (var w = offset / LayoutWindow; w * LayoutWindow < end; w++)
        {
            if (!_layout.TryGetValue(w, out var reply))
                return null;
            result.Add((w * LayoutWindow, reply));
        }
        return result;
    }

    private async Task<List<(long, LayoutReply)>> FetchWindowsAsync(long offset, long end, int generation, CancellationToken ct)
    {
        var result = new List<(long, LayoutReply)>();
        for (var w = offset / LayoutWindow; w * LayoutWindow < end; w++)
        {
            LayoutReply? reply;
            lock (_sync)
                _layout.TryGetValue(w, out reply);
            if (reply is null)
            {
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
                lock (_sync)
                {
                    if (generation == _layoutGeneration)
                        _layout[w] = reply;
                }
            }
            result.Add((w * LayoutWindow, reply));
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

    private async Task PrefetchAsync(long from, int length)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            await ReadRangeAsync(from, buffer.AsMemory(0, length), CancellationToken.None);
        }
        catch (Exception ex)
        {
            _logger.LogDebug(ex, "Read-ahead of inode {Ino} at {From} failed", Ino, from);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Flushes what is buffered (errors are logged: call FlushAsync to see them), then frees the buffers.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await FlushAsync();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Flush on dispose of inode {Ino} failed; unflushed data is dropped", Ino);
        }
        Task[] readAheads;
        lock (_sync)
            readAheads = [.. _readAheads];
        await Task.WhenAll(readAheads); // never faults: failures are logged inside
        List<PendingChunk> pending;
        int freed;
        lock (_sync)
        {
            freed = _dirty.Truncate(0);
            pending = [.. _pending];
            _pending.Clear();
        }
        await Task.WhenAll(pending.Select(p => p.Upload));
        foreach (var p in pending.Where(p => p.Pages is not null))
        {
            freed += p.Pages!.Count;
            p.Pages.ForEach(page => ArrayPool<byte>.Shared.Return(page));
            p.Pages = null;
        }
        _client.Budget.Release((long)freed * DirtySegment.PageSize);
        _client.UntrackIfClean(this);
    }
}
