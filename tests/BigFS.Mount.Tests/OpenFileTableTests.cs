using BigFS.Client;
using BigFS.Testing;

namespace BigFS.Mount.Tests;

/// <summary>Which opens may keep the kernel's pages of a file (close-to-open), as plain logic.</summary>
public class OpenFileTableTests
{
    [Fact]
    public async Task An_open_does_not_keep_the_kernels_pages_while_their_drop_after_another_mounts_commit_is_still_pending()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var table = new OpenFileTable();
        BigFsFile File() => client.OpenFile(7, 100);

        Assert.False(table.Open(7, version: 1, size: 100, File).KeepCache);   // first open: nothing known of the pages
        Assert.True(table.Open(7, version: 1, size: 100, File).KeepCache);    // unchanged: they are kept

        // The change feed says another mount committed version 2; the pages of version 1 are
        // queued to go. An open answered before they went must not keep them: a read would
        // return what they hold of version 1.
        Assert.True(table.Revalidate(7, version: 2, size: 200));
        Assert.False(table.Open(7, version: 2, size: 200, File).KeepCache);
        Assert.False(table.Revalidate(7, version: 2, size: 200));              // nothing new: no second drop

        table.PagesDropped(7);
        Assert.True(table.Open(7, version: 2, size: 200, File).KeepCache);    // what the kernel holds now is version 2
    }

    [Fact]
    public async Task A_revalidation_that_finds_nothing_new_can_wait_for_the_drop_another_one_started()
    {
        await using var cluster = await TestCluster.StartAsync(1);
        await using var client = await BigFsClient.ConnectAsync(cluster.Meta.Address);
        var table = new OpenFileTable();
        table.Open(7, version: 1, size: 0, () => client.OpenFile(7, 0));
        Assert.True(table.PagesGoneAsync(7).IsCompleted);

        // The change feed's revalidation sees version 2 first and starts dropping the pages; a
        // lock granted meanwhile sees no change of its own, but must not let its process read
        // before that drop is done.
        Assert.True(table.Revalidate(7, version: 2, size: 22));
        Assert.False(table.Revalidate(7, version: 2, size: 22));
        var gone = table.PagesGoneAsync(7);
        Assert.False(gone.IsCompleted);

        table.PagesDropped(7);
        await gone.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(table.PagesGoneAsync(7).IsCompleted);
    }
}
