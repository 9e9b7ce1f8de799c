using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The log's writer, as a two-stage pipeline. A group is every batch queued so far, written in
/// one store transaction (group commit); the sync thread makes written groups durable (one
/// fsync for everything written since the last one) and only then completes the callers' tasks.
/// While one group is being flushed to disk, the next one is already being written, so the disk
/// flush and the CPU work overlap. Batches are written, and their tasks completed, in the order
/// they were queued.
/// <para>
/// Who writes a group: the writer thread, or — for a caller that asks to and then calls
/// <see cref="WriteQueued"/> — the caller itself when no other thread is writing. A namespace
/// change is then written and acknowledged on the thread that made it, sparing two thread
/// hand-offs (to the writer and back).
/// </para>
/// <para>
/// A batch queued as <see cref="Durability.Written"/> completes as soon as its group is written
/// (before the flush); the flush follows lazily unless a durable batch or a <see cref="SyncAsync"/>
/// barrier is waiting. Since every flush covers everything written before it, a durable
/// change also makes durable every change acknowledged before it.
/// </para>
/// </summary>
public sealed class GroupCommitWriter : IChangeLog, IDisposable
{
    private sealed record Batch(IReadOnlyList<StoreChange> Changes, Durability Durability, TaskCompletionSource Done);

    private const int MaxChangesPerCommit = 20_000;

    /// <summary>How long written-but-not-durable changes may wait for a flush of their own.</summary>
    public static readonly TimeSpan LazyFlushDelay = TimeSpan.FromMilliseconds(20);

    private readonly IMetadataStore _store;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<Batch> _queue = new();
    /// <summary>Guards queuing against <see cref="Dispose"/>: nothing is queued once stopping.</summary>
    private readonly Lock _queueLock = new();
    private bool _stopping;
    /// <summary>Held by whoever writes a group (writer thread or a caller): one writer at a time, in queue order.</summary>
    private readonly Lock _writeLock = new();
    /// <summary>Wakes the writer thread: one count per batch it is asked to write.</summary>
    private readonly SemaphoreSlim _wake = new(0);
    /// <summary>Written groups waiting for a flush; each list holds the batches still waiting for it (maybe none).</summary>
    private readonly BlockingCollection<List<Batch>> _written = new();
    private readonly Thread _writerThread;
    private readonly Thread _syncThread;
    private long _commits;
    /// <summary>1 while the sync thread holds a lazy flush open: written groups need not wake it again.</summary>
    private int _lazyFlushArmed;
    /// <summary>Set once a flush failed: nothing written afterwards may be acknowledged either.</summary>
    private volatile Exception? _syncFailure;
    /// <summary>Groups written so far, and how many of them a finished flush covered.</summary>
    private long _writtenGroups, _durableGroups;

    public GroupCommitWriter(IMetadataStore store, ILogger logger)
    {
        _store = store;
        _logger = logger;
        _writerThread = new Thread(RunWriter) { Name = "bigfs-meta-writer", IsBackground = true };
        _syncThread = new Thread(RunSync) { Name = "bigfs-meta-sync", IsBackground = true };
        _syncThread.Start();
        _writerThread.Start();
    }

    /// <summary>Store transactions written (each group of batches is one).</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Flushes to disk (each covers every group written before it).</summary>
    public long Flushes => Interlocked.Read(ref _flushes);
    private long _flushes;

    /// <summary>
    /// Queues changes; the task completes once they are durable, or once written for
    /// <see cref="Durability.Written"/> (and faults if the store failed). With
    /// <paramref name="callerWrites"/>, the caller must call <see cref="WriteQueued"/> next
    /// (outside its locks) instead of waking the writer thread.
    /// </summary>
    public Task AppendAsync(IReadOnlyList<StoreChange> changes, Durability durability = Durability.Durable, bool callerWrites = false)
    {
        if (changes.Count == 0)
            return Task.CompletedTask;
        var batch = new Batch(changes, durability, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_queueLock)
        {
            if (_stopping)
                return Task.FromException(new ObjectDisposedException(nameof(GroupCommitWriter), "the metadata writer is stopped"));
            _queue.Enqueue(batch);
        }
        if (!callerWrites)
            _wake.Release();
        return batch.Done.Task;
    }

    /// <summary>
    /// Writes every queued batch on the calling thread, unless another thread is writing — that
    /// one then writes them too, since it looks at the queue again after letting go. Never waits
    /// for the disk: durable batches go on to the sync thread.
    /// </summary>
    public void WriteQueued()
    {
        while (!_queue.IsEmpty)
        {
            if (!_writeLock.TryEnter())
                return;
            try
            {
                while (WriteGroup()) { }
            }
            finally
            {
                _writeLock.Exit();
            }
            // Pairs with the failed TryEnter of a caller that queued meanwhile: one of us sees the other.
            Interlocked.MemoryBarrier();
        }
    }

    /// <summary>A barrier: completes once every change acknowledged before the call is durable.</summary>
    public Task SyncAsync()
    {
        // Acknowledged changes are all written; if a finished flush covered every written group, done.
        if (Interlocked.Read(ref _durableGroups) >= Interlocked.Read(ref _writtenGroups))
            return _syncFailure is { } failed ? Task.FromException(failed) : Task.CompletedTask;
        // Nothing to write: straight to the sync thread (a flush that starts later covers
        // everything acknowledged before this call), sparing a hop through the writer thread.
        var barrier = new Batch([], Durability.Durable, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            _written.Add([barrier]);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            return Task.FromException(new ObjectDisposedException(nameof(GroupCommitWriter), "the metadata writer is stopped"));
        }
        return barrier.Done.Task;
    }

