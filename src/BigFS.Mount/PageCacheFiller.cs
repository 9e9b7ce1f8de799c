using System.Collections.Concurrent;
using BigFS.Fuse;
using Microsoft.Extensions.Logging;

namespace BigFS.Mount;

/// <summary>
/// After a small READ (random access: the kernel asked for a few pages), pushes the rest of the
/// verified 64 KiB block(s) the daemon fetched for it into the kernel's page cache
/// (FUSE_NOTIFY_STORE), so reads of the neighbouring pages never leave the kernel. The page cache
/// does not count toward the daemon's memory, and the kernel drops it like any other (and at the
/// next open whose data version changed: close-to-open).
/// </summary>
/// <remarks>
/// Only data served from memory is pushed (committed, verified blocks), only while no handle of the
/// inode is open for writing on this mount (a store would overwrite dirty mmap pages), and only if
/// the file did not change meanwhile: its change epoch is checked before the store and again after
/// (a store waits for the page locks of a WRITE in flight, so a write that raced it has been seen by
/// then) — a change found after the store invalidates the range again. Stores run on one thread of
/// their own, never on a READ handler: the kernel locks the pages of a READ until its reply.
/// </remarks>
internal sealed class PageCacheFiller : IDisposable
{
    public const int BlockSize = 64 * 1024;
    private const int PageSize = 4096;
    private const int MaxQueued = 64;

    private readonly BlockingCollection<Job> _jobs = new(MaxQueued);
    private readonly Func<ulong, OpenFileTable.OpenFile?> _current;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private volatile IFuseNotifier? _notifier;

    private readonly record struct Job(ulong Ino, OpenFileTable.OpenFile Open, long Start, int Length);

    /// <param name="current">The open file an inode has now (null: none), to drop jobs of handles since released.</param>
    public PageCacheFiller(Func<ulong, OpenFileTable.OpenFile?> current, ILogger logger)
    {
        _current = current;
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = "page-cache-filler" };
        _thread.Start();
    }

    /// <summary>Stores pushed so far (tests, diagnostics).</summary>
    public long Stores => Interlocked.Read(ref _stores);
    private long _stores;

    public void Attach(IFuseNotifier notifier) => _notifier = notifier;

    /// <summary>
    /// The ranges of the blocks around [offset, +length) that a READ did not cover, clipped to the
    /// file's end, with the READ's own pages left out (whole pages, so the kernel can mark them up to date).
    /// </summary>
    public static IEnumerable<(long Start, int Length)> Neighbours(long offset, int length, long fileSize)
    {
        if (length <= 0 || length >= BlockSize || offset >= fileSize)
            yield break;
        var blockStart = offset / BlockSize * BlockSize;
        var blockEnd = Math.Min(fileSize, (offset + length + BlockSize - 1) / BlockSize * BlockSize);
        var readStart = offset / PageSize * PageSize;
        var readEnd = Math.Min(blockEnd, (offset + length + PageSize - 1) / PageSize * PageSize);
        if (readStart > blockStart)
            yield return (blockStart, (int)(readStart - blockStart));
        if (blockEnd > readEnd)
            yield return (readEnd, (int)(blockEnd - readEnd));
    }

    /// <summary>Called after a READ was served; queues its neighbours unless this is no time to push pages.</summary>
    public void OfferAfterRead(ulong ino, OpenFileTable.OpenFile open, long offset, int length)
    {
        if (_notifier is null || length <= 0 || length >= BlockSize || open.Writers > 0)
            return;
        foreach (var (start, count) in Neighbours(offset, length, open.File.Size))
            _jobs.TryAdd(new Job(ino, open, start, count)); // full: dropped, it only saves READs
    }

    private void Run()
    {
        var buffer = GC.AllocateUninitializedArray<byte>(BlockSize);
        try
        {
            foreach (var job in _jobs.GetConsumingEnumerable())
            {
                try
                {
                    Fill(job, buffer.AsMemory(0, job.Length));
                }
                catch (Exception e)
                {
                    _logger.LogDebug(e, "Page cache fill of inode {Ino} at {Offset} failed", job.Ino, job.Start);
                }
            }
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Fill(Job job, Memory<byte> data)
    {
        if (_notifier is not { } notifier)
            return;
        var file = job.Open.File;
        var epoch = file.ChangeEpoch;
        if (!Unchanged(job, epoch) || !file.TryReadCached(job.Start, data) || !Unchanged(job, epoch))
            return;
        var err = notifier.Store(job.Ino, job.Start, data.Span);
        if (err == 0)
            Interlocked.Increment(ref _stores);
        if (!Unchanged(job, epoch))
            notifier.InvalidateInode(job.Ino, job.Start, job.Length);
    }

    private bool Unchanged(Job job, long epoch) =>
        job.Open.File.ChangeEpoch == epoch && job.Open.Writers == 0 && ReferenceEquals(_current(job.Ino), job.Open);

    public void Dispose()
    {
        _jobs.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(5));
        _jobs.Dispose();
    }
}
