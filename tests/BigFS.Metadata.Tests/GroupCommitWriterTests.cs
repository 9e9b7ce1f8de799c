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
        var first = writer.AppendAsync([Change(1)]);
        Assert.True(store.FirstApplyStarted.Wait(TimeSpan.FromSeconds(10)));
        var rest = Enumerable.Range(2, 50).Select(i => writer.AppendAsync([Change(i)])).ToList();
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
        var ex = await Assert.ThrowsAsync<IOException>(() => writer.AppendAsync([Change(1)]));
        Assert.Equal("disk full", ex.Message);
    }

    [Fact]
    public async Task Dispose_drains_queued_batches()
    {
        var store = new GatedStore();
        var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var tasks = Enumerable.Range(1, 5).Select(i => writer.AppendAsync([Change(i)])).ToList();
        store.Release.Set();
        writer.Dispose();
        await Task.WhenAll(tasks);
        Assert.Equal(5, store.BatchSizes.Sum());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => writer.AppendAsync([Change(9)]));
    }
    /// <summary>A store whose writes and flushes each wait for a signal.</summary>
    private sealed class GatedSyncStore(int writesAllowed = 0) : IMetadataStore
    {
        public readonly SemaphoreSlim WriteStarted = new(0);
        public readonly SemaphoreSlim AllowWrite = new(writesAllowed);
        public readonly SemaphoreSlim SyncStarted = new(0);
        public readonly SemaphoreSlim AllowSync = new(0);
        public readonly List<int> Written = [];
        public int Durable;
        public Exception? FailSync;

        public MetadataSnapshot Load() => new([], [], [], [], [], null);
        public void Apply(IReadOnlyList<StoreChange> changes) => throw new InvalidOperationException("the writer must use Write + MakeDurable");

        public void Write(IReadOnlyList<StoreChange> changes)
        {
            WriteStarted.Release();
            AllowWrite.Wait();
            lock (Written) Written.Add(changes.Count);
        }

        public void MakeDurable()
        {
            SyncStarted.Release();
            AllowSync.Wait();
            if (FailSync is not null) throw FailSync;
            lock (Written) Durable = Written.Sum();
        }

        public void Dispose() { }
    }

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task While_a_group_is_flushed_the_next_is_written_and_each_is_acknowledged_only_after_its_flush()
    {
        var store = new GatedSyncStore();
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var first = writer.AppendAsync([Change(1)]);
        Assert.True(await store.WriteStarted.WaitAsync(Patience));
        var second = writer.AppendAsync([Change(2), Change(3)]);   // queued: the first group's flush is handed off
        store.AllowWrite.Release();
        Assert.True(await store.SyncStarted.WaitAsync(Patience));
        Assert.True(await store.WriteStarted.WaitAsync(Patience));    // the second group is being written meanwhile
        store.AllowWrite.Release();
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            lock (store.Written)
                if (store.Written.Count == 2) break;
            Assert.True(DateTime.UtcNow < deadline, "the second group was not written during the first flush");
            await Task.Delay(5);
        }
        Assert.False(first.IsCompleted);
        store.AllowSync.Release();
        await first;
        Assert.True(await store.SyncStarted.WaitAsync(Patience));
        Assert.False(second.IsCompleted);   // written, but its flush has not returned
        store.AllowSync.Release();
        await second;
        Assert.Equal(3, store.Durable);
        Assert.Equal([1, 2], store.Written);
    }

    [Fact]
    public async Task After_a_failed_flush_nothing_more_is_acknowledged()
    {
        var store = new GatedSyncStore(writesAllowed: 100) { FailSync = new IOException("EIO") };
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var first = writer.AppendAsync([Change(1)]);
        store.AllowSync.Release();
        Assert.Equal("EIO", (await Assert.ThrowsAsync<IOException>(() => first)).Message);
        store.FailSync = null;   // even if the disk "recovers", the lost pages are not known to be on it
        store.AllowSync.Release(10);
        Assert.Equal("EIO", (await Assert.ThrowsAsync<IOException>(() => writer.AppendAsync([Change(2)]))).Message);
    }

    [Fact]
    public async Task A_written_change_is_acknowledged_before_the_flush_and_a_sync_waits_for_it()
    {
        var store = new GatedSyncStore(writesAllowed: 100);
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        await writer.AppendAsync([Change(1)], Durability.Written).WaitAsync(Patience);
        Assert.Equal(0, store.Durable);                 // acknowledged, not yet on disk
        var sync = writer.SyncAsync();
        Assert.True(await store.SyncStarted.WaitAsync(Patience));
        Assert.False(sync.IsCompleted);
        store.AllowSync.Release();
        await sync.WaitAsync(Patience);
        Assert.Equal(1, store.Durable);
        await writer.SyncAsync().WaitAsync(Patience);   // nothing written since: no flush needed
    }

    [Fact]
    public async Task Written_changes_reach_the_disk_on_their_own_shortly_after()
    {
        var store = new GatedSyncStore(writesAllowed: 100);
        store.AllowSync.Release(100);
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        await writer.AppendAsync([Change(1), Change(2)], Durability.Written).WaitAsync(Patience);
        var deadline = DateTime.UtcNow + Patience;
        while (Volatile.Read(ref store.Durable) != 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "written changes were never flushed");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task A_durable_change_makes_every_change_acknowledged_before_it_durable()
    {
        var store = new GatedSyncStore(writesAllowed: 100);
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        await writer.AppendAsync([Change(1)], Durability.Written).WaitAsync(Patience);
        var durable = writer.AppendAsync([Change(2)], Durability.Durable);
        Assert.False(durable.IsCompleted);
        store.AllowSync.Release(100);
        await durable.WaitAsync(Patience);
        Assert.Equal(2, store.Durable);
    }

    [Fact]
    public async Task Durable_changes_arriving_during_a_flush_share_the_next_one()
    {
        var store = new GatedSyncStore(writesAllowed: 100);
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        try
        {
            var first = writer.AppendAsync([Change(1)]);
            Assert.True(await store.SyncStarted.WaitAsync(Patience));    // its flush is in flight
            var waiting = Enumerable.Range(2, 5).Select(i => writer.AppendAsync([Change(i)])).ToList();
            // All five written while the first flush is still held: a group written only after
            // the next flush began would need a flush of its own.
            var deadline = DateTime.UtcNow + Patience;
            while (true)
            {
                lock (store.Written)
                    if (store.Written.Sum() == 6) break;
                Assert.True(DateTime.UtcNow < deadline, "the five changes were not written during the first flush");
                await Task.Delay(5);
            }
            store.AllowSync.Release();
            await first.WaitAsync(Patience);
            Assert.True(await store.SyncStarted.WaitAsync(Patience));    // one more flush ...
            Assert.All(waiting, t => Assert.False(t.IsCompleted));
            store.AllowSync.Release();
            await Task.WhenAll(waiting).WaitAsync(Patience);
            Assert.Equal(6, store.Durable);
            Assert.Equal(2, writer.Flushes);                              // ... covered all five
        }
        finally
        {
            store.AllowSync.Release(100);   // never leave the writer blocked in a flush
        }
    }

    [Fact]
    public async Task A_sync_barrier_does_not_wait_behind_a_write_it_does_not_cover()
    {
        var store = new GatedSyncStore(writesAllowed: 1);
        store.AllowSync.Release(100);
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        try
        {
            await writer.AppendAsync([Change(1)], Durability.Written).WaitAsync(Patience);
            var later = writer.AppendAsync([Change(2)], Durability.Written);
            Assert.True(await store.WriteStarted.WaitAsync(Patience));   // first write
            Assert.True(await store.WriteStarted.WaitAsync(Patience));   // the second one, held
            await writer.SyncAsync().WaitAsync(Patience);                 // covers only what was acknowledged
            Assert.Equal(1, store.Durable);
            Assert.False(later.IsCompleted);
        }
        finally
        {
            store.AllowWrite.Release(100);
        }
    }

    /// <summary>Records the first change id of every group written, in order.</summary>
    private sealed class RecordingStore : IMetadataStore
    {
        public readonly List<long> Ids = [];
        public readonly List<int> WriterThreads = [];

        public MetadataSnapshot Load() => new([], [], [], [], [], null);
        public void Apply(IReadOnlyList<StoreChange> changes) => Write(changes);

        public void Write(IReadOnlyList<StoreChange> changes)
        {
            lock (Ids)
            {
                Ids.AddRange(changes.Select(c => (long)c.Key));
                WriterThreads.Add(Environment.CurrentManagedThreadId);
            }
        }

        public void Dispose() { }
    }

    [Fact]
    public void A_caller_that_writes_its_own_batch_has_a_written_change_acknowledged_on_its_thread()
    {
        var store = new RecordingStore();
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var done = writer.AppendAsync([Change(1)], Durability.Written, callerWrites: true);
        writer.WriteQueued();
        Assert.True(done.IsCompletedSuccessfully);   // no hand-off: complete when WriteQueued returns
        Assert.Equal([1L], store.Ids);
        Assert.Equal([Environment.CurrentManagedThreadId], store.WriterThreads);
    }

    [Fact]
    public async Task A_caller_finding_another_writer_busy_leaves_its_batch_to_that_writer()
    {
        var store = new GatedSyncStore(writesAllowed: 0);
        store.AllowSync.Release(100);
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var first = writer.AppendAsync([Change(1)], Durability.Written);       // the writer thread takes it and is held
        Assert.True(await store.WriteStarted.WaitAsync(Patience));
        var mine = writer.AppendAsync([Change(2), Change(3)], Durability.Written, callerWrites: true);
        writer.WriteQueued();                                                     // returns at once: the write lock is taken
        Assert.False(mine.IsCompleted);
        store.AllowWrite.Release(100);
        await Task.WhenAll(first, mine).WaitAsync(Patience);
        Assert.Equal([1, 2], store.Written);                                       // the holder wrote it after its own group
    }

    [Fact]
    public async Task Batches_written_by_callers_and_by_the_writer_thread_keep_the_order_they_were_queued_in()
    {
        var store = new RecordingStore();
        using var writer = new GroupCommitWriter(store, NullLogger.Instance);
        var order = new Lock();   // stands for the metadata lock: queued in this order
        long next = 0;
        var tasks = new List<Task>();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(worker => Task.Run(() =>
        {
            for (var i = 0; i < 500; i++)
            {
                var callerWrites = (worker + i) % 2 == 0;
                Task t;
                lock (order)
                    t = writer.AppendAsync([Change(++next)], i % 7 == 0 ? Durability.Durable : Durability.Written, callerWrites);
                if (callerWrites)
                    writer.WriteQueued();
                lock (tasks) tasks.Add(t);
            }
        })));
        await Task.WhenAll(tasks).WaitAsync(Patience);
        Assert.Equal(Enumerable.Range(1, 2000).Select(i => (long)i), store.Ids);
    }
}
