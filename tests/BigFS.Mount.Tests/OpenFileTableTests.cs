using BigFS.Client;
using BigFS.Protocol;
using BigFS.Testing;

namespace BigFS.Mount.Tests;

/// <summary>Which opens may keep the kernel's pages of a file (close-to-open), and what the kernel must be told, as plain logic.</summary>
public class OpenFileTableTests : IAsyncLifetime
{
    private readonly OpenFileTable _table = new();
    private TestCluster _cluster = null!;
    private BigFsClient _client = null!;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync(1);
        _client = await BigFsClient.ConnectAsync(_cluster.Meta.Address);
    }

    public async Task DisposeAsync()
    {
        await _client.DisposeAsync();
        await _cluster.DisposeAsync();
    }

    private static InodeAttr Attr(ulong version, ulong size, uint mode = 0x81a4) => new() { Ino = 7, Version = version, Size = size, Mode = mode };

    /// <summary>The data handle an open creates (its I/O is not used here).</summary>
    private BigFsFile File() => _client.OpenFile(7, 0);

    [Fact]
    public void An_open_does_not_keep_the_kernels_pages_while_their_drop_after_another_mounts_commit_is_still_pending()
    {

        Assert.False(_table.Open(Attr(1, 100), File).KeepCache);   // first open: nothing known of the pages
        Assert.True(_table.Open(Attr(1, 100), File).KeepCache);    // unchanged: they are kept

        // The change feed says another mount committed version 2; the pages of version 1 are
        // queued to go. An open answered before they went must not keep them: a read would
        // return what they hold of version 1.
        Assert.Equal(Revalidation.DataChanged, _table.Revalidate(Attr(2, 200)));
        Assert.False(_table.Open(Attr(2, 200), File).KeepCache);
        Assert.Equal(Revalidation.Unchanged, _table.Revalidate(Attr(2, 200)));   // nothing new: no second drop

        _table.InvalidationDone(7);
        Assert.True(_table.Open(Attr(2, 200), File).KeepCache);    // what the kernel holds now is version 2
    }

    [Fact]
    public async Task A_revalidation_that_finds_nothing_new_can_wait_for_the_drop_another_one_started()
    {
        _table.Open(Attr(1, 0), File);
        Assert.True(_table.InvalidationsDoneAsync(7).IsCompleted);

        // The change feed's revalidation sees version 2 first and starts dropping the pages; a
        // lock granted meanwhile sees no change of its own, but must not let its process read
        // before that drop is done.
        Assert.Equal(Revalidation.DataChanged, _table.Revalidate(Attr(2, 22)));
        Assert.Equal(Revalidation.Unchanged, _table.Revalidate(Attr(2, 22)));
        var gone = _table.InvalidationsDoneAsync(7);
        Assert.False(gone.IsCompleted);

        _table.InvalidationDone(7);
        await gone.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(_table.InvalidationsDoneAsync(7).IsCompleted);
    }

    [Fact]
    public void The_kernels_attributes_of_an_open_file_are_invalidated_only_when_they_changed_since_it_was_last_told()
    {

        // First open, pages dropped: the open itself makes the kernel fetch these attributes.
        var first = _table.Open(Attr(1, 10), File);
        Assert.False(first.KeepCache);
        // A late notice of the change that open already saw: nothing to tell the kernel. (An
        // invalidation now would make it discard what a read just after the open fetches.)
        Assert.Equal(Revalidation.Unchanged, _table.Revalidate(Attr(1, 10)));
        // Another mount's chmod: the attributes go, the pages stay.
        Assert.Equal(Revalidation.AttributesChanged, _table.Revalidate(Attr(1, 10, mode: 0x8180)));
        Assert.Equal(Revalidation.Unchanged, _table.Revalidate(Attr(1, 10, mode: 0x8180)));
        // An open of the file already open here that finds other attributes than the kernel was told.
        var second = _table.Open(Attr(1, 10, mode: 0x81ff), File);
        Assert.True(second.KeepCache);
        Assert.True(second.AttributesChanged);
        Assert.False(_table.Open(Attr(1, 10, mode: 0x81ff), File).AttributesChanged);
    }

    [Fact]
    public async Task An_open_racing_another_mounts_notice_for_a_file_not_open_here_waits_for_its_invalidation()
    {
        // The notice finds the file not open here, so the kernel's attributes of it go at once.
        // A process opening it meanwhile must not be answered before that is done: the kernel
        // would discard the attributes its first read fetches, and the read stop at the old size.
        Assert.True(_table.BeginInvalidationUnlessOpen(7));
        var opened = _table.Open(Attr(1, 100), File);
        Assert.False(opened.KeepCache);
        var done = _table.InvalidationsDoneAsync(7);
        Assert.False(done.IsCompleted);
        _table.InvalidationDone(7);
        await done.WaitAsync(TimeSpan.FromSeconds(5));

        // Open here: a notice leaves the decision to the file's revalidation (see OpenFile.Told).
        Assert.False(_table.BeginInvalidationUnlessOpen(7));
        Assert.True(_table.InvalidationsDoneAsync(7).IsCompleted);
    }
}
