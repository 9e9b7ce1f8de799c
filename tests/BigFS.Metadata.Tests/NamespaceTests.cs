using BigFS.Core;
using BigFS.Metadata.Logic;
using BigFS.Metadata.Storage;
using BigFS.Protocol;
using Google.Protobuf;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

public class NamespaceTests
{
    private const ulong Root = 1;
    private readonly Harness _h = new();

    [Fact]
    public void Root_exists_as_0755_directory_owned_by_root()
    {
        var a = _h.Attr(Root);
        Assert.Equal(InodeType.Directory, a.Type);
        Assert.Equal(0x41EDu, a.Mode);   // S_IFDIR | 0755
        Assert.Equal(0u, a.Uid);
        Assert.Equal(2u, a.Nlink);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("a\0b")]
    public async Task Invalid_names_are_rejected_with_EINVAL(string name)
    {
        var r = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name(name), Type = InodeType.File, Exclusive = true });
        Assert.Equal(Errno.EINVAL, r.Errno);
        Assert.Equal(Errno.EINVAL, _h.LookupErrno(Root, name));
        Assert.Empty(_h.Ns.ReadDirectory(new ReadDirectoryRequest { Ino = Root }).Entries);
    }

    [Fact]
    public async Task Name_of_256_bytes_is_ENAMETOOLONG_and_255_is_fine()
    {
        var r = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name(new string('x', 256)), Type = InodeType.File });
        Assert.Equal(Errno.ENAMETOOLONG, r.Errno);
        await _h.Create(Root, new string('x', 255));
    }

    [Fact]
    public async Task Operations_on_missing_inodes_return_ENOENT()
    {
        const ulong missing = 999;
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = missing }).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = missing, Valid = 1, Mode = 0x1FF })).Errno);
        Assert.Equal(Errno.ENOENT, _h.LookupErrno(missing, "x"));
        Assert.Equal(Errno.ENOENT, _h.LookupErrno(Root, "nope"));
        Assert.Equal(Errno.ENOENT, (await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = missing, Name = Name("a"), Type = InodeType.File })).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.ReadLink(new InodeRequest { Ino = missing }).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.LinkAsync(new LinkRequest { Ino = missing, NewParent = Root, NewName = Name("l") })).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("nope") })).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.RemoveDirectoryAsync(new RemoveRequest { Parent = Root, Name = Name("nope") })).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.RenameAsync(new RenameRequest { Parent = Root, Name = Name("nope"), NewParent = Root, NewName = Name("b") })).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.ReadDirectory(new ReadDirectoryRequest { Ino = missing }).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.GetXattr(new GetXattrRequest { Ino = missing, Name = Name("user.a") }).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.SetXattrAsync(new SetXattrRequest { Ino = missing, Name = Name("user.a") })).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.ListXattr(new InodeRequest { Ino = missing }).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = missing, Name = Name("user.a") })).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.GetLayout(new GetLayoutRequest { Ino = missing }).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.CommitWriteAsync(new CommitWriteRequest { Ino = missing })).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.OpenAsync(new OpenRequest { Ino = missing })).Errno);
    }

    [Fact]
    public async Task Create_exclusive_and_non_exclusive()
    {
        var ino = await _h.Create(Root, "f");
        var again = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name("f"), Type = InodeType.File, Exclusive = true });
        Assert.Equal(Errno.EEXIST, again.Errno);
        var open = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name("f"), Type = InodeType.File, Exclusive = false });
        Assert.Equal(0, open.Errno);
        Assert.False(open.Created);
        Assert.Equal(ino, open.Attr.Ino);
        var dir = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name("f"), Type = InodeType.Directory });
        Assert.Equal(Errno.EEXIST, dir.Errno);
        Assert.Equal(Errno.ENOTDIR, (await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = ino, Name = Name("x"), Type = InodeType.File })).Errno);
    }

    [Fact]
    public async Task Directory_nlink_counts_subdirectories_and_parent_times_change()
    {
        var before = _h.Attr(Root);
        _h.Time.Advance(TimeSpan.FromSeconds(1));
        var d = await _h.Create(Root, "d", InodeType.Directory, 0x1ED);
        await _h.Create(Root, "file");
        Assert.Equal(3u, _h.Attr(Root).Nlink);
        Assert.Equal(2u, _h.Attr(d).Nlink);
        await _h.Create(d, "sub", InodeType.Directory);
        Assert.Equal(3u, _h.Attr(d).Nlink);
        Assert.True(_h.Attr(Root).MtimeNs > before.MtimeNs);
        Assert.Equal(0, (await _h.Ns.RemoveDirectoryAsync(new RemoveRequest { Parent = d, Name = Name("sub") })).Errno);
        Assert.Equal(2u, _h.Attr(d).Nlink);
    }

    [Fact]
    public async Task Rmdir_non_empty_is_ENOTEMPTY_and_of_a_file_ENOTDIR_and_unlink_of_a_dir_EISDIR()
    {
        var d = await _h.Create(Root, "d", InodeType.Directory);
        await _h.Create(d, "f");
        await _h.Create(Root, "plain");
        Assert.Equal(Errno.ENOTEMPTY, (await _h.Ns.RemoveDirectoryAsync(new RemoveRequest { Parent = Root, Name = Name("d") })).Errno);
        Assert.Equal(Errno.ENOTDIR, (await _h.Ns.RemoveDirectoryAsync(new RemoveRequest { Parent = Root, Name = Name("plain") })).Errno);
        Assert.Equal(Errno.EISDIR, (await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("d") })).Errno);
        Assert.Equal(0, (await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = d, Name = Name("f") })).Errno);
        var removed = await _h.Ns.RemoveDirectoryAsync(new RemoveRequest { Parent = Root, Name = Name("d") });
        Assert.Equal(0, removed.Errno);
        // A process still inside it stats it through the mount: the reply carries what it was.
        Assert.Equal((d, InodeType.Directory, 0u), (removed.Attr.Ino, removed.Attr.Type, removed.Attr.Nlink));
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = d }).Errno);
        Assert.Equal(2u, _h.Attr(Root).Nlink);
    }

    [Fact]
    public async Task Hard_links_count_and_directories_cannot_be_linked()
    {
        var f = await _h.Create(Root, "f");
        var d = await _h.Create(Root, "d", InodeType.Directory);
        var l = await _h.Ns.LinkAsync(new LinkRequest { Ino = f, NewParent = d, NewName = Name("g") });
        Assert.Equal(0, l.Errno);
        Assert.Equal(2u, l.Attr.Nlink);
        Assert.Equal(Errno.EEXIST, (await _h.Ns.LinkAsync(new LinkRequest { Ino = f, NewParent = Root, NewName = Name("f") })).Errno);
        Assert.Equal(Errno.EPERM, (await _h.Ns.LinkAsync(new LinkRequest { Ino = d, NewParent = Root, NewName = Name("d2") })).Errno);
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f") });
        Assert.Equal(1u, _h.Attr(f).Nlink);
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = d, Name = Name("g") });
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = f }).Errno);
    }

    [Fact]
    public async Task Rename_moves_replaces_and_honours_flags()
    {
        var a = await _h.Create(Root, "a");
        var b = await _h.Create(Root, "b");
        var d = await _h.Create(Root, "d", InodeType.Directory);
        // NOREPLACE over an existing name.
        Assert.Equal(Errno.EEXIST, (await Rename(Root, "a", Root, "b", 1)).Errno);
        // Both flags at once.
        Assert.Equal(Errno.EINVAL, (await Rename(Root, "a", Root, "b", 3)).Errno);
        // EXCHANGE with a missing target.
        Assert.Equal(Errno.ENOENT, (await Rename(Root, "a", Root, "zz", 2)).Errno);
        // EXCHANGE swaps.
        Assert.Equal(0, (await Rename(Root, "a", Root, "b", 2)).Errno);
        Assert.Equal(b, _h.Ns.Lookup(new LookupRequest { Parent = Root, Name = Name("a") }).Attr.Ino);
        Assert.Equal(a, _h.Ns.Lookup(new LookupRequest { Parent = Root, Name = Name("b") }).Attr.Ino);
        // Plain replace: "a" (inode b) replaces "b" (inode a), which goes away.
        Assert.Equal(0, (await Rename(Root, "a", Root, "b", 0)).Errno);
        Assert.Equal(Errno.ENOENT, _h.LookupErrno(Root, "a"));
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = a }).Errno);
        // Move into a directory.
        Assert.Equal(0, (await Rename(Root, "b", d, "moved", 0)).Errno);
        Assert.Equal(b, _h.Ns.Lookup(new LookupRequest { Parent = d, Name = Name("moved") }).Attr.Ino);
        // Unknown flag bits.
        Assert.Equal(Errno.EINVAL, (await Rename(d, "moved", Root, "x", 8)).Errno);
    }

    [Fact]
    public async Task Rename_directory_rules()
    {
        var d1 = await _h.Create(Root, "d1", InodeType.Directory);
        var d2 = await _h.Create(Root, "d2", InodeType.Directory);
        var sub = await _h.Create(d1, "sub", InodeType.Directory);
        await _h.Create(Root, "f");
        await _h.Create(d2, "inside");
        // Never into its own subtree (or onto itself as parent).
        Assert.Equal(Errno.EINVAL, (await Rename(Root, "d1", sub, "x", 0)).Errno);
        Assert.Equal(Errno.EINVAL, (await Rename(Root, "d1", d1, "x", 0)).Errno);
        // Type mismatches.
        Assert.Equal(Errno.ENOTDIR, (await Rename(Root, "d1", Root, "f", 0)).Errno);
        Assert.Equal(Errno.EISDIR, (await Rename(Root, "f", Root, "d1", 0)).Errno);
        // Over a non-empty directory.
        Assert.Equal(Errno.ENOTEMPTY, (await Rename(Root, "d1", Root, "d2", 0)).Errno);
        // Moving a directory across parents fixes both parents' nlink.
        Assert.Equal(4u, _h.Attr(Root).Nlink);
        Assert.Equal(0, (await Rename(d1, "sub", d2, "sub", 0)).Errno);
        Assert.Equal(2u, _h.Attr(d1).Nlink);
        Assert.Equal(3u, _h.Attr(d2).Nlink);
        // Over an empty directory is fine: d1 (now empty) is replaced by... d1 over an empty dir e.
        var e = await _h.Create(Root, "e", InodeType.Directory);
        Assert.Equal(0, (await Rename(Root, "d1", Root, "e", 0)).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = e }).Errno);
        Assert.Equal(d1, _h.Ns.Lookup(new LookupRequest { Parent = Root, Name = Name("e") }).Attr.Ino);
        Assert.Equal(4u, _h.Attr(Root).Nlink);   // root: . .. + d2 + e(=d1)
        // Nothing changed by the failed attempts.
        Assert.Equal(d2, _h.Ns.Lookup(new LookupRequest { Parent = Root, Name = Name("d2") }).Attr.Ino);
    }

    [Fact]
    public async Task Rename_exchange_of_directory_into_its_own_subtree_is_EINVAL()
    {
        var d = await _h.Create(Root, "d", InodeType.Directory);
        await _h.Create(d, "f");
        Assert.Equal(Errno.EINVAL, (await Rename(Root, "d", d, "f", 2)).Errno);
    }

    private Task<StatusReply> Rename(ulong p, string n, ulong np, string nn, uint flags) =>
        _h.Ns.RenameAsync(new RenameRequest { Parent = p, Name = Name(n), NewParent = np, NewName = Name(nn), Flags = flags });

    [Fact]
    public async Task Unlink_while_open_keeps_the_inode_until_release()
    {
        var f = await _h.Create(Root, "f");
        var session = _h.Ns.OpenSession(new OpenSessionRequest { ClientName = "t" }).SessionId;
        Assert.Equal(0, (await _h.Ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f })).Errno);
        Assert.Equal(0, (await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f") })).Errno);
        Assert.Equal(Errno.ENOENT, _h.LookupErrno(Root, "f"));
        var orphan = _h.Attr(f);
        Assert.Equal(0u, orphan.Nlink);
        Assert.Equal(0, (await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f })).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = f }).Errno);
    }

    [Fact]
    public async Task Create_with_open_session_registers_the_open_in_the_same_call()
    {
        var session = _h.Ns.OpenSession(new OpenSessionRequest { ClientName = "t" }).SessionId;
        CreateNodeRequest Request(string name, bool exclusive = true) => new()
            { Parent = Root, Name = Name(name), Type = InodeType.File, Mode = 0x1A4, Exclusive = exclusive, OpenSessionId = session };
        var created = await _h.Ns.CreateNodeAsync(Request("f"));
        Assert.True(created.Created);
        // An existing file opened with O_CREAT (not O_EXCL) is registered too: two opens now.
        var again = await _h.Ns.CreateNodeAsync(Request("f", exclusive: false));
        Assert.False(again.Created);
        Assert.Equal(created.Attr.Ino, again.Attr.Ino);
        // A failed create registers nothing.
        Assert.Equal(Errno.EEXIST, (await _h.Ns.CreateNodeAsync(Request("f"))).Errno);

        var f = created.Attr.Ino;
        Assert.Equal(0, (await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f") })).Errno);
        Assert.Equal(0, (await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f })).Errno);
        Assert.Equal(0u, _h.Attr(f).Nlink);   // still open once
        Assert.Equal(0, (await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f })).Errno);
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = f }).Errno);
        Assert.Equal(Errno.EBADF, (await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f })).Errno);
    }

    [Fact]
    public async Task Create_with_open_session_is_for_files_only()
    {
        var session = _h.Ns.OpenSession(new OpenSessionRequest()).SessionId;
        var dir = await _h.Ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = Root, Name = Name("d"), Type = InodeType.Directory, Mode = 0x1ED, OpenSessionId = session });
        Assert.Equal(Errno.EINVAL, dir.Errno);
        Assert.Equal(Errno.ENOENT, _h.LookupErrno(Root, "d"));
        var longId = await _h.Ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = Root, Name = Name("f"), Type = InodeType.File, Mode = 0x1A4, OpenSessionId = new string('s', 129) });
        Assert.Equal(Errno.EINVAL, longId.Errno);
        Assert.Equal(Errno.ENOENT, _h.LookupErrno(Root, "f"));
    }

    [Fact]
    public async Task Unnamed_file_lives_while_open_and_only_it_may_get_a_first_name()
    {
        var session = _h.Ns.OpenSession(new OpenSessionRequest { ClientName = "t" }).SessionId;
        CreateNodeRequest Unnamed(string session) => new()
            { Parent = Root, Unnamed = true, Type = InodeType.File, Mode = 0x1A4, OpenSessionId = session };
        var rootMtime = _h.Attr(Root).MtimeNs;

        var created = await _h.Ns.CreateNodeAsync(Unnamed(session));
        Assert.Equal(0, created.Errno);
        var f = created.Attr.Ino;
        Assert.Equal(0u, created.Attr.Nlink);
        Assert.Empty(_h.Ns.ReadDirectory(new ReadDirectoryRequest { Ino = Root }).Entries);
        Assert.Equal(rootMtime, _h.Attr(Root).MtimeNs);   // no name, no directory change

        // Linking names it once; after that it is an ordinary file and outlives its open.
        var linked = await _h.Ns.LinkAsync(new LinkRequest { Ino = f, NewParent = Root, NewName = Name("kept") });
        Assert.Equal(0, linked.Errno);
        Assert.Equal(1u, linked.Attr.Nlink);
        Assert.Equal(0, (await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f })).Errno);
        Assert.Equal(f, _h.Ns.Lookup(new LookupRequest { Parent = Root, Name = Name("kept") }).Attr.Ino);

        // A named file unlinked while open stays unlinked: it is not "unnamed".
        await _h.Ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f });
        Assert.Equal(0, (await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("kept") })).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.LinkAsync(new LinkRequest { Ino = f, NewParent = Root, NewName = Name("again") })).Errno);
        await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f });
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = f }).Errno);

        // Never linked, it goes at its last release and cannot be named after.
        var gone = (await _h.Ns.CreateNodeAsync(Unnamed(session))).Attr.Ino;
        await _h.Ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = gone });
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = gone }).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.LinkAsync(new LinkRequest { Ino = gone, NewParent = Root, NewName = Name("late") })).Errno);

        // It must be a regular file, nameless, and held open by its creator.
        Assert.Equal(Errno.EINVAL, (await _h.Ns.CreateNodeAsync(Unnamed(""))).Errno);
        Assert.Equal(Errno.EINVAL, (await _h.Ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = Root, Unnamed = true, Name = Name("x"), Type = InodeType.File, OpenSessionId = session })).Errno);
        Assert.Equal(Errno.EINVAL, (await _h.Ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = Root, Unnamed = true, Type = InodeType.Directory, OpenSessionId = session })).Errno);
        Assert.Empty(_h.Ns.ReadDirectory(new ReadDirectoryRequest { Ino = Root }).Entries);
    }

    [Fact]
    public async Task After_a_restart_a_session_takes_back_its_unlinked_open_files_within_one_lease()
    {
        var session = _h.Ns.OpenSession(new OpenSessionRequest { ClientName = "t" }).SessionId;
        var (kept, forgotten) = (await OpenUnlinkedIn(_h.Ns, session, "kept"), await OpenUnlinkedIn(_h.Ns, session, "forgotten"));

        // A new process over the same store: opens lived in memory only.
        var ns = Restarted();
        Assert.True(ns.RenewSession(new SessionRequest { SessionId = session }).SessionRecreated);
        Assert.Equal(Errno.ENOENT, (await ns.OpenAsync(new OpenRequest { SessionId = session, Ino = kept })).Errno);
        Assert.Equal(0, (await ns.OpenAsync(new OpenRequest { SessionId = session, Ino = kept, Reclaim = true })).Errno);

        // Past the grace the orphan sweep takes the file nobody took back, and reclaiming ends.
        _h.Time.Advance(_h.Options.SessionLease / 2);
        ns.RenewSession(new SessionRequest { SessionId = session });
        _h.Time.Advance(_h.Options.SessionLease / 2 + TimeSpan.FromSeconds(1));
        ns.RenewSession(new SessionRequest { SessionId = session });
        await ns.ExpireSessionsAsync();
        Assert.Equal(0u, ns.GetAttr(new InodeRequest { Ino = kept }).Attr.Nlink);
        Assert.Equal(Errno.ENOENT, ns.GetAttr(new InodeRequest { Ino = forgotten }).Errno);

        var late = await OpenUnlinkedIn(ns, session, "late");
        var ns2 = Restarted();
        _h.Time.Advance(_h.Options.SessionLease + TimeSpan.FromSeconds(1));
        Assert.Equal(Errno.ENOENT, (await ns2.OpenAsync(new OpenRequest { SessionId = session, Ino = late, Reclaim = true })).Errno);
    }

    [Fact]
    public async Task After_a_restart_an_unnamed_file_taken_back_may_still_get_its_first_name()
    {
        var session = _h.Ns.OpenSession(new OpenSessionRequest { ClientName = "t" }).SessionId;
        var unnamed = (await _h.Ns.CreateNodeAsync(new CreateNodeRequest
            { Parent = Root, Unnamed = true, Type = InodeType.File, Mode = 0x1A4, OpenSessionId = session })).Attr.Ino;
        var unlinked = await OpenUnlinkedIn(_h.Ns, session, "unlinked");

        var ns = Restarted();
        Assert.True(ns.RenewSession(new SessionRequest { SessionId = session }).SessionRecreated);
        foreach (var ino in new[] { unnamed, unlinked })
            Assert.Equal(0, (await ns.OpenAsync(new OpenRequest { SessionId = session, Ino = ino, Reclaim = true })).Errno);
        // Which of the two nlink-0 files was created unnamed is known after the restart too.
        Assert.Equal(Errno.ENOENT, (await ns.LinkAsync(new LinkRequest { Ino = unlinked, NewParent = Root, NewName = Name("back") })).Errno);
        var linked = await ns.LinkAsync(new LinkRequest { Ino = unnamed, NewParent = Root, NewName = Name("named") });
        Assert.Equal(0, linked.Errno);
        Assert.Equal(1u, linked.Attr.Nlink);

        // Named once, it is an ordinary file: unlinked while open, it cannot be named again, restart or not.
        Assert.Equal(0, (await ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("named") })).Errno);
        var ns2 = Restarted();
        ns2.RenewSession(new SessionRequest { SessionId = session });
        Assert.Equal(0, (await ns2.OpenAsync(new OpenRequest { SessionId = session, Ino = unnamed, Reclaim = true })).Errno);
        Assert.Equal(Errno.ENOENT, (await ns2.LinkAsync(new LinkRequest { Ino = unnamed, NewParent = Root, NewName = Name("again") })).Errno);
    }

    [Fact]
    public async Task After_a_restart_a_session_first_seen_through_an_open_is_still_told_to_reclaim_and_reclaim_sets_counts()
    {
        var session = _h.Ns.OpenSession(new OpenSessionRequest { ClientName = "t" }).SessionId;
        var f = await _h.Create(Root, "f");
        await _h.Ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f });
        await _h.Ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f });

        var ns = Restarted();
        // The mount opens f a third time before its renewal: that open re-creates the session,
        // but the renewal must still say "re-created" so the mount registers its other opens.
        await ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f });
        Assert.True(ns.RenewSession(new SessionRequest { SessionId = session }).SessionRecreated);
        Assert.False(ns.RenewSession(new SessionRequest { SessionId = session }).SessionRecreated);
        // The mount holds 3 handles: reclaim makes the count 3, not 1 + 3.
        await ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f, Reclaim = true, Handles = 3 });
        await ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f") });
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(0, ns.GetAttr(new InodeRequest { Ino = f }).Errno);
            Assert.Equal(0, (await ns.ReleaseAsync(new ReleaseRequest { SessionId = session, Ino = f })).Errno);
        }
        Assert.Equal(Errno.ENOENT, ns.GetAttr(new InodeRequest { Ino = f }).Errno);
    }

    [Fact]
    public async Task Locks_need_the_file_and_go_with_their_session()
    {
        var f = await _h.Create(Root, "f");
        LockRequest Lock(string session, LockType type, bool flock = false) => new() { SessionId = session, Ino = f, Owner = 1, Type = type, Start = 0, End = long.MaxValue, Flock = flock };
        var a = _h.Ns.OpenSession(new OpenSessionRequest()).SessionId;
        Assert.Equal(0, (await _h.Ns.LockAsync(Lock(a, LockType.LockWrite), default)).Errno);
        Assert.Equal(LockType.LockWrite, _h.Ns.TestLock(Lock("b", LockType.LockRead)).Type);
        Assert.Equal(Errno.EAGAIN, (await _h.Ns.LockAsync(Lock("b", LockType.LockRead), default)).Errno);
        Assert.Equal(Errno.ENOENT, (await _h.Ns.LockAsync(new LockRequest { SessionId = a, Ino = 999, Type = LockType.LockWrite }, default)).Errno);
        Assert.Equal(0, (await _h.Ns.LockAsync(new LockRequest { SessionId = a, Ino = 999, Type = LockType.LockUnlock }, default)).Errno);
        Assert.Equal(Errno.EINVAL, (await _h.Ns.LockAsync(new LockRequest { SessionId = "", Ino = f, Type = LockType.LockWrite }, default)).Errno);

        // a stops renewing; b keeps its session alive.
        for (var i = 0; i < 3; i++)
        {
            _h.Time.Advance(_h.Options.SessionLease / 2);
            _h.Ns.RenewSession(new SessionRequest { SessionId = "b" });
            await _h.Ns.ExpireSessionsAsync();
        }
        Assert.Equal(LockType.LockUnlock, _h.Ns.TestLock(Lock("b", LockType.LockWrite)).Type);
        Assert.Equal(0, (await _h.Ns.LockAsync(Lock("b", LockType.LockWrite), default)).Errno);
    }

    private NamespaceLogic Restarted() => new(new MetadataState(_h.Options, _h.Time, _h.Store.Load(), new ImmediateChangeLog(_h.Store)));

    private static async Task<ulong> OpenUnlinkedIn(NamespaceLogic ns, string session, string name)
    {
        var ino = (await ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name(name), Type = InodeType.File, Mode = 0x1A4, OpenSessionId = session })).Attr.Ino;
        await ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name(name) });
        return ino;
    }

    [Fact]
    public async Task Expired_session_releases_its_opens()
    {
        var f = await _h.Create(Root, "f");
        var session = _h.Ns.OpenSession(new OpenSessionRequest()).SessionId;
        await _h.Ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f });
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f") });
        await _h.Ns.ExpireSessionsAsync();
        Assert.Equal(0, _h.Ns.GetAttr(new InodeRequest { Ino = f }).Errno);   // lease still valid
        _h.Time.Advance(_h.Options.SessionLease + TimeSpan.FromSeconds(1));
        await _h.Ns.ExpireSessionsAsync();
        Assert.Equal(Errno.ENOENT, _h.Ns.GetAttr(new InodeRequest { Ino = f }).Errno);
    }

    [Fact]
    public async Task Xattr_flags_and_limits()
    {
        var f = await _h.Create(Root, "f");
        Task<StatusReply> Set(string n, string v, uint flags) =>
            _h.Ns.SetXattrAsync(new SetXattrRequest { Ino = f, Name = Name(n), Value = Name(v), Flags = flags });
        Assert.Equal(Errno.ENODATA, _h.Ns.GetXattr(new GetXattrRequest { Ino = f, Name = Name("user.a") }).Errno);
        Assert.Equal(Errno.ENODATA, (await Set("user.a", "1", 2)).Errno);      // REPLACE, missing
        Assert.Equal(0, (await Set("user.a", "1", 1)).Errno);                  // CREATE
        Assert.Equal(Errno.EEXIST, (await Set("user.a", "2", 1)).Errno);       // CREATE, exists
        Assert.Equal(0, (await Set("user.a", "3", 2)).Errno);                  // REPLACE
        Assert.Equal("3", _h.Ns.GetXattr(new GetXattrRequest { Ino = f, Name = Name("user.a") }).Value.ToStringUtf8());
        Assert.Equal(Errno.ERANGE, (await Set(new string('n', 256), "v", 0)).Errno);
        Assert.Equal(0, (await Set("user." + new string('n', 250), "v", 0)).Errno);   // 255 bytes
        Assert.Equal(Errno.EOPNOTSUPP, (await Set("bogus.a", "v", 0)).Errno);        // no such namespace
        Assert.Equal(Errno.EOPNOTSUPP, (await Set("system.other", "v", 0)).Errno);   // the system namespace holds the ACLs only
        Assert.Equal(Errno.EINVAL, (await Set("user.", "v", 0)).Errno);              // a namespace, no name
        Assert.Equal(Errno.EOPNOTSUPP, _h.Ns.GetXattr(new GetXattrRequest { Ino = f, Name = Name("bogus.a") }).Errno);
        Assert.Equal(Errno.EOPNOTSUPP, (await _h.Ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = f, Name = Name("bogus.a") })).Errno);
        Assert.Equal(0, (await Set("trusted.t", "v", 0)).Errno);
        Assert.Equal(0, (await Set("security.s", "v", 0)).Errno);
        var big = await _h.Ns.SetXattrAsync(new SetXattrRequest { Ino = f, Name = Name("user.big"), Value = ByteString.CopyFrom(new byte[64 * 1024 + 1]) });
        Assert.Equal(Errno.E2BIG, big.Errno);
        Assert.Equal(4, _h.Ns.ListXattr(new InodeRequest { Ino = f }).Names.Count);
        Assert.Equal(0, (await _h.Ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = f, Name = Name("user.a") })).Errno);
        Assert.Equal(Errno.ENODATA, (await _h.Ns.RemoveXattrAsync(new RemoveXattrRequest { Ino = f, Name = Name("user.a") })).Errno);
    }

    [Fact]
    public async Task Setattr_chown_clears_setid_bits_unless_mode_is_set_too()
    {
        var f = await _h.Create(Root, "f", mode: 0xDED);   // 06755
        var r = await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 2, Uid = 5 });
        Assert.Equal(0x81EDu, r.Attr.Mode);                   // S_IFREG | 0755
        await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 1, Mode = 0xDED });
        r = await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 1 | 4, Mode = 0xDED, Gid = 7 });
        Assert.Equal(0x8DEDu, r.Attr.Mode);
        Assert.Equal(7u, r.Attr.Gid);
        // setgid without group-exec is mandatory locking, not a privilege: kept.
        await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 1, Mode = 0xDE5 });   // 06745
        r = await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 2048 });
        Assert.Equal(0x8000u | 0x5E5, r.Attr.Mode);          // 02745
    }

    [Fact]
    public async Task Setgid_directory_propagates_gid_and_bit()
    {
        var d = await _h.Create(Root, "d", InodeType.Directory, 0xDED);   // 06755
        await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = d, Valid = 4, Gid = 50 });
        var sub = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = d, Name = Name("s"), Type = InodeType.Directory, Mode = 0x1ED, Gid = 9 });
        Assert.Equal(50u, sub.Attr.Gid);
        Assert.NotEqual(0u, sub.Attr.Mode & 0x400);
        var file = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = d, Name = Name("f"), Type = InodeType.File, Mode = 0x1A4, Gid = 9 });
        Assert.Equal(50u, file.Attr.Gid);
        Assert.Equal(0u, file.Attr.Mode & 0x400);
    }

    [Fact]
    public async Task Symlink_and_readlink()
    {
        var r = await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = Root, Name = Name("l"), Type = InodeType.Symlink, SymlinkTarget = Name("/etc/passwd") });
        Assert.Equal(0, r.Errno);
        Assert.Equal(0xA1FFu, r.Attr.Mode);
        Assert.Equal(11ul, r.Attr.Size);
        Assert.Equal("/etc/passwd", _h.Ns.ReadLink(new InodeRequest { Ino = r.Attr.Ino }).Target.ToStringUtf8());
        Assert.Equal(Errno.EINVAL, _h.Ns.ReadLink(new InodeRequest { Ino = Root }).Errno);
    }

    [Fact]
    public async Task ReadDirectory_pages_are_stable_across_concurrent_changes()
    {
        for (var i = 0; i < 10; i++)
            await _h.Create(Root, $"f{i}");
        var page1 = _h.Ns.ReadDirectory(new ReadDirectoryRequest { Ino = Root, MaxEntries = 4 });
        Assert.False(page1.End);
        Assert.Equal(["f0", "f1", "f2", "f3"], page1.Entries.Select(e => e.Name.ToStringUtf8()));
        // Remove one already listed and one not yet listed, add a new one.
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f1") });
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = Root, Name = Name("f5") });
        await _h.Create(Root, "new");
        var rest = new List<string>();
        var cookie = page1.Entries[^1].Cookie;
        while (true)
        {
            var page = _h.Ns.ReadDirectory(new ReadDirectoryRequest { Ino = Root, Cookie = cookie, MaxEntries = 4 });
            rest.AddRange(page.Entries.Select(e => e.Name.ToStringUtf8()));
            if (page.End) break;
            cookie = page.Entries[^1].Cookie;
        }
        Assert.Equal(["f4", "f6", "f7", "f8", "f9", "new"], rest);
        Assert.NotNull(page1.Entries[0].Attr);
    }
}