    private void RunWriter()
    {
        try
        {
            while (true)
            {
                _wake.Wait();
                lock (_writeLock)
                {
                    while (WriteGroup()) { }
                }
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _stopping) && _queue.IsEmpty)
                    break;
            }
        }
        finally
        {
            _written.CompleteAdding();
        }
    }

    /// <summary>
    /// Writes one group (call holding <see cref="_writeLock"/>): every batch queued so far, up to
    /// a bound. False when the queue was empty. Never waits for the disk (the write lock would
    /// hold every other writer back meanwhile): batches waiting for it go to the sync thread.
    /// </summary>
    private bool WriteGroup()
    {
        if (!_queue.TryDequeue(out var first))
            return false;
        var group = new List<Batch> { first };
        var changes = first.Changes;
        if (!_queue.IsEmpty)
        {
            var all = new List<StoreChange>(first.Changes);
            while (all.Count < MaxChangesPerCommit && _queue.TryDequeue(out var next))
            {
                group.Add(next);
                all.AddRange(next.Changes);
            }
            changes = group.Count == 1 ? all : StoreChange.LastPerRecord(all);
        }
        if (_syncFailure is { } failed)
        {
            Fail(group, failed);
            return true;
        }
        try
        {
            _store.Write(changes);
            Interlocked.Increment(ref _commits);
            Interlocked.Increment(ref _writtenGroups);
            var waiting = new List<Batch>(group.Count);
            foreach (var b in group)
            {
                if (b.Durability == Durability.Written)
                    b.Done.TrySetResult();
                else
                    waiting.Add(b);
            }
            // A lazy flush already armed covers this group: it reads the written count after disarming.
            if (waiting.Count == 0 && Volatile.Read(ref _lazyFlushArmed) == 1)
                return true;
            _written.Add(waiting);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Metadata group commit of {Changes} changes failed", changes.Count);
            Fail(group, ex);
        }
        return true;
    }

    private void RunSync()
    {
        var groups = new List<List<Batch>>();
        foreach (var first in _written.GetConsumingEnumerable())
        {
            groups.Clear();
            groups.Add(first);
            while (_written.TryTake(out var next))
                groups.Add(next);
            // Nobody waits for the disk yet: give more changes (or a durable one) a moment to
            // share this flush. A durable group ends the wait at once.
            var deadline = Environment.TickCount64 + (long)LazyFlushDelay.TotalMilliseconds;
            var lazy = groups.TrueForAll(g => g.Count == 0);
            if (lazy)
                Interlocked.Exchange(ref _lazyFlushArmed, 1);
            while (groups.TrueForAll(g => g.Count == 0) && Environment.TickCount64 is var now && now < deadline
                   && _written.TryTake(out var more, (int)(deadline - now)))
            {
                groups.Add(more);
                while (_written.TryTake(out var next))
                    groups.Add(next);
            }
            // Disarm before reading the written count, so a group that skipped waking us is covered.
            if (lazy)
                Interlocked.Exchange(ref _lazyFlushArmed, 0);
            // Every group handed over was written before it was handed over.
            SyncAndComplete(groups, Interlocked.Read(ref _writtenGroups));
        }
    }

    /// <summary>One flush for every group given (all written already), then their callers are told.</summary>
    private void SyncAndComplete(List<List<Batch>> groups, long writtenBeforeFlush)
    {
        try
        {
            if (_syncFailure is { } earlier)
                throw earlier;
            // A flush that ended after these groups were written covers them already (a Sync
            // barrier can overtake the writer's hand-over of a lazily flushed group): no second fsync.
            if (writtenBeforeFlush > Interlocked.Read(ref _durableGroups))
            {
                _store.MakeDurable();
                Interlocked.Increment(ref _flushes);
            }
        }
        catch (Exception ex)
        {
            // After a failed fsync the kernel may have dropped the dirty pages: a later fsync
            // succeeding proves nothing, so every later change fails too.
            if (_syncFailure is null)
                _logger.LogCritical(ex, "Metadata flush to disk failed; refusing further changes");
            _syncFailure ??= ex;
            foreach (var group in groups)
                Fail(group, ex);
            return;
        }
        // Only ever raised: a count read for an earlier flush must never lower it.
        for (var seen = Interlocked.Read(ref _durableGroups); writtenBeforeFlush > seen;)
        {
            var was = Interlocked.CompareExchange(ref _durableGroups, writtenBeforeFlush, seen);
            if (was == seen) break;
            seen = was;
        }
        foreach (var group in groups)
            foreach (var b in group)
                b.Done.TrySetResult();
    }

    private static void Fail(List<Batch> group, Exception ex)
    {
        foreach (var b in group)
            b.Done.TrySetException(ex);
    }

    /// <summary>Drains the queue (every queued batch is still written and flushed) and stops the threads.</summary>
    public void Dispose()
    {
        lock (_queueLock)
        {
            if (_stopping)
                return;
            Volatile.Write(ref _stopping, true);
        }
        _wake.Release();
        _writerThread.Join();
        _syncThread.Join();
        _written.Dispose();
        _wake.Dispose();
    }
}
