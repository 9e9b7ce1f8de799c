using BigFS.Metadata.Logic;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

/// <summary>What mounts are told about other sessions' changes, and when changes are durable.</summary>
public class ChangeFeedTests
{
    private readonly Harness _h = new();
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    private static async Task<ChangeNotice> Next(ChangeWatcher w) =>
        await w.NextAsync(CancellationToken.None).AsTask().WaitAsync(Patience) ?? throw new InvalidOperationException("the watch ended");

    [Fact]
    public async Task A_change_is_told_to_other_watchers_with_its_directories_and_inodes_but_not_to_its_origin()
    {
        using var mine = _h.Ns.WatchChanges("a");
        using var theirs = _h.Ns.WatchChanges("b");
        ChangeOrigin.Session = "a";
        ulong f;
        try
        {
            f = await _h.Create(1, "f");
        }
        finally
        {
            ChangeOrigin.Session = null;
        }
        var notice = await Next(theirs);
        Assert.Equal([1ul], notice.Directories);
        Assert.Contains(f, notice.Inodes);
        Assert.Contains(1ul, notice.Inodes);   // the directory's mtime changed
        var own = mine.NextAsync(CancellationToken.None);
        Assert.False(own.IsCompleted);

        await _h.Ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("f"), NewParent = 1, NewName = Name("g") });
        Assert.Equal([1ul], (await own.AsTask().WaitAsync(Patience))?.Directories);   // no origin: everyone is told
        Assert.Equal([1ul], (await Next(theirs)).Directories);
    }

    [Fact]
    public async Task A_notice_names_the_entries_that_changed()
    {
        await _h.Create(1, "f");
        var d = await _h.Create(1, "d", InodeType.Directory, 0x1ED);
        using var w = _h.Ns.WatchChanges("b");
        static string Names(ChangeNotice n) => string.Join(" ", n.Names.Select(c => $"{c.Parent}/{c.Name.ToStringUtf8()}"));

        await _h.Ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("f"), NewParent = d, NewName = Name("g") });
        Assert.Equal($"1/f {d}/g", Names(await Next(w)));
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = d, Name = Name("g") });
        Assert.Equal($"{d}/g", Names(await Next(w)));

        await _h.Ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("d"), NewParent = 1, NewName = Name("e") });
        var notice = await Next(w);
        Assert.Equal("1/d 1/e", Names(notice));
        Assert.Equal([1ul], notice.Directories);
    }

    [Fact]
    public async Task A_watcher_that_falls_behind_is_told_to_reset()
    {
        using var slow = _h.Ns.WatchChanges("slow");
        for (var i = 0; i < ChangeFeed.Backlog + 10; i++)
            await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = 1, Valid = 1, Mode = (uint)(0x1C0 | (i & 7)) });
        Assert.True((await Next(slow)).Reset);
    }

    [Fact]
    public async Task A_stopped_watcher_is_told_nothing_more()
    {
        var w = _h.Ns.WatchChanges("gone");
        w.Dispose();
        Assert.False(_h.State.Feed.HasWatchers);
        await _h.Create(1, "quiet");
    }

    [Fact]
    public async Task Namespace_changes_and_a_close_commit_are_acknowledged_once_written_an_fsync_commit_once_durable()
    {
        var f = await _h.Create(1, "f");
        await _h.Ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("f"), NewParent = 1, NewName = Name("g") });
        Assert.All(_h.Log.Appends, d => Assert.Equal(Durability.Written, d));

        await _h.RegisterNode("p");
        var chunk = NewChunkId();
        await _h.RegisterChunk("p", chunk, size: 10, owner: f, goal: 1);
        var commit = new CommitWriteRequest { Ino = f };
        commit.Extents.Add(new Extent { FileOffset = 0, Length = 10, ChunkId = chunk });
        Assert.Equal(0, (await _h.Ns.CommitWriteAsync(commit)).Errno);   // fsync
        Assert.Equal(Durability.Durable, _h.Log.Appends[^1]);
        commit.Lazy = true;                                                 // close, flush
        Assert.Equal(0, (await _h.Ns.CommitWriteAsync(commit)).Errno);
        Assert.Equal(Durability.Written, _h.Log.Appends[^1]);

        Assert.Equal(0, (await _h.Ns.SyncAsync()).Errno);
        Assert.Equal(1, _h.Log.Syncs);
    }

    [Fact]
    public async Task A_rename_replies_with_the_moved_inode()
    {
        var f = await _h.Create(1, "f");
        var reply = await _h.Ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("f"), NewParent = 1, NewName = Name("g") });
        Assert.Equal(0, reply.Errno);
        Assert.Equal(f, reply.Attr.Ino);
    }
}
