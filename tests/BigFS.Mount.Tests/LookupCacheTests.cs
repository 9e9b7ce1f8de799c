using BigFS.Protocol;

namespace BigFS.Mount.Tests;

/// <summary>The daemon's name/attribute cache as plain logic: what it answers, and what makes it forget.</summary>
public class LookupCacheTests
{
    private readonly SteppedTime _time = new();
    private readonly LookupCache _cache;

    public LookupCacheTests()
    {
        _cache = new LookupCache(maxEntries: 100, maxAge: TimeSpan.FromSeconds(60), _time);
        _cache.Enable();
    }

    private static InodeAttr File(ulong ino, uint mode = 0x1A4) => new() { Ino = ino, Type = InodeType.File, Mode = mode, Nlink = 1 };
    private static InodeAttr Dir(ulong ino) => new() { Ino = ino, Type = InodeType.Directory, Mode = 0x1ED, Nlink = 2 };

    [Fact]
    public void A_learned_name_is_found_and_an_unknown_one_is_not_answered()
    {
        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        Assert.Equal(CachedLookup.Found, _cache.TryLookup(1, "a", out var attr));
        Assert.Equal(10ul, attr!.Ino);
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "b", out _));   // the directory is not known completely
    }

    [Fact]
    public void A_directory_created_here_answers_absent_names_until_another_session_changes_it()
    {
        var g = _cache.BeginChange();
        _cache.LearnNewEntry(g, 1, "d", Dir(20), isNewDirectory: true);
        Assert.Equal(CachedLookup.Absent, _cache.TryLookup(20, "x", out _));
        _cache.LearnNewEntry(_cache.BeginChange(), 20, "x", File(21));
        Assert.Equal(CachedLookup.Found, _cache.TryLookup(20, "x", out _));
        Assert.Equal(CachedLookup.Absent, _cache.TryLookup(20, "y", out _));

        _cache.Apply(new ChangeNotice { Directories = { 20 } });
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(20, "y", out _));
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(20, "x", out _));
    }

    [Fact]
    public void A_name_made_here_is_recorded_even_if_a_change_raced_with_it_so_a_complete_directory_never_misses_it()
    {
        _cache.LearnNewEntry(_cache.BeginChange(), 1, "d", Dir(20), isNewDirectory: true);
        var before = _cache.BeginChange();
        _cache.BeginChange();   // another call of this mount, in flight at the same time
        _cache.LearnNewEntry(before, 20, "made", File(21));
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(20, "made", out _));   // attributes not trusted: ask
        Assert.Equal(CachedLookup.Absent, _cache.TryLookup(20, "other", out _));
    }

    [Fact]
    public void A_name_being_changed_is_not_answered_absent_until_its_removal_is_confirmed()
    {
        _cache.LearnNewEntry(_cache.BeginChange(), 1, "d", Dir(20), isNewDirectory: true);
        _cache.LearnNewEntry(_cache.BeginChange(), 20, "x", File(21));
        _cache.BeginChange();
        _cache.ForgetEntry(20, "x");   // an rmdir, unlink or rename of x is in flight, or failed
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(20, "x", out _));
        Assert.Equal(CachedLookup.Absent, _cache.TryLookup(20, "y", out _));   // the rest of the directory is still known

        _cache.LearnRemoved(20, "x");
        Assert.Equal(CachedLookup.Absent, _cache.TryLookup(20, "x", out _));

        _cache.ForgetEntry(20, "x");
        _cache.LearnLookup(_cache.Generation, 20, "x", File(22));   // the server says it is there after all
        Assert.Equal(CachedLookup.Found, _cache.TryLookup(20, "x", out var attr));
        Assert.Equal(22ul, attr!.Ino);
    }

    [Fact]
    public void A_reply_that_raced_with_a_change_is_not_kept()
    {
        var before = _cache.Generation;
        _cache.Apply(new ChangeNotice { Inodes = { 99 } });   // arrives while the lookup is in flight
        _cache.LearnLookup(before, 1, "a", File(10));
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "a", out _));
    }

    [Fact]
    public void Another_sessions_change_of_an_inode_drops_its_attributes()
    {
        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        _cache.Apply(new ChangeNotice { Inodes = { 10 } });
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "a", out _));
    }

    [Fact]
    public void Removing_a_name_forgets_its_inode_and_an_unknown_name_forgets_every_attribute()
    {
        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        _cache.LearnLookup(_cache.Generation, 2, "link", File(10));
        _cache.ForgetEntry(1, "a");
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(2, "link", out _));   // its link count changed

        _cache.LearnLookup(_cache.Generation, 2, "b", File(11));
        _cache.ForgetEntry(3, "not-cached");   // might have been another link to anything
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(2, "b", out _));
    }

    [Fact]
    public void Nothing_is_answered_while_the_change_feed_is_down_or_after_a_reset_or_past_the_maximum_age()
    {
        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        _cache.Disable();
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "a", out _));
        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        _cache.Enable();
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "a", out _));

        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        _cache.Apply(new ChangeNotice { Reset = true });
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "a", out _));

        _cache.LearnLookup(_cache.Generation, 1, "a", File(10));
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "a", out _));
    }

    [Fact]
    public void Past_its_size_the_cache_starts_over()
    {
        for (ulong i = 0; i < 150; i++)
            _cache.LearnLookup(_cache.Generation, 1, $"f{i}", File(100 + i));
        Assert.Equal(CachedLookup.Found, _cache.TryLookup(1, "f149", out _));
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(1, "f0", out _));
    }

    [Fact]
    public void Attributes_returned_by_a_change_answer_getattr_unless_a_change_raced_with_the_call()
    {
        var g = _cache.BeginChange();
        _cache.LearnAttr(g, Dir(1));   // the directory after our create in it
        Assert.True(_cache.TryGetAttr(1, out var attr));
        Assert.Equal(1ul, attr!.Ino);

        var raced = _cache.BeginChange();
        _cache.Apply(new ChangeNotice { Inodes = { 5 } });
        _cache.LearnAttr(raced, Dir(1));
        Assert.False(_cache.TryGetAttr(1, out _));   // the stale copy went too
    }

    [Fact]
    public void A_missing_xattr_is_answered_until_the_inode_changes_anywhere()
    {
        _cache.LearnXattrAbsent(_cache.Generation, 10, "security.capability");
        Assert.True(_cache.IsXattrAbsent(10, "security.capability"));
        Assert.False(_cache.IsXattrAbsent(10, "user.other"));
        Assert.False(_cache.IsXattrAbsent(11, "security.capability"));

        _cache.Apply(new ChangeNotice { Inodes = { 10 } });   // another session's setxattr
        Assert.False(_cache.IsXattrAbsent(10, "security.capability"));

        _cache.LearnXattrAbsent(_cache.Generation, 10, "user.a");
        _cache.ForgetXattrs(10);                               // our own setxattr/removexattr
        Assert.False(_cache.IsXattrAbsent(10, "user.a"));

        _cache.LearnXattrAbsent(_cache.Generation, 10, "user.b");
        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.False(_cache.IsXattrAbsent(10, "user.b"));     // older than MaxAge
    }

    [Fact]
    public void An_inode_this_mount_created_has_no_xattrs_until_it_changes()
    {
        _cache.LearnNoXattrs(_cache.Generation, 10);
        Assert.True(_cache.IsXattrAbsent(10, "security.capability"));
        Assert.True(_cache.IsXattrAbsent(10, "user.anything"));
        Assert.False(_cache.IsXattrAbsent(11, "security.capability"));

        _cache.ForgetXattrs(10);                                // our own setxattr
        Assert.False(_cache.IsXattrAbsent(10, "user.anything"));

        _cache.LearnNoXattrs(_cache.Generation, 10);
        _cache.Apply(new ChangeNotice { Inodes = { 10 } });     // another session's setxattr
        Assert.False(_cache.IsXattrAbsent(10, "security.capability"));

        var raced = _cache.Generation;
        _cache.Apply(new ChangeNotice { Inodes = { 99 } });     // a notice while the create was in flight
        _cache.LearnNoXattrs(raced, 10);
        Assert.False(_cache.IsXattrAbsent(10, "security.capability"));
    }

    [Fact]
    public void A_missing_xattr_reply_that_raced_with_a_change_is_not_kept()
    {
        var g = _cache.Generation;
        _cache.ForgetXattrs(10);                                // a setxattr here started meanwhile
        _cache.LearnXattrAbsent(g, 10, "user.a");
        Assert.False(_cache.IsXattrAbsent(10, "user.a"));

        g = _cache.Generation;
        _cache.Apply(new ChangeNotice { Inodes = { 99 } });     // any notice
        _cache.LearnXattrAbsent(g, 10, "user.a");
        Assert.False(_cache.IsXattrAbsent(10, "user.a"));

        _cache.Disable();
        _cache.LearnXattrAbsent(_cache.Generation, 10, "user.a");
        Assert.False(_cache.IsXattrAbsent(10, "user.a"));       // no feed, nothing kept
    }

    [Fact]
    public void Missing_xattrs_are_bounded_and_cleared_with_the_cache()
    {
        for (ulong i = 0; i < 250; i++)
            _cache.LearnXattrAbsent(_cache.Generation, i, "security.capability");
        var kept = 0;
        for (ulong i = 0; i < 250; i++)
            if (_cache.IsXattrAbsent(i, "security.capability")) kept++;
        Assert.InRange(kept, 1, 100);
        Assert.True(_cache.IsXattrAbsent(249, "security.capability"));

        _cache.Apply(new ChangeNotice { Reset = true });
        Assert.False(_cache.IsXattrAbsent(249, "security.capability"));
    }

    [Fact]
    public void A_name_too_long_for_any_directory_is_left_to_the_server()
    {
        _cache.LearnNewEntry(_cache.BeginChange(), 1, "d", Dir(20), isNewDirectory: true);
        Assert.Equal(CachedLookup.Unknown, _cache.TryLookup(20, new string('x', 256), out _));
    }
}

internal sealed class SteppedTime : TimeProvider
{
    private long _ticks;
    public override long GetTimestamp() => _ticks;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}
