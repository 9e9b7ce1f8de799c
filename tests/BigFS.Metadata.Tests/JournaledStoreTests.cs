using System.Buffers;
using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using LiteDB;

namespace BigFS.Metadata.Tests;

public sealed class JournaledStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bigfs-journal-test-" + Guid.NewGuid().ToString("N"));
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public JournaledStoreTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static StoreChange Inode(long id, int mode = 0x1A4) =>
        StoreChange.Put(RecordKind.Inode, id, new InodeRecord { Id = id, Mode = mode, Xattrs = [new XattrEntry { Name = [1], Value = [2, 3] }] });

    private static StoreChange Dirent(long parent, string name, long child) =>
        StoreChange.Put(RecordKind.Dirent, DirentRecord.KeyOf(parent, System.Text.Encoding.UTF8.GetBytes(name)),
            new DirentRecord { Id = DirentRecord.KeyOf(parent, System.Text.Encoding.UTF8.GetBytes(name)), Parent = parent, Name = System.Text.Encoding.UTF8.GetBytes(name), Child = child });

    private string[] Segments() => Directory.GetFiles(_dir, JournaledMetadataStore.SegmentPrefix + "*");

    /// <summary>An inner store that never finishes applying: everything stays in the journal only.</summary>
    private sealed class StuckStore : IMetadataStore
    {
        private readonly ManualResetEventSlim _never = new();
        public MetadataSnapshot Load() => new([], [], [], [], [], null);
        public void Apply(IReadOnlyList<StoreChange> changes) => _never.Wait();
        public void Dispose() => _never.Set();
    }

    [Fact]
    public void Encoded_groups_decode_to_the_same_changes_and_a_torn_tail_is_left_out()
    {
        var mapper = new BsonMapper { EnumAsInteger = true };
        var buffer = new ArrayBufferWriter<byte>();
        JournalCodec.Encode([Inode(5, 0x1ED), StoreChange.Delete(RecordKind.Chunk, "abc"), Dirent(1, "f", 5)], buffer);
        JournalCodec.Encode([StoreChange.Delete(RecordKind.Inode, 9L)], buffer);
        var whole = buffer.WrittenMemory;

        var groups = JournalCodec.Decode(whole, mapper).ToList();
        Assert.Equal(2, groups.Count);
        Assert.Equal(0x1ED, ((InodeRecord)groups[0][0].Record!).Mode);
        Assert.Equal([2, 3], ((InodeRecord)groups[0][0].Record!).Xattrs[0].Value);
        Assert.Equal((RecordKind.Chunk, (object)"abc", (object?)null), (groups[0][1].Kind, groups[0][1].Key, groups[0][1].Record));
        Assert.Equal(5L, ((DirentRecord)groups[0][2].Record!).Child);
        Assert.Equal(9L, groups[1][0].Key);

        Assert.Single(JournalCodec.Decode(whole[..^3], mapper));             // the second record torn
        var corrupt = whole.ToArray();
        corrupt[^1] ^= 0xFF;
        Assert.Single(JournalCodec.Decode(corrupt, mapper));                  // the second record's checksum fails
    }

    [Fact]
    public void Written_groups_survive_a_crash_before_the_store_applied_them()
    {
        var journal = new JournaledMetadataStore(new StuckStore(), _dir);
        for (var i = 1; i <= 100; i++)
            journal.Write([Inode(i), Dirent(1, $"f{i}", i)]);
        journal.Write([StoreChange.Delete(RecordKind.Inode, 7L)]);
        // A crash: the process is gone with nothing applied; the journal files are what the page cache held.
        var crash = Path.Combine(_dir, "crash");
        Directory.CreateDirectory(crash);
        foreach (var segment in Segments())
            File.Copy(segment, Path.Combine(crash, Path.GetFileName(segment)));

        using var recovered = new JournaledMetadataStore(new LiteDbMetadataStore(crash), crash);
        var snapshot = recovered.Load();
        Assert.Equal(99, snapshot.Inodes.Count);
        Assert.DoesNotContain(snapshot.Inodes, i => i.Id == 7);
        Assert.Equal(100, snapshot.Dirents.Count);
    }

    [Fact]
    public void Zeros_are_not_a_record()
    {
        var mapper = new BsonMapper { EnumAsInteger = true };
        Assert.Empty(JournalCodec.Decode(new byte[64 * 1024], mapper));
        var buffer = new ArrayBufferWriter<byte>();
        JournalCodec.Encode([Inode(1)], buffer);
        buffer.Write(new byte[4096]);
        Assert.Single(JournalCodec.Decode(buffer.WrittenMemory, mapper));
    }

    [Fact]
    public void Segments_are_zero_filled_ahead_and_replay_stops_at_the_zero_tail()
    {
        var journal = new JournaledMetadataStore(new StuckStore(), _dir);
        for (var i = 1; i <= 50; i++)
            journal.Write([Inode(i), Dirent(1, $"f{i}", i)]);
        journal.MakeDurable();
        var segment = Assert.Single(Segments());
        var bytes = File.ReadAllBytes(segment);
        Assert.Equal(JournaledMetadataStore.FillStep, bytes.Length);   // preallocated, records only at the start
        Assert.True(bytes.AsSpan(bytes.Length - 1024).IndexOfAnyExcept((byte)0) < 0);

        // A crash copy with the last record torn: what was whole replays, the rest is zeros.
        var crash = Path.Combine(_dir, "crash");
        Directory.CreateDirectory(crash);
        var used = bytes.AsSpan().LastIndexOfAnyExcept((byte)0) + 1;
        bytes.AsSpan(used - 5, 5).Clear();
        File.WriteAllBytes(Path.Combine(crash, Path.GetFileName(segment)), bytes);
        using var recovered = new JournaledMetadataStore(new LiteDbMetadataStore(crash), crash);
        var snapshot = recovered.Load();
        Assert.Equal(49, snapshot.Inodes.Count);
        Assert.DoesNotContain(snapshot.Inodes, i => i.Id == 50);
    }

    [Fact]
    public void A_group_larger_than_the_fill_step_extends_the_segment()
    {
        using (var journal = new JournaledMetadataStore(new LiteDbMetadataStore(_dir), _dir, segmentBytes: 4096))
        {
            var big = Enumerable.Range(1, 20_000).Select(i => Inode(i)).ToList();   // several MiB in one record
            journal.Write([Inode(100_000)]);
            journal.Write(big);
            journal.Write([Inode(100_001)]);
            journal.MakeDurable();
        }
        using var reopened = new JournaledMetadataStore(new LiteDbMetadataStore(_dir), _dir);
        Assert.Equal(20_002, reopened.Load().Inodes.Count);
    }

    [Fact]
    public async Task Groups_reach_the_store_in_the_background_and_applied_segments_are_removed()
    {
        using (var journal = new JournaledMetadataStore(new LiteDbMetadataStore(_dir), _dir, segmentBytes: 4096))
        {
            for (var i = 1; i <= 300; i++)
                journal.Write([Inode(i, i)]);
            journal.MakeDurable();
            var deadline = DateTime.UtcNow + Patience;
            while (journal.AppliedGroups < 300 || Segments().Length > 1)
            {
                Assert.True(DateTime.UtcNow < deadline, $"applied {journal.AppliedGroups}, {Segments().Length} segments left");
                await Task.Delay(10);
            }
        }
        Assert.Empty(Segments());   // a clean stop leaves everything in the store
        using var reopened = new JournaledMetadataStore(new LiteDbMetadataStore(_dir), _dir);
        var snapshot = reopened.Load();
        Assert.Equal(300, snapshot.Inodes.Count);
        Assert.Equal(300, snapshot.Inodes.Single(i => i.Id == 300).Mode);
    }

    [Fact]
    public void Replaying_a_journal_the_store_had_partly_applied_ends_in_the_same_state()
    {
        var crash = Path.Combine(_dir, "crash");
        Directory.CreateDirectory(crash);
        using (var lite = new LiteDbMetadataStore(crash))
            lite.Apply([Inode(1, 1), Inode(2, 2)]);   // what the store already had when the process died
        var mapper = new BsonMapper { EnumAsInteger = true };
        var buffer = new ArrayBufferWriter<byte>();
        JournalCodec.Encode([Inode(1, 1), Inode(2, 2)], buffer);
        JournalCodec.Encode([Inode(1, 10), StoreChange.Delete(RecordKind.Inode, 2L)], buffer);
        File.WriteAllBytes(Path.Combine(crash, JournaledMetadataStore.SegmentPrefix + "1.log"), buffer.WrittenSpan.ToArray());

        using var recovered = new JournaledMetadataStore(new LiteDbMetadataStore(crash), crash);
        var inode = Assert.Single(recovered.Load().Inodes);
        Assert.Equal(10, inode.Mode);
    }

    [Fact]
    public void The_callers_list_is_its_own_again_once_write_returns()
    {
        using (var journal = new JournaledMetadataStore(new LiteDbMetadataStore(_dir), _dir))
        {
            var reused = new List<StoreChange>();   // the group-commit writer reuses one list
            for (var i = 1; i <= 500; i++)
            {
                reused.Clear();
                reused.Add(Inode(i));
                journal.Write(reused);
            }
            reused.Clear();
        }
        using var reopened = new JournaledMetadataStore(new LiteDbMetadataStore(_dir), _dir);
        Assert.Equal(500, reopened.Load().Inodes.Count);
    }
}
