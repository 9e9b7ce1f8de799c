using BigFS.Testing;

namespace BigFS.Ops.Tests;

/// <summary>
/// `systemd-analyze verify` (systemd 252) on every unit, inside a temporary root: the host
/// neither runs systemd as PID 1 nor has /usr/bin/bigfs. The root gets the host's stock units
/// (verify needs sysinit.target and friends), our units where the package puts them, and the
/// built bigfs at /usr/bin/bigfs, so the ExecStart= check is real. verify exits 0 even when
/// it warns about unknown keys or bad values, so any output at all fails the test.
/// </summary>
public sealed class SystemdVerifyTests : IDisposable
{
    private readonly TempDirectory _root = new("bigfs-verify-");

    public SystemdVerifyTests()
    {
        var units = _root.Combine("lib", "systemd", "system");
        Directory.CreateDirectory(units);
        foreach (var stock in Directory.GetFiles("/lib/systemd/system"))
            if (!Directory.Exists(stock))
                File.Copy(stock, Path.Combine(units, Path.GetFileName(stock)));
        foreach (var unit in RepoPaths.UnitFiles)
            File.Copy(unit, Path.Combine(units, Path.GetFileName(unit)), overwrite: true);
        Directory.CreateDirectory(_root.Combine("usr", "bin"));
        File.Copy(RepoPaths.BigfsExecutable, _root.Combine("usr", "bin", "bigfs"));
        Directory.CreateDirectory(_root.Combine("mnt", "bigfs"));
    }

    private static readonly string[] UnitNames =
    [
        "bigfs-meta.service",
        "bigfs-node@1.service",
        "bigfs-node@disk2.service",
        "bigfs-mount@mnt-bigfs.service",
    ];

    public static TheoryData<string> Units => new(UnitNames);

    [Theory]
    [MemberData(nameof(Units))]
    public async Task Unit_verifies_without_any_message(string unit)
    {
        var result = await VerifyAsync(unit);
        Assert.True(result.ExitCode == 0 && result.Stdout.Trim() == "" && result.Stderr.Trim() == "",
            $"systemd-analyze verify {unit}: exit {result.ExitCode}\n{result.Stdout}{result.Stderr}");
    }

    [Fact]
    public void Every_unit_in_the_tree_is_verified()
    {
        var verified = UnitNames.Select(u => u.Contains('@') ? u[..(u.IndexOf('@') + 1)] + ".service" : u).ToHashSet();
        Assert.All(RepoPaths.UnitFiles.Select(f => Path.GetFileName(f)), unit => Assert.Contains(unit, verified));
    }

    /// <summary>The harness must see verify's warnings: a unit with a typo and a bad value is reported.</summary>
    [Fact]
    public async Task A_broken_unit_is_reported()
    {
        File.WriteAllText(_root.Combine("lib", "systemd", "system", "bigfs-broken.service"),
            "[Service]\nType=notify\nExecStart=/usr/bin/bigfs meta\nProtectSystem=strictly\nRestartt=always\n");
        var result = await VerifyAsync("bigfs-broken.service");
        Assert.Contains("Restartt", result.Stdout + result.Stderr);
        Assert.Contains("protect system", result.Stdout + result.Stderr);
    }

    [Fact]
    public async Task A_missing_binary_is_reported()
    {
        File.Delete(_root.Combine("usr", "bin", "bigfs"));
        var result = await VerifyAsync("bigfs-meta.service");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/usr/bin/bigfs", result.Stdout + result.Stderr);
    }

    private Task<Shell.Result> VerifyAsync(string unit) =>
        Shell.TryRunAsync($"systemd-analyze verify --root={Shell.Quote(_root.Path)} {Shell.Quote(unit)}", timeout: TimeSpan.FromSeconds(60));

    public void Dispose() => _root.Dispose();
}
