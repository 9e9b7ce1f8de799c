using System.Diagnostics;
using System.Security.Cryptography;
using BigFS.Client;
using BigFS.Metadata;
using BigFS.Protocol;
using BigFS.Storage;
using Google.Protobuf;

// Usage: dotnet run -c Release --project bench/BigFS.Bench -- [--size-mib 1024] [--files 10000] [--data DIR] [--write-only] [--warmup-mib N]
// Starts a local cluster (1 metadata server, 3 storage nodes, goal 3) in this process, like
// `bigfs up`, and measures through the client library. CPU figures are this process's total
// CPU time (all components run here), per GiB moved.
var sizeMiB = ArgInt("--size-mib", 1024);
var fileCount = ArgInt("--files", 10_000);
var writeOnly = args.Contains("--write-only");   // for profiling the write path alone
// Written (and removed) before the measured write: the JIT's tiering of the freshly started
// components then happens outside the measurement (steady state of long-running daemons).
var warmupMiB = ArgInt("--warmup-mib", 0);
var root = Arg("--data") ?? Path.Combine(Path.GetTempPath(), "bigfs-bench-" + Environment.ProcessId);
Directory.CreateDirectory(root);

await using var meta = await MetadataServer.StartAsync(new MetadataServerOptions { DataDirectory = Path.Combine(root, "meta"), Listen = "127.0.0.1:0" });
var nodes = new List<StorageNode>();
for (var i = 1; i <= 3; i++)
    nodes.Add(await StorageNode.StartAsync(new StorageNodeOptions { DataDirectory = Path.Combine(root, $"node{i}"), Listen = "127.0.0.1:0", MetadataAddress = meta.Address }));
var admin = new Cluster.ClusterClient(GrpcChannels.Create(meta.Address));
while ((await admin.GetClusterStatusAsync(new ClusterStatusRequest())).Nodes.Count(n => n.State == NodeState.Active) < 3)
    await Task.Delay(50);

await using var client = await BigFsClient.ConnectAsync(meta.Address);
Console.WriteLine($"# BigFS cluster benchmark — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}");
Console.WriteLine($"# 1 metadata server + 3 storage nodes + client in one process, goal 3 copies, data in {root}");

// Sequential write, then read, of sizeMiB with 1 MiB application writes.
var data = new byte[1 << 20];
RandomNumberGenerator.Fill(data);
if (warmupMiB > 0)
{
    var warm = await client.Namespace.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = ByteString.CopyFromUtf8("warmup.bin"), Type = InodeType.File, Mode = 0x1a4, Exclusive = true });
    await using (var f = client.OpenFile(warm.Attr.Ino, 0))
    {
        for (long i = 0; i < warmupMiB; i++)
            await f.WriteAsync(i << 20, data);
        await f.FlushAsync();
    }
    await client.Namespace.UnlinkAsync(new RemoveRequest { Parent = 1, Name = ByteString.CopyFromUtf8("warmup.bin") });
    while ((await admin.GetClusterStatusAsync(new ClusterStatusRequest())).CopiesPending > 0)
        await Task.Delay(100);
    Console.WriteLine($"# warm-up: {warmupMiB} MiB written and removed before the measured write");
}
var created = await client.Namespace.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = ByteString.CopyFromUtf8("seq.bin"), Type = InodeType.File, Mode = 0x1a4, Exclusive = true });
var ino = created.Attr.Ino;
var (wallW, cpuW) = await Measure(async () =>
{
    await using var f = client.OpenFile(ino, 0);
    for (long i = 0; i < sizeMiB; i++)
        await f.WriteAsync(i << 20, data);
    await f.FlushAsync();
});
Report("seq write (3 copies, durable at end)", sizeMiB, wallW, cpuW);

if (writeOnly)
{
    foreach (var node in nodes)
        await node.DisposeAsync();
    Directory.Delete(root, recursive: true);
    return;
}

// Wait for background replication to finish so the read is not competing with it.
while ((await admin.GetClusterStatusAsync(new ClusterStatusRequest())).CopiesPending > 0)
    await Task.Delay(100);

var reader = await BigFsClient.ConnectAsync(meta.Address, new BigFsClientOptions { ChunkCacheBytes = 64 << 20 });
var buffer = new byte[1 << 20];
var (wallR, cpuR) = await Measure(async () =>
{
    await using var f = reader.OpenFile(ino, (long)sizeMiB << 20);
    for (long i = 0; i < sizeMiB; i++)
    {
        var n = await f.ReadAsync(i << 20, buffer);
        if (n != buffer.Length || !buffer.AsSpan().SequenceEqual(data))
            throw new InvalidDataException($"read back differs at MiB {i}");
    }
});
Report("seq read (verified)", sizeMiB, wallR, cpuR);
await reader.DisposeAsync();

// Metadata operations.
foreach (var inFlight in new[] { 1, 16 })
{
    var dir = await client.Namespace.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = ByteString.CopyFromUtf8($"meta{inFlight}"), Type = InodeType.Directory, Mode = 0x1ed, Exclusive = true });
    var parent = dir.Attr.Ino;
    var inodes = new ulong[fileCount];
    await Rate($"create ({inFlight} in flight)", fileCount, inFlight, async i =>
    {
        var r = await client.Namespace.CreateNodeAsync(new CreateNodeRequest { Parent = parent, Name = ByteString.CopyFromUtf8($"f{i}"), Type = InodeType.File, Mode = 0x1a4, Exclusive = true });
        inodes[i] = r.Attr.Ino;
    });
    await Rate($"stat ({inFlight} in flight)", fileCount, inFlight, async i => await client.Namespace.GetAttrAsync(new InodeRequest { Ino = inodes[i] }));
    await Rate($"rename ({inFlight} in flight)", fileCount, inFlight, async i =>
        await client.Namespace.RenameAsync(new RenameRequest { Parent = parent, Name = ByteString.CopyFromUtf8($"f{i}"), NewParent = parent, NewName = ByteString.CopyFromUtf8($"g{i}") }));
    await Rate($"unlink ({inFlight} in flight)", fileCount, inFlight, async i =>
        await client.Namespace.UnlinkAsync(new RemoveRequest { Parent = parent, Name = ByteString.CopyFromUtf8($"g{i}") }));
}

foreach (var node in nodes)
    await node.DisposeAsync();
Directory.Delete(root, recursive: true);
return;

static async Task<(double Wall, double Cpu)> Measure(Func<Task> body)
{
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    await body();
    sw.Stop();
    var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
    return (sw.Elapsed.TotalSeconds, cpu);
}

static void Report(string what, int mib, double wall, double cpu) =>
    Console.WriteLine($"| {what} | {mib / wall:0} MB/s | {cpu / (mib / 1024.0):0.00} CPU-s/GiB | {wall:0.00} s |");

static async Task Rate(string what, int count, int inFlight, Func<int, Task> op)
{
    var next = -1;
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async _ =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < count)
            await op(i);
    }));
    Console.WriteLine($"| {what} | {count / sw.Elapsed.TotalSeconds:0} ops/s | {count} ops | {sw.Elapsed.TotalSeconds:0.00} s |");
}

string? Arg(string name) { var i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
int ArgInt(string name, int fallback) => Arg(name) is { } s ? int.Parse(s) : fallback;
