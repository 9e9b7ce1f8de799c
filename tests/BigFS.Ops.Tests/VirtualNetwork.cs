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
    private readonly Dictionary<string, string> _addresses = [];

    /// <summary>The machine's own namespace, where the mount runs, as a host name for <see cref="SeverAsync"/>.</summary>
    public const string Root = "(root)";

    /// <summary>The nftables table each host's dropped peers go in: one set, matched both ways.</summary>
    private const string PartitionTable = "inet bigfs_partition";

    private string Bridge => $"bfs{_tag}br";
    private string Namespace(string host) => $"bfs{_tag}-{host}";
    private string HostSide(int index) => $"bfs{_tag}h{index}";

    public string RootAddress => $"10.77.{_subnet}.254";

    public static async Task<VirtualNetwork> CreateAsync()
    {
        Assert.True((await TryRunAsync("command -v ip")).ExitCode == 0, "the `ip` command (iproute2) is needed to build the virtual network");
        Assert.True((await TryRunAsync("command -v nft")).ExitCode == 0, "the `nft` command (apt-get install nftables) is needed to partition the virtual network");
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
        _addresses[name] = address;
        await RunAsync($"ip netns add {ns} && ip link add {HostSide(index)} type veth peer name eth0 netns {ns}"
            + $" && ip link set {HostSide(index)} master {Bridge} up"
            + $" && ip -n {ns} addr add {address}/24 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up");
        // Every packet from or to an address in the set is dropped, silently, as on a dead link.
        await RunAsync($"ip netns exec {ns} nft -f - <<'EOF'\n"
            + $"table {PartitionTable} {{\n"
            + "  set severed { type ipv4_addr; }\n"
            + "  set refused { type ipv4_addr; }\n"
            + "  chain input { type filter hook input priority 0; ip saddr @severed drop;"
            + " ip saddr @refused tcp flags & (syn | ack) == syn drop; }\n"
            + "  chain output { type filter hook output priority 0; ip daddr @severed drop; }\n"
            + "}\nEOF");
        return address;
    }

    /// <summary>The command line that runs <paramref name="command"/> on host <paramref name="name"/>.</summary>
    public IEnumerable<string> On(string name, string executable, IEnumerable<string> args) =>
        ["netns", "exec", Namespace(name), executable, .. args];

    /// <summary>The host drops off the network: no packet reaches it or leaves it, and nothing says so.</summary>
    public Task CutAsync(string name) => RunAsync($"ip link set {HostSide(_hosts.IndexOf(name) + 1)} down");

    public Task HealAsync(string name) => RunAsync($"ip link set {HostSide(_hosts.IndexOf(name) + 1)} up");

    /// <summary>
    /// Hosts <paramref name="a"/> and <paramref name="b"/> (either may be <see cref="Root"/>) stop
    /// hearing each other, both ways and without a reset; each still reaches every other host.
    /// </summary>
    public Task SeverAsync(string a, string b) => EditSeveredAsync("add", a, b);

    public Task MendAsync(string a, string b) => EditSeveredAsync("delete", a, b);

    /// <summary>
    /// <paramref name="host"/> takes no new connection from <paramref name="from"/> (its SYNs are
    /// dropped), while connections <paramref name="host"/> opens to it work: one-way, as a
    /// firewall rule that forgot a direction makes.
    /// </summary>
    public Task RefuseConnectionsAsync(string host, string from) =>
        RunAsync($"ip netns exec {Namespace(host)} nft add element {PartitionTable} refused '{{ {AddressOf(from)} }}'");

    public Task AcceptConnectionsAsync(string host, string from) =>
        RunAsync($"ip netns exec {Namespace(host)} nft delete element {PartitionTable} refused '{{ {AddressOf(from)} }}'");

    private string AddressOf(string host) => host == Root ? RootAddress : _addresses[host];

    private Task EditSeveredAsync(string verb, string a, string b)
    {
        // Dropped on one side only: that side's rules see both directions of the pair's traffic.
        var (host, peer) = a == Root ? (b, a) : (a, b);
        Assert.NotEqual(Root, host);
        return RunAsync($"ip netns exec {Namespace(host)} nft {verb} element {PartitionTable} severed '{{ {AddressOf(peer)} }}'");
    }

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
