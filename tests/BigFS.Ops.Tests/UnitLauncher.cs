using System.Net;
using System.Net.Sockets;

namespace BigFS.Ops.Tests;

/// <summary>
/// Starts a daemon exactly as its unit's ExecStart= does — same arguments, the packaged
/// configuration files, the unit's Environment= — with the filesystem paths moved under a
/// temporary root (/etc/bigfs and /var/lib/bigfs), systemd's StateDirectory= creation
/// emulated, and a test notify socket in NOTIFY_SOCKET. Tests bind to loopback only, so the
/// listen (and meta) address comes from BIGFS_ environment variables, which the daemons read
/// through the same configuration stack as the file.
/// </summary>
public sealed class UnitLauncher(string root)
{
    public string EtcDirectory { get; } = Path.Combine(root, "etc", "bigfs");
    public string StateRoot { get; } = Path.Combine(root, "var", "lib");

    /// <summary>Copies packaging/etc/*.json where the units read them; extra node configs are the node-1 one.</summary>
    public void InstallPackagedConfiguration(params string[] extraNodeInstances)
    {
        Directory.CreateDirectory(EtcDirectory);
        foreach (var file in Directory.GetFiles(Path.Combine(RepoPaths.PackagingDirectory, "etc"), "*.json"))
            File.Copy(file, Path.Combine(EtcDirectory, Path.GetFileName(file)), overwrite: true);
        foreach (var instance in extraNodeInstances)
            File.Copy(Path.Combine(EtcDirectory, "node-1.json"), Path.Combine(EtcDirectory, $"node-{instance}.json"), overwrite: true);
    }

    public (string Executable, List<string> Args, Dictionary<string, string> Environment, UnitFile Unit) Prepare(
        string unitFile, string? instance, IReadOnlyDictionary<string, string> extraEnvironment)
    {
        var unit = UnitFile.Load(Path.Combine(RepoPaths.SystemdDirectory, unitFile), instance);
        var argv = unit.ExecStart.ToList();
        Assert.Equal("/usr/bin/bigfs", argv[0]);
        var args = argv.Skip(1).Select(Relocate).ToList();

        // systemd creates StateDirectory= entries (under /var/lib) before starting the service.
        var stateDirectories = (unit.Get("Service", "StateDirectory") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        foreach (var dir in stateDirectories)
            Directory.CreateDirectory(Path.Combine(StateRoot, dir));
        // ProtectSystem=strict leaves only the state directories writable: the data dir must be one.
        var dataIndex = args.IndexOf("--data");
        if (dataIndex >= 0)
            Assert.Contains(args[dataIndex + 1], stateDirectories.Select(d => Path.Combine(StateRoot, d)));

        var env = new Dictionary<string, string>(unit.Environment);
        foreach (var (k, v) in extraEnvironment) env[k] = v;
        return (RepoPaths.BigfsExecutable, args, env, unit);
    }

    private string Relocate(string arg) =>
        arg.StartsWith("/etc/bigfs/", StringComparison.Ordinal) ? Path.Combine(EtcDirectory, arg["/etc/bigfs/".Length..])
        : arg.StartsWith("/var/lib/", StringComparison.Ordinal) ? Path.Combine(StateRoot, arg["/var/lib/".Length..])
        : arg;

    /// <summary>
    /// A loopback port free now, with port + 1000 free too (the daemons' second listener), taken
    /// below the kernel's ephemeral range (32768 and up): a port from bind(0) is an ephemeral one,
    /// which an outgoing connection of a test running beside this one can take before the daemon
    /// binds it ("already in use").
    /// </summary>
    public static int FreeLoopbackPort()
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(10_000, 31_000);
            if (CanBind(port) && CanBind(port + 1000))
                return port;
        }
        throw new InvalidOperationException("no free loopback port pair found below the ephemeral range");
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static TimeSpan ParseSeconds(string? systemdTime, TimeSpan fallback) =>
        systemdTime is null ? fallback : TimeSpan.FromSeconds(double.Parse(systemdTime.TrimEnd('s'), System.Globalization.CultureInfo.InvariantCulture));
}
