using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The single writer, as a two-stage pipeline. The writer thread takes every batch queued so
/// far and writes them all in one store transaction (group commit); the sync thread makes
/// written groups durable (one fsync for everything written since the last one) and only then
/// completes the callers' tasks. While one group is being flushed to disk, the next one is
/// already being written, so the disk flush and the CPU work overlap. When there is nothing to
/// overlap with, the writer thread flushes itself. Batches are written, and their tasks
/// completed, in the order they were queued.
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
    private readonly BlockingCollection<Batch> _queue = new();
    /// <summary>Written groups waiting for a flush; each list holds the batches still waiting for it (maybe none).</summary>
    private readonly BlockingCollection<List<Batch>> _written = new();
    private readonly Thread _writerThread;
    private readonly Thread _syncThread;
    private long _commits;
    /// <summary>Groups handed to the sync thread and not yet completed.</summary>
    private long _groupsAtSync;
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
    /// <see cref="Durability.Written"/> (and faults if the store failed).
    /// </summary>
    public Task AppendAsync(IReadOnlyList<StoreChange> changes, Durability durability = Durability.Durable)
    {
        if (changes.Count == 0)
            return Task.CompletedTask;
        return Queue(changes, durability);
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
        Interlocked.Increment(ref _groupsAtSync);
        try
        {
            _written.Add([barrier]);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            Interlocked.Decrement(ref _groupsAtSync);
            return Task.FromException(new ObjectDisposedException(nameof(GroupCommitWriter), "the metadata writer is stopped"));
        }
        return barrier.Done.Task;
    }

    private Task Queue(IReadOnlyList<StoreChange> changes, Durability durability)
    {
        var batch = new Batch(changes, durability, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            _queue.Add(batch);
        }
        catch (InvalidOperationException)
        {
            return Task.FromException(new ObjectDisposedException(nameof(GroupCommitWriter), "the metadata writer is stopped"));
        }
        return batch.Done.Task;
    }

    private void RunWriter()
    {
        var changes = new List<StoreChange>();
        try
        {
            foreach (var first in _queue.GetConsumingEnumerable())
            {
                var group = new List<Batch> { first };
                changes.Clear();
                changes.AddRange(first.Changes);
                while (changes.Count < MaxChangesPerCommit && _queue.TryTake(out var next))
                {
                    group.Add(next);
                    changes.AddRange(next.Changes);
                }
                if (_syncFailure is { } failed)
                {
                    Fail(group, failed);
                    continue;
                }
                try
                {
                    if (changes.Count > 0)
                    {
                        _store.Write(group.Count == 1 ? changes : StoreChange.LastPerRecord(changes));
                        Interlocked.Increment(ref _commits);
                    }
                    var seq = Interlocked.Increment(ref _writtenGroups);
                    var waiting = new List<Batch>(group.Count);
                    foreach (var b in group)
                    {
                        if (b.Durability == Durability.Written)
                            b.Done.TrySetResult();
                        else
                            waiting.Add(b);
                    }
                    // Nothing to overlap with (no flush running, nothing queued) and someone waits
                    // for the disk: flush here and spare a single caller the thread hand-off.
                    if (waiting.Count > 0 && Interlocked.Read(ref _groupsAtSync) == 0 && _queue.Count == 0)
                    {
                        SyncAndComplete([waiting], seq);
                        continue;
                    }
                    Interlocked.Increment(ref _groupsAtSync);
                    _written.Add(waiting);
                }
                catch (Exception ex)
                {
                    _logger.LogError(ex, "Metadata group commit of {Changes} changes failed", changes.Count);
                    Fail(group, ex);
                }
            }
        }
        finally
        {
            _written.CompleteAdding();
        }
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
            while (groups.TrueForAll(g => g.Count == 0) && Environment.TickCount64 is var now && now < deadline
                   && _written.TryTake(out var more, (int)(deadline - now)))
            {
                groups.Add(more);
                while (_written.TryTake(out var next))
                    groups.Add(next);
            }
            // Every group handed over was written before it was handed over.
            SyncAndComplete(groups, Interlocked.Read(ref _writtenGroups));
            Interlocked.Add(ref _groupsAtSync, -groups.Count);
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
        // The writer's inline flush and the sync thread may finish out of order: only ever raise it.
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
        _queue.CompleteAdding();
        _writerThread.Join();
        _syncThread.Join();
        _queue.Dispose();
        _written.Dispose();
    }
}
