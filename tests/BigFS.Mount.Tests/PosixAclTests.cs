using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>
/// POSIX ACLs are enforced by the kernel on a mount as on a local filesystem: the same steps
/// (<c>posix-acl/acldiff.py</c>) give the same permissions, modes and ACLs on both. Before the
/// mount asked the kernel for ACL support, only the mode was checked, so a member of the owning
/// group got the mask's permissions (write, where its ACL entry said read only) and a named user
/// was refused what its entry granted.
/// </summary>
public class PosixAclTests : IAsyncLifetime
{
    private MountedCluster _m = null!;

    public async Task InitializeAsync() => _m = await MountedCluster.StartAsync();

    public async Task DisposeAsync() => await _m.DisposeAsync();

    [Fact]
    public async Task Acls_umask_and_default_acl_inheritance_behave_as_on_the_local_filesystem()
    {
        var local = Path.Combine(_m.Cluster.Root, "acl-local");
        Directory.CreateDirectory(local);
        var script = Path.Combine(AppContext.BaseDirectory, "posix-acl", "acldiff.py");
        var result = await TryRunAsync($"python3 {Quote(script)} {Quote(local)} {Quote(_m.MountPoint)}", timeout: TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, result.Stderr + result.Stdout);
    }
}
