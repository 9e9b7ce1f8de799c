using BigFS.Metadata.Logic;
using BigFS.Metadata.Model;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;
using E = BigFS.Core.Errno;

namespace BigFS.Metadata.Tests;

/// <summary>
/// A change sent again under the same replay slot and sequence number runs once: in the same
/// process (a broken connection) and after a restart from the store (a crash).
/// </summary>
public sealed class ReplyCacheTests
{
    private const string Session = "mount-a";
    private readonly Harness _h = new();
    private MetadataState _state;
    private NamespaceLogic _ns;

    public ReplyCacheTests()
    {
        _state = _h.State;
        _ns = _h.Ns;
        ChangeOrigin.Session = Session;
    }

    /// <summary>A new server process over the same store, as after a crash (memory-only state is gone).</summary>
    private void Restart()
    {
        _state = new MetadataState(_h.Options, _h.Time, _h.Store.Load(), new ImmediateChangeLog(_h.Store));
        _ns = new NamespaceLogic(_state);
    }

    private static ReplaySlot Slot(uint slot, ulong seq) => new() { Slot = slot, Seq = seq };

    private RemoveRequest Remove(string name, uint slot, ulong seq) => new() { Parent = 1, Name = Name(name), Replay = Slot(slot, seq) };

    private int StoredReplies() => _h.Store.Load().Replies!.Count;

    [Fact]
    public async Task A_repeated_unlink_gets_the_first_reply_and_a_new_number_runs_again()
    {
        await _h.Create(1, "f");
        var first = await _ns.UnlinkAsync(Remove("f", 1, 7));
        Assert.Equal(0, first.Errno);
        var repeat = await _ns.UnlinkAsync(Remove("f", 1, 7));
        Assert.Equal(first, repeat);   // not ENOENT: the unlink ran once
        Assert.Equal(E.ENOENT, (await _ns.UnlinkAsync(Remove("f", 1, 8))).Errno);
        // Another session's slot 1 is another slot.
        ChangeOrigin.Session = "mount-b";
        Assert.Equal(E.ENOENT, (await _ns.UnlinkAsync(Remove("f", 1, 7))).Errno);
    }

