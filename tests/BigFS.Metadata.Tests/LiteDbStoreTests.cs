using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;

namespace BigFS.Metadata.Tests;

public sealed class LiteDbStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bigfs-litedb-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static StoreChange Inode(long id) =>
        StoreChange.Put(RecordKind.Inode, id, new InodeRecord { Id = id, Mode = 0x1A4, Xattrs = [new XattrEntry { Name = [1], Value = new byte[2000] }] });

    [Fact]
    public void Records_applied_across_checkpoints_survive_a_crash()
    {
        const int batches = 1500;
        var live = Path.Combine(_dir, "live");
        var crash = Path.Combine(_dir, "crash");
        using (var store = new LiteDbMetadataStore(live))
        {
            for (var i = 1; i <= batches; i++)
                store.Apply([Inode(i), StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, new CountersRecord { NextInode = i + 1 })]);
            // The log outgrew the auto-checkpoint size at least once, and the data file was synced
            // before the log was reused.
            Assert.True(store.CheckpointDataSyncs > 0, "no checkpoint happened; the test did not exercise log reuse");
            store.Apply([StoreChange.Delete(RecordKind.Inode, 7L)]);
            // Crash: copy the files without closing the store.
            Directory.CreateDirectory(crash);
            foreach (var name in new[] { LiteDbMetadataStore.DataFileName, LiteDbMetadataStore.LogFileName })
                File.Copy(Path.Combine(live, name), Path.Combine(crash, name));
        }
        using var reopened = new LiteDbMetadataStore(crash);
        var snapshot = reopened.Load();
        Assert.Equal(batches - 1, snapshot.Inodes.Count);
        Assert.DoesNotContain(snapshot.Inodes, i => i.Id == 7);
        Assert.Equal(batches + 1, snapshot.Counters!.NextInode);
        Assert.Equal(2000, snapshot.Inodes[0].Xattrs.Single().Value.Length);
    }

    [Fact]
    public void A_batch_costs_one_fsync_when_no_checkpoint_wrote_the_data_file()
    {
        using var store = new LiteDbMetadataStore(_dir);
        var before = store.FileSyncs;
        for (var i = 1; i <= 10; i++)
            store.Apply([Inode(i)]);
        // The log is fsync'd once per batch; the data file, untouched by commits, never.
        Assert.Equal(10, store.FileSyncs - before);
    }

    [Fact]
    public void Last_change_per_record_wins_when_batches_are_merged()
    {
        var first = Inode(2);
        var merged = StoreChange.LastPerRecord([
            Inode(1), first, StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, new CountersRecord { NextInode = 3 }),
            StoreChange.Delete(RecordKind.Inode, 1L), StoreChange.Put(RecordKind.Dirent, "1/2", new DirentRecord { Id = "1/2" }),
            StoreChange.Put(RecordKind.Counters, CountersRecord.SingletonId, new CountersRecord { NextInode = 4 }),
        ]);
        Assert.Equal(4, merged.Count);
        Assert.Same(first, merged[0]);
        Assert.Null(merged.Single(c => c.Kind == RecordKind.Inode && (long)c.Key == 1).Record);
        Assert.Equal(4, ((CountersRecord)merged.Single(c => c.Kind == RecordKind.Counters).Record!).NextInode);
        using var store = new LiteDbMetadataStore(_dir);
        store.Apply(merged);
        var snapshot = store.Load();
        Assert.Equal([2L], snapshot.Inodes.Select(i => i.Id));
        Assert.Equal(4, snapshot.Counters!.NextInode);
    }

    [Fact]
    public void Every_record_kind_round_trips()
    {
        var chunk = new ChunkRecord
        {
            Id = "0123456789abcdef0123456789abcdef", Size = 5, Checksum = unchecked((long)ulong.MaxValue), BlockChecksums = [-1, 2],
            State = ChunkState.Live, Goal = 3, Copies = [new CopyRecord { NodeId = "n", Status = CopyState.Deleting, Primary = true }],
        };
        using (var store = new LiteDbMetadataStore(_dir))
        {
            store.Apply([
                StoreChange.Put(RecordKind.Chunk, chunk.Id, chunk),
                StoreChange.Put(RecordKind.Node, "n", new NodeRecord { Id = "n", Address = "http://x:1", Labels = ["rack1"] }),
                StoreChange.Put(RecordKind.Dirent, "1/41", new DirentRecord { Id = "1/41", Parent = 1, Name = [0x41], Child = 2, Cookie = 9 }),
                StoreChange.Put(RecordKind.Layout, "2:0", new LayoutRegionRecord
                    { Id = "2:0", Ino = 2, Region = 0, Extents = [new ExtentRecord { FileOffset = 0, Length = 5, ChunkId = chunk.Id }] }),
                StoreChange.Put(RecordKind.Reply, "s/3", new ReplyRecord
                    { Id = "s/3", Session = "s", Slot = 3, Seq = 8, Reply = [1, 2, 3], TimeMs = 5, RanInThisProcess = true }),
                StoreChange.Put(RecordKind.Inode, 2L, new InodeRecord { Id = 2, Mode = 0x1A4, Unnamed = true, StoredBytes = 5 }),
            ]);
        }
        using var reopened = new LiteDbMetadataStore(_dir);
        var s = reopened.Load();
        var c = Assert.Single(s.Chunks);
        Assert.Equal(ulong.MaxValue, unchecked((ulong)c.Checksum));
        Assert.Equal([-1L, 2L], c.BlockChecksums);
        Assert.Equal(CopyState.Deleting, c.Copies.Single().Status);
        Assert.Equal(ChunkState.Live, c.State);
        Assert.Equal(["rack1"], Assert.Single(s.Nodes).Labels);
        Assert.Equal(9, Assert.Single(s.Dirents).Cookie);
        Assert.Equal(chunk.Id, Assert.Single(Assert.Single(s.Layouts).Extents).ChunkId);
        var reply = Assert.Single(s.Replies!);
        Assert.Equal(("s/3", "s", 3L, 8L, 5L), (reply.Id, reply.Session, reply.Slot, reply.Seq, reply.TimeMs));
        Assert.Equal([1, 2, 3], reply.Reply);
        Assert.False(reply.RanInThisProcess);
        var inode = Assert.Single(s.Inodes);
        Assert.Equal((2L, 0x1A4, true, 0L), (inode.Id, inode.Mode, inode.Unnamed, inode.StoredBytes));
    }
}
