namespace BigFS.Client;

/// <summary>
/// The global bound on buffered write data (all files). Acquisitions are served in order;
/// one acquisition may exceed the bound only when nothing else is held, so progress is certain.
/// </summary>
internal sealed class WriteBufferBudget(long capacity)
{
    private readonly object _lock = new();
    private readonly LinkedList<(long Bytes, TaskCompletionSource Done)> _waiters = new();
    private long _used;
    private long _highWater;

    public long Capacity => capacity;
    public long Used { get { lock (_lock) return _used; } }
    public long HighWater { get { lock (_lock) return _highWater; } }

    public bool TryAcquire(long bytes)
    {
        lock (_lock)
        {
            if (_waiters.Count > 0 || !FitsLocked(bytes))
                return false;
            TakeLocked(bytes);
            return true;
        }
    }

    public Task AcquireAsync(long bytes, CancellationToken ct)
    {
        LinkedListNode<(long Bytes, TaskCompletionSource Done)> node;
        lock (_lock)
        {
            if (_waiters.Count == 0 && FitsLocked(bytes))
            {
                TakeLocked(bytes);
                return Task.CompletedTask;
            }
            node = _waiters.AddLast((bytes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
        }
        return ct.CanBeCanceled ? WaitAsync(node, ct) : node.Value.Done.Task;
    }

    /// <summary>Waits for a queued acquisition; cancelling withdraws it unless already granted.</summary>
    private async Task WaitAsync(LinkedListNode<(long Bytes, TaskCompletionSource Done)> node, CancellationToken ct)
    {
        // Disposed when the wait ends, granted or not: a long-lived token must not collect one registration per wait.
        using var registration = ct.Register(() =>
        {
            lock (_lock)
            {
                if (node.List is null)
                    return; // already granted
                _waiters.Remove(node);
            }
            node.Value.Done.TrySetCanceled(ct);
        });
        await node.Value.Done.Task.ConfigureAwait(false);
    }

    public void Release(long bytes)
    {
        if (bytes == 0)
            return;
        var granted = new List<TaskCompletionSource>();
        lock (_lock)
        {
            _used -= bytes;
            while (_waiters.First is { } first && FitsLocked(first.Value.Bytes))
            {
                _waiters.RemoveFirst();
                TakeLocked(first.Value.Bytes);
                granted.Add(first.Value.Done);
            }
        }
        foreach (var done in granted)
            done.TrySetResult();
    }

    private bool FitsLocked(long bytes) => _used + bytes <= capacity || _used == 0;

    private void TakeLocked(long bytes)
    {
        _used += bytes;
        _highWater = Math.Max(_highWater, _used);
    }
}
