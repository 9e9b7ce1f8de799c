using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// A mount from the installed package in a booted Debian 12 container: the bigfs-mount@ unit,
/// then an fstab-style `mount -t fuse.bigfs` through /usr/sbin/mount.fuse.bigfs and `umount`.
/// </summary>
public static class MountUnitScenario
{
    public static async Task MountUnitAsync(string root, Func<Task> install)
    {
        await install();
        foreach (var i in new[] { 2, 3 })
        {
            var text = (await File.ReadAllTextAsync(Path.Combine(root, "etc/bigfs/node-1.json"))).Replace(":9101", $":910{i}");
            await File.WriteAllTextAsync(Path.Combine(root, $"etc/bigfs/node-{i}.json"), text);
        }
        Directory.CreateDirectory(Path.Combine(root, "mnt/bigfs"));
        await using var container = await BootedContainer.BootAsync(root, "--bind=/dev/fuse");
        await container.RunAsync("systemctl start bigfs-meta.service bigfs-node@1.service bigfs-node@2.service bigfs-node@3.service");

        // The unit: Type=notify, so start returns once the mount is live.
        var unit = (await container.RunAsync("systemd-escape --path /mnt/bigfs")).Trim();
        await container.RunAsync($"systemctl start bigfs-mount@{unit}.service");
        Assert.Contains("fuse.bigfs", await container.RunAsync("findmnt -n -o FSTYPE /mnt/bigfs"));
        await container.RunAsync("head -c 3000000 /dev/urandom > /root/a && cp /root/a /mnt/bigfs/a && sync /mnt/bigfs/a");
        await container.RunAsync("bigfs get /a /root/b && cmp /root/a /root/b");
        await container.RunAsync($"systemctl stop bigfs-mount@{unit}.service");
        Assert.NotEqual(0, (await container.ExecAsync("findmnt /mnt/bigfs")).ExitCode);
        var show = await container.RunAsync($"systemctl show -p Result -p ExecMainStatus bigfs-mount@{unit}.service");
        Assert.Contains("Result=success", show);

        // The fstab helper: mount(8) runs /usr/sbin/mount.fuse.bigfs for type fuse.bigfs.
        await container.RunAsync("mkdir -p /mnt/fstab && mount -t fuse.bigfs 127.0.0.1:9000 /mnt/fstab && cmp /root/a /mnt/fstab/a && umount /mnt/fstab");

        // An fstab line, mounted by path as an admin would, then the way boot does it: the unit
        // systemd-fstab-generator makes from the line. umount ends the daemon each time.
        await container.RunAsync("echo '127.0.0.1:9000 /mnt/fstab fuse.bigfs _netdev,allow_other 0 0' >> /etc/fstab && systemctl daemon-reload");
        await container.RunAsync("mount /mnt/fstab && cmp /root/a /mnt/fstab/a && umount /mnt/fstab");
        await container.RunAsync("systemctl start mnt-fstab.mount && findmnt -n -o FSTYPE /mnt/fstab | grep -q fuse.bigfs && cmp /root/a /mnt/fstab/a");
        await container.RunAsync("systemctl stop mnt-fstab.mount");
        Assert.NotEqual(0, (await container.ExecAsync("findmnt /mnt/fstab")).ExitCode);
        await Poll.UntilAsync(async () => (await container.ExecAsync("pgrep -f 'bigfs mount'")).ExitCode != 0,
            TimeSpan.FromSeconds(30), "the mount daemon to exit after umount");
    }
}