    [Fact]
    public async Task After_a_restart_a_repeated_mkdir_rename_and_rmdir_are_answered_from_the_store()
    {
        var mkdir = await _ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = 1, Name = Name("d"), Type = InodeType.Directory, Mode = 0x1ED, Replay = Slot(1, 1) });
        var rename = await _ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("d"), NewParent = 1, NewName = Name("e"), Replay = Slot(2, 1) });
        Assert.Equal((0, 0), (mkdir.Errno, rename.Errno));

        Restart();
        var mkdirAgain = await _ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = 1, Name = Name("d"), Type = InodeType.Directory, Mode = 0x1ED, Replay = Slot(1, 1) });
        Assert.Equal(mkdir, mkdirAgain);   // not EEXIST, and no second directory "d"
        Assert.Equal(rename, await _ns.RenameAsync(new RenameRequest { Parent = 1, Name = Name("d"), NewParent = 1, NewName = Name("e"), Replay = Slot(2, 1) }));
        Assert.Equal(["e"], _ns.ReadDirectory(new ReadDirectoryRequest { Ino = 1 }).Entries.Select(e => e.Name.ToStringUtf8()).Where(n => n is not "." and not ".."));

        var rmdir = await _ns.RemoveDirectoryAsync(Remove("e", 1, 2));
        Restart();
        Assert.Equal(rmdir, await _ns.RemoveDirectoryAsync(Remove("e", 1, 2)));
        Assert.Equal(0, rmdir.Errno);
    }

    [Fact]
    public async Task A_create_with_open_repeated_after_a_restart_registers_the_lost_open_once()
    {
        CreateNodeRequest Create() => new()
        {
            Parent = 1, Name = Name("f"), Type = InodeType.File, Mode = 0x1A4, Exclusive = true, OpenSessionId = Session, Replay = Slot(3, 1),
        };
        var created = await _ns.CreateNodeAsync(Create());
        Assert.Equal(0, created.Errno);
        var ino = (long)created.Attr.Ino;
        // In the same process the open is already counted: a repeat adds none.
        await _ns.CreateNodeAsync(Create());
        Assert.Equal(1, _state.OpenCounts[ino]);

        Restart();
        Assert.False(_state.IsOpen(ino));
        Assert.Equal(created, await _ns.CreateNodeAsync(Create()));
        Assert.Equal(1, _state.OpenCounts[ino]);
        await _ns.CreateNodeAsync(Create());
        Assert.Equal(1, _state.OpenCounts[ino]);
    }

    [Fact]
    public async Task A_repeated_commit_does_not_undo_a_later_writer()
    {
        var f = await _h.Create(1, "f");
        await _h.RegisterNode("p");
        var (mine, theirs) = (NewChunkId(), NewChunkId());
        await _h.RegisterChunk("p", mine, size: 1000, owner: f, goal: 1);
        await _h.RegisterChunk("p", theirs, size: 1000, owner: f, goal: 1);
        CommitWriteRequest Commit(string chunk, ReplaySlot? replay)
        {
            var r = new CommitWriteRequest { Ino = f, Replay = replay };
            r.Extents.Add(new Extent { FileOffset = 0, Length = 1000, ChunkId = chunk });
            return r;
        }
        var first = await _ns.CommitWriteAsync(Commit(mine, Slot(1, 1)));
        ChangeOrigin.Session = "mount-b";
        await _ns.CommitWriteAsync(Commit(theirs, Slot(1, 1)));
        ChangeOrigin.Session = Session;

        Restart();
        Assert.Equal(first, await _ns.CommitWriteAsync(Commit(mine, Slot(1, 1))));
        Assert.Equal(theirs, Assert.Single(_ns.GetLayout(new GetLayoutRequest { Ino = f }).Extents).ChunkId);
    }

    [Fact]
    public async Task A_late_copy_of_an_older_call_is_refused_and_changes_nothing()
    {
        await _h.Create(1, "f");
        await _h.Create(1, "g");
        Assert.Equal(0, (await _ns.UnlinkAsync(Remove("g", 1, 2))).Errno);
        Assert.Equal(E.EIO, (await _ns.UnlinkAsync(Remove("f", 1, 1))).Errno);
        Assert.Equal(0, _h.LookupErrno(1, "f"));
    }

    [Fact]
    public async Task Only_calls_that_changed_something_are_stored_and_calls_without_a_slot_or_session_are_not_cached()
    {
        await _h.Create(1, "f");
        Assert.Equal(E.ENOENT, (await _ns.UnlinkAsync(Remove("missing", 1, 1))).Errno);
        Assert.Equal(0, StoredReplies());

        await _ns.UnlinkAsync(Remove("f", 1, 2));
        Assert.Equal(1, StoredReplies());

        await _h.Create(1, "g");
        Assert.Equal(0, (await _ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("g") })).Errno);
        ChangeOrigin.Session = null;
        await _h.Create(1, "h");
        Assert.Equal(0, (await _ns.UnlinkAsync(Remove("h", 9, 1))).Errno);
        Assert.Equal(1, StoredReplies());
    }

    [Fact]
    public async Task Entries_go_with_their_session_closed_or_not_renewed_within_a_lease_of_a_start()
    {
        await _h.Create(1, "f");
        await _h.Create(1, "g");
        await _ns.UnlinkAsync(Remove("f", 1, 1));
        ChangeOrigin.Session = "mount-b";
        await _ns.UnlinkAsync(Remove("g", 1, 1));
        Assert.Equal(2, StoredReplies());

        await _ns.CloseSessionAsync(new SessionRequest { SessionId = Session });
        Assert.Equal(["mount-b"], _state.Replies.Values.Select(r => r.Session));
        Assert.Equal(1, StoredReplies());

        // After a restart mount-b keeps its entry while it renews, and loses it once it stops.
        Restart();
        _h.Time.Advance(_h.Options.SessionLease / 2);
        _ns.RenewSession(new SessionRequest { SessionId = "mount-b" });
        _h.Time.Advance(_h.Options.SessionLease / 2 + TimeSpan.FromSeconds(1));
        await _ns.ExpireSessionsAsync();
        Assert.Equal(1, StoredReplies());
        _h.Time.Advance(_h.Options.SessionLease * 2);
        await _ns.ExpireSessionsAsync();
        Assert.Empty(_state.Replies);
        Assert.Equal(0, StoredReplies());
    }

    [Fact]
    public async Task An_expired_session_loses_its_entries_and_a_renewed_one_keeps_them()
    {
        _ns.RenewSession(new SessionRequest { SessionId = Session });
        _ns.RenewSession(new SessionRequest { SessionId = "mount-b" });
        await _h.Create(1, "f");
        await _h.Create(1, "g");
        await _ns.UnlinkAsync(Remove("f", 1, 1));
        ChangeOrigin.Session = "mount-b";
        await _ns.UnlinkAsync(Remove("g", 1, 1));

        // mount-b renews its lease; this session stops renewing and expires.
        for (var i = 0; i < 4; i++)
        {
            _h.Time.Advance(_h.Options.SessionLease / 2);
            _ns.RenewSession(new SessionRequest { SessionId = "mount-b" });
            await _ns.ExpireSessionsAsync();
        }
        Assert.Equal(["mount-b"], _state.Replies.Values.Select(r => r.Session));
        Assert.Equal(1, StoredReplies());
    }
}
