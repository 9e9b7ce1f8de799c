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
/// </summary>
public sealed class GroupCommitWriter : IDisposable
{
    private sealed record Batch(IReadOnlyList<StoreChange> Changes, TaskCompletionSource Done);

    private const int MaxChangesPerCommit = 20_000;

    private readonly IMetadataStore _store;
    private readonly ILogger _logger;
    private readonly BlockingCollection<Batch> _queue = new();
    private readonly BlockingCollection<List<Batch>> _written = new();
    private readonly Thread _writerThread;
    private readonly Thread _syncThread;
    private long _commits;
    /// <summary>Groups handed to the sync thread and not yet completed.</summary>
    private long _groupsAtSync;
    /// <summary>Set once a flush failed: nothing written afterwards may be acknowledged either.</summary>
    private volatile Exception? _syncFailure;

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

    /// <summary>Queues changes; the task completes once they are durable (or faults if the store failed).</summary>
    public Task EnqueueAsync(IReadOnlyList<StoreChange> changes)
    {
        if (changes.Count == 0)
            return Task.CompletedTask;
        var batch = new Batch(changes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
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
                    _store.Write(group.Count == 1 ? changes : StoreChange.LastPerRecord(changes));
                    Interlocked.Increment(ref _commits);
                    // Nothing to overlap with (no flush running, nothing queued): flush here and
                    // spare a single caller the thread hand-off.
                    if (Interlocked.Read(ref _groupsAtSync) == 0 && _queue.Count == 0)
                    {
                        SyncAndComplete([group]);
                        continue;
                    }
                    Interlocked.Increment(ref _groupsAtSync);
                    _written.Add(group);
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
            SyncAndComplete(groups);
            Interlocked.Add(ref _groupsAtSync, -groups.Count);
        }
    }

    /// <summary>One flush for every group given (all written already), then their callers are told.</summary>
    private void SyncAndComplete(List<List<Batch>> groups)
    {
        try
        {
            if (_syncFailure is { } earlier)
                throw earlier;
            _store.MakeDurable();
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
