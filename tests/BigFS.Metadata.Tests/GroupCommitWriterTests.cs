using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Metadata.Tests;

public class GroupCommitWriterTests
{
    /// <summary>A store whose first Apply waits for a signal, so later batches pile up behind it.</summary>
    private sealed class GatedStore : IMetadataStore
    {
        public readonly ManualResetEventSlim FirstApplyStarted = new();
        public readonly ManualResetEventSlim Release = new();
        public readonly List<int> BatchSizes = [];
        public Exception? Fail;

        public MetadataSnapshot Load() => new([], [], [], [], [], null);

        public void Apply(IReadOnlyList<StoreChange> changes)
        {
            FirstApplyStarted.Set();
            Release.Wait();
            if (Fail is not null) throw Fail;
            lock (BatchSizes) BatchSizes.Add(changes.Count);
        }

        public void Dispose() { }
    }

    private static StoreChange Change(long i) => StoreChange.Put(RecordKind.Inode, i, new InodeRecord { Id = i });

    [Fact]
    public async Task Batches_queued_during_a_commit_are_grouped_into_the_next_one()
    {
        var store = new GatedStore();
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var first = writer.EnqueueAsync([Change(1)]);
        Assert.True(store.FirstApplyStarted.Wait(TimeSpan.FromSeconds(10)));
        var rest = Enumerable.Range(2, 50).Select(i => writer.EnqueueAsync([Change(i)])).ToList();
        Assert.False(first.IsCompleted);   // not durable until the store returned
        store.Release.Set();
        await Task.WhenAll(rest.Append(first));
        Assert.Equal([1, 50], store.BatchSizes);
    }

    [Fact]
    public async Task A_failed_commit_faults_the_callers_tasks()
    {
        var store = new GatedStore { Fail = new IOException("disk full") };
        store.Release.Set();
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var ex = await Assert.ThrowsAsync<IOException>(() => writer.EnqueueAsync([Change(1)]));
        Assert.Equal("disk full", ex.Message);
    }

    [Fact]
    public async Task Dispose_drains_queued_batches()
    {
        var store = new GatedStore();
        var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var tasks = Enumerable.Range(1, 5).Select(i => writer.EnqueueAsync([Change(i)])).ToList();
        store.Release.Set();
        writer.Dispose();
        await Task.WhenAll(tasks);
        Assert.Equal(5, store.BatchSizes.Sum());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => writer.EnqueueAsync([Change(9)]));
    }
}
