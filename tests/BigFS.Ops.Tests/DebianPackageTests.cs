using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// The .deb from packaging/build.sh installed into a fresh Debian 12 root: files in place, the
/// system user and data dir created, the self-contained binary running without .NET, the real
/// units started under a booted systemd serving a cluster, and remove/purge behaviour.
/// Slow (a publish, and debootstrap on the first run on a machine); needs root.
/// </summary>
public sealed class DebianPackageTests(PackageFixture package) : IClassFixture<PackageFixture>, IAsyncLifetime
{
    private string _root = "";

    public async Task InitializeAsync()
    {
        Assert.True(Environment.UserName == "root", "installing into a Debian root and booting it needs root");
        _root = await Debian12Root.FreshCopyAsync();
        File.Copy(package.Deb, Path.Combine(_root, "tmp", "bigfs.deb"));
    }

    private Task<Shell.Result> ChrootAsync(string command) =>
        Shell.TryRunAsync($"chroot {Shell.Quote(_root)} /bin/sh -c {Shell.Quote(command)}", timeout: TimeSpan.FromMinutes(3));

    /// <summary>A command in the root with /proc and friends (non-booted nspawn), as on the installed machine.</summary>
    private Task<Shell.Result> InRootAsync(string command) =>
        Shell.TryRunAsync($"systemd-nspawn --register=no --keep-unit --private-network --console=pipe -q -D {Shell.Quote(_root)} /bin/sh -c {Shell.Quote(command)}",
            timeout: TimeSpan.FromMinutes(2));

    private async Task InstallAsync()
    {
        var install = await ChrootAsync("DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/bigfs.deb");
        install.EnsureSuccess("dpkg -i bigfs.deb");
    }

    private bool Exists(string path) => File.Exists(_root + path) || Directory.Exists(_root + path);

    [Fact]
    public async Task Installs_binary_units_configs_user_and_data_dir()
    {
        Assert.False(Exists("/usr/share/dotnet") || Exists("/usr/lib/dotnet"), "the fresh root has no .NET");
        await InstallAsync();

        foreach (var path in new[]
        {
            "/usr/bin/bigfs", "/usr/sbin/mount.fuse.bigfs",
            "/lib/systemd/system/bigfs-meta.service", "/lib/systemd/system/bigfs-node@.service", "/lib/systemd/system/bigfs-mount@.service",
            "/etc/bigfs/meta.json", "/etc/bigfs/node-1.json", "/etc/bigfs/mount.json",
        })
            Assert.True(Exists(path), $"{path} is installed");

        var version = (await InRootAsync("bigfs --version")).EnsureSuccess("bigfs --version");
        Assert.Equal($"bigfs {package.Version}", version.Stdout.Trim());

        var user = (await ChrootAsync("getent passwd bigfs && stat -c '%U:%G %a' /var/lib/bigfs")).EnsureSuccess("getent/stat");
        Assert.Contains("/usr/sbin/nologin", user.Stdout);
        Assert.Contains("bigfs:bigfs 750", user.Stdout);

        var status = (await ChrootAsync("dpkg -s bigfs")).EnsureSuccess("dpkg -s");
        Assert.Contains("Status: install ok installed", status.Stdout);
        Assert.Matches(@"Depends:.*\bfuse3\b", status.Stdout);

        // The installed units verify in the installed root, against its own systemd units.
        foreach (var unit in new[] { "bigfs-meta.service", "bigfs-node@1.service" })
        {
            var verify = await Shell.TryRunAsync($"systemd-analyze verify --root={Shell.Quote(_root)} {unit}");
            Assert.True(verify.ExitCode == 0 && (verify.Stdout + verify.Stderr).Trim() == "", $"verify {unit}: {verify.Stdout}{verify.Stderr}");
        }
    }

