using static BigFS.Testing.Shell;

namespace BigFS.Ops.Tests;

/// <summary>
/// Hosts on one machine: each a network namespace with its own address on a private bridge
/// (10.77.N.0/24, the bridge itself .254 for the root namespace), so daemons talk over real TCP
/// between distinct addresses and a host can vanish from the network (<see cref="CutAsync"/>:
/// its link goes down, packets to it are dropped, nobody sends a reset), as a host that loses
/// power or a cable does. Everything is removed on dispose.
/// </summary>
public sealed class VirtualNetwork : IAsyncDisposable
{
    private readonly string _tag = Guid.NewGuid().ToString("n")[..4];   // interface names stay under IFNAMSIZ (15)
    private readonly int _subnet = Random.Shared.Next(1, 250);
    private readonly List<string> _hosts = [];

    private string Bridge => $"bfs{_tag}br";
    private string Namespace(string host) => $"bfs{_tag}-{host}";
    private string HostSide(int index) => $"bfs{_tag}h{index}";

    public string RootAddress => $"10.77.{_subnet}.254";

    public static async Task<VirtualNetwork> CreateAsync()
    {
        var missing = await TryRunAsync("command -v ip");
        Assert.True(missing.ExitCode == 0, "the `ip` command (iproute2) is needed to build the virtual network");
        var network = new VirtualNetwork();
        await RunAsync($"ip link add {network.Bridge} type bridge && ip link set {network.Bridge} up && ip addr add {network.RootAddress}/24 dev {network.Bridge}");
        return network;
    }

    /// <summary>Adds a host; returns its address.</summary>
    public async Task<string> AddHostAsync(string name)
    {
        var index = _hosts.Count + 1;
        var ns = Namespace(name);
        var address = $"10.77.{_subnet}.{index}";
        _hosts.Add(name);
        await RunAsync($"ip netns add {ns} && ip link add {HostSide(index)} type veth peer name eth0 netns {ns}"
            + $" && ip link set {HostSide(index)} master {Bridge} up"
            + $" && ip -n {ns} addr add {address}/24 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up");
        return address;
    }

    /// <summary>The command line that runs <paramref name="command"/> on host <paramref name="name"/>.</summary>
    public IEnumerable<string> On(string name, string executable, IEnumerable<string> args) =>
        ["netns", "exec", Namespace(name), executable, .. args];

    /// <summary>The host drops off the network: no packet reaches it or leaves it, and nothing says so.</summary>
    public Task CutAsync(string name) => RunAsync($"ip link set {HostSide(_hosts.IndexOf(name) + 1)} down");

    public Task HealAsync(string name) => RunAsync($"ip link set {HostSide(_hosts.IndexOf(name) + 1)} up");

    public async ValueTask DisposeAsync()
    {
        // Each pair explicitly: a namespace outlives its name while the kernel still holds sockets of it.
        for (var i = 0; i < _hosts.Count; i++)
        {
            await TryRunAsync($"ip link delete {HostSide(i + 1)}");
            await TryRunAsync($"ip netns delete {Namespace(_hosts[i])}");
        }
        await TryRunAsync($"ip link delete {Bridge}");
    }
}
