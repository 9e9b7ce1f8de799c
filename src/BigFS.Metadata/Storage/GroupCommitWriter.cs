using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace BigFS.Metadata.Storage;

/// <summary>
/// The single writer: a dedicated thread takes every batch queued so far, applies them all in
/// one store transaction (group commit), makes it durable, and only then completes the
/// callers' tasks. Batches are applied in the order they were queued.
/// </summary>
public sealed class GroupCommitWriter : IDisposable
{
    private sealed record Batch(IReadOnlyList<StoreChange> Changes, TaskCompletionSource Done);

    private const int MaxChangesPerCommit = 20_000;

    private readonly IMetadataStore _store;
    private readonly ILogger _logger;
    private readonly BlockingCollection<Batch> _queue = new();
    private readonly Thread _thread;

    public GroupCommitWriter(IMetadataStore store, ILogger logger)
    {
        _store = store;
        _logger = logger;
        _thread = new Thread(Run) { Name = "bigfs-meta-writer", IsBackground = true };
        _thread.Start();
    }

    public long Commits { get; private set; }

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

    private void Run()
    {
        var group = new List<Batch>();
        var changes = new List<StoreChange>();
        foreach (var first in _queue.GetConsumingEnumerable())
        {
            group.Clear();
            changes.Clear();
            group.Add(first);
            changes.AddRange(first.Changes);
            while (changes.Count < MaxChangesPerCommit && _queue.TryTake(out var next))
            {
                group.Add(next);
                changes.AddRange(next.Changes);
            }
            try
            {
                _store.Apply(group.Count == 1 ? changes : StoreChange.LastPerRecord(changes));
                Commits++;
                foreach (var b in group)
                    b.Done.TrySetResult();
            }
            catch (Exception ex)
            {
                _logger.LogError(ex, "Metadata group commit of {Changes} changes failed", changes.Count);
                foreach (var b in group)
                    b.Done.TrySetException(ex);
            }
        }
    }

    /// <summary>Drains the queue (every queued batch is still written) and stops the thread.</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
    }
}