    [Fact]
    public async Task Real_units_under_systemd_serve_a_cluster_and_stop_cleanly()
    {
        await InstallAsync();
        // Three nodes for the default goal; each its own config, as an admin would add them.
        foreach (var i in new[] { 2, 3 })
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(_root, "etc/bigfs/node-1.json"))).Replace(":9101", $":910{i}").Replace("rack-1", $"rack-{i}");
            await File.WriteAllTextAsync(Path.Combine(_root, $"etc/bigfs/node-{i}.json"), text);
        }
        await using var container = await BootedContainer.BootAsync(_root);
        await container.RunAsync("systemctl start bigfs-meta.service");
        await container.RunAsync("systemctl start bigfs-node@1.service bigfs-node@2.service bigfs-node@3.service");
        foreach (var unit in new[] { "bigfs-meta", "bigfs-node@1", "bigfs-node@2", "bigfs-node@3" })
        {
            var active = await container.ExecAsync($"systemctl is-active {unit}.service");
            Assert.True(active.Stdout.Trim() == "active", $"{unit}: {active.Stdout}\n{await JournalAsync(container, unit)}");
            var user = await container.RunAsync($"stat -c %U /proc/$(systemctl show -p MainPID --value {unit}.service)");
            Assert.Equal("bigfs", user.Trim());
        }
        Assert.True(Exists("/var/lib/bigfs/meta") && Exists("/var/lib/bigfs/node-2/node.lock"), "StateDirectory= data dirs are used");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        string status = "";
        while (DateTime.UtcNow < deadline)
        {
            status = (await container.ExecAsync("bigfs status")).Stdout;
            if (status.Split('\n').Count(l => l.Contains(" active ")) >= 3) break;
            await Task.Delay(500);
        }
        Assert.True(status.Split('\n').Count(l => l.Contains(" active ")) >= 3, $"three active nodes:\n{status}");

        await container.RunAsync("head -c 6000000 /dev/urandom > /root/in.bin && bigfs put /root/in.bin /in.bin && bigfs get /in.bin /root/out.bin");
        var sums = await container.RunAsync("sha256sum /root/in.bin /root/out.bin | cut -d' ' -f1 | uniq | wc -l");
        Assert.Equal("1", sums.Trim());

        // systemctl stop sends SIGTERM and waits for the process; a clean stop leaves Result=success.
        await container.RunAsync("systemctl stop bigfs-node@1.service bigfs-node@2.service bigfs-node@3.service bigfs-meta.service");
        foreach (var unit in new[] { "bigfs-meta", "bigfs-node@1", "bigfs-node@2", "bigfs-node@3" })
        {
            var show = await container.RunAsync($"systemctl show -p Result -p ExecMainStatus -p ActiveState {unit}.service");
            Assert.True(show.Contains("Result=success") && show.Contains("ExecMainStatus=0") && show.Contains("ActiveState=inactive"),
                $"{unit}: {show}\n{await JournalAsync(container, unit)}");
        }
    }

    [Fact]
    public async Task Bad_configuration_fails_the_unit_with_one_journal_line_and_no_restart_loop()
    {
        await InstallAsync();
        await File.WriteAllTextAsync(Path.Combine(_root, "etc/bigfs/meta.json"), """{ "listen": "127.0.0.1:9000", "goal": 2, "min_copies_before_ack": 3 }""");
        await using var container = await BootedContainer.BootAsync(_root);
        var start = await container.ExecAsync("systemctl start bigfs-meta.service");
        Assert.NotEqual(0, start.ExitCode);
        var show = await container.RunAsync("systemctl show -p Result -p ExecMainStatus -p NRestarts bigfs-meta.service");
        Assert.Contains("ExecMainStatus=2", show);
        Assert.Contains("NRestarts=0", show);
        var journal = await container.RunAsync("journalctl --no-pager -o cat -u bigfs-meta.service _PID=$(systemctl show -p ExecMainPID --value bigfs-meta.service)");
        var line = Assert.Single(journal.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("bigfs meta: configuration error: min_copies_before_ack: 3 is more than goal (2)", line.Trim());
    }

    [Fact]
    public async Task Remove_keeps_data_and_config_purge_removes_config_only()
    {
        await InstallAsync();
        Directory.CreateDirectory(Path.Combine(_root, "var/lib/bigfs/node-1/chunks"));
        await File.WriteAllTextAsync(Path.Combine(_root, "var/lib/bigfs/node-1/chunks/keep"), "data");

        (await ChrootAsync("dpkg -r bigfs")).EnsureSuccess("dpkg -r bigfs");
        Assert.False(Exists("/usr/bin/bigfs"), "remove deletes the binary");
        Assert.False(Exists("/lib/systemd/system/bigfs-meta.service"), "remove deletes the units");
        Assert.True(Exists("/var/lib/bigfs/node-1/chunks/keep"), "remove leaves data alone");
        Assert.True(Exists("/etc/bigfs/meta.json"), "remove keeps configuration");

        (await ChrootAsync("dpkg -P bigfs")).EnsureSuccess("dpkg -P bigfs");
        Assert.False(Exists("/etc/bigfs"), "purge removes configuration");
        Assert.True(Exists("/var/lib/bigfs/node-1/chunks/keep"), "purge leaves data alone");
    }

    /// <summary>bigfs-mount@.service (Type=notify: start returns once the mount is live) and the fstab helper under mount(8).</summary>
    [Fact]
    public Task Mount_unit_and_fstab_helper_mount_and_unmount() => MountUnitScenario.MountUnitAsync(_root, InstallAsync);

    [Fact]
    public async Task Tarball_holds_the_same_tree()
    {
        var list = await Shell.RunAsync($"tar -tzf {Shell.Quote(package.Tarball)}");
        foreach (var path in new[] { "./usr/bin/bigfs", "./lib/systemd/system/bigfs-meta.service", "./lib/systemd/system/bigfs-node@.service", "./etc/bigfs/meta.json" })
            Assert.Contains(path, list.Split('\n'));
        Assert.DoesNotContain(list.Split('\n'), l => l.StartsWith("./DEBIAN", StringComparison.Ordinal));
    }

    private static async Task<string> JournalAsync(BootedContainer container, string unit) =>
        (await container.ExecAsync($"journalctl --no-pager -n 30 -u {unit}.service")).Stdout;

    public async Task DisposeAsync()
    {
        if (_root.Length > 0)
            await Debian12Root.RemoveAsync(_root);
    }
}
