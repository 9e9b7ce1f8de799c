using BigFS.Core;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Xunit.Abstractions;

namespace BigFS.Ops.Tests;

/// <summary>
/// SIGTERM while a storage node is receiving a chunk: the node finishes it (or rejects it
/// cleanly, leaving no file behind), reports STOPPING=1, and exits 0 within its unit's
/// TimeoutStopSec=.
/// </summary>
public sealed class GracefulStopTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDirectory _root = new("bigfs-stop-");
    private StartedUnits? _units;

    [Fact]
    public async Task Sigterm_during_an_upload_finishes_or_cleanly_rejects_the_chunk()
    {
        var launcher = new UnitLauncher(_root.Path);
        launcher.InstallPackagedConfiguration();
        var units = _units = new StartedUnits(launcher, _root);
        var metaAddress = $"127.0.0.1:{UnitLauncher.FreeLoopbackPort()}";
        // One node: goal and ack count 1, so the chunk is durable once this node has it.
        var meta = await units.StartAsync("bigfs-meta.service", null, new()
        {
            ["BIGFS_LISTEN"] = metaAddress, ["BIGFS_GOAL"] = "1", ["BIGFS_MIN_COPIES_BEFORE_ACK"] = "1",
        });
        var nodeAddress = $"127.0.0.1:{UnitLauncher.FreeLoopbackPort()}";
        var node = await units.StartAsync("bigfs-node@.service", "1", new()
        {
            ["BIGFS_LISTEN"] = nodeAddress, ["BIGFS_META"] = metaAddress, ["BIGFS_MIN_COPIES_BEFORE_ACK"] = "1",
        });
        await StartedUnits.WaitForActiveNodesAsync(metaAddress);

        var data = new byte[4 * 1024 * 1024];
        new Random(11).NextBytes(data);
        var chunkId = ChunkId.NewRandom().ToString();
        using var channel = GrpcChannels.Create("http://" + nodeAddress);
        var client = new ChunkStore.ChunkStoreClient(channel);
        using var call = client.WriteChunk();
        await call.RequestStream.WriteAsync(new ChunkUpload
        {
            Header = new ChunkHeader { ChunkId = chunkId, Size = (ulong)data.Length, Checksum = ChunkChecksum.Compute(data), OwnerIno = 1, Goal = 1, MinCopies = 1 },
        });
        var half = data.Length / 2;
        for (var offset = 0; offset < half; offset += ChunkChecksum.BlockSize)
            await call.RequestStream.WriteAsync(new ChunkUpload { Data = UnsafeByteOperations.UnsafeWrap(data.AsMemory(offset, ChunkChecksum.BlockSize)) });

        // Mid-chunk: stop the node the way systemctl stop does.
        node.Process.Signal(DaemonProcess.SIGTERM);
        var stopTimeout = UnitLauncher.ParseSeconds(node.Unit.Get("Service", "TimeoutStopSec"), TimeSpan.FromSeconds(90));
        await node.Notify.WaitForAsync("STOPPING=1", stopTimeout);

        WriteChunkReply? reply = null;
        RpcException? rejected = null;
        try
        {
            for (var offset = half; offset < data.Length; offset += ChunkChecksum.BlockSize)
                await call.RequestStream.WriteAsync(new ChunkUpload { Data = UnsafeByteOperations.UnsafeWrap(data.AsMemory(offset, ChunkChecksum.BlockSize)) });
            await call.RequestStream.CompleteAsync();
            reply = await call.ResponseAsync;
        }
        catch (RpcException e)
        {
            rejected = e;
        }
        catch (InvalidOperationException)
        {
            // The request stream was closed by the server: the response says why.
            try { reply = await call.ResponseAsync; }
            catch (RpcException e) { rejected = e; }
        }

        await node.Process.WaitForExitAsync(stopTimeout);
        Assert.True(node.Process.ExitCode == 0, $"node exit code {node.Process.ExitCode}\n{node.Process}");

        var dataDir = Path.Combine(launcher.StateRoot, "bigfs", "node-1");
        var files = Directory.GetFiles(dataDir, "*", SearchOption.AllDirectories).Where(f => f.Contains(chunkId)).ToList();
        output.WriteLine(reply is not null ? $"finished: {reply.DurableCopies} durable copies" : $"rejected: {rejected?.StatusCode} {rejected?.Status.Detail}");
        if (reply is not null)
        {
            // Finished: acknowledged means durable — the chunk file is in place, complete.
            Assert.True(reply.DurableCopies >= 1, $"acknowledged with {reply.DurableCopies} copies");
            var stored = Assert.Single(files);
            Assert.Contains(Path.Combine(dataDir, "chunks"), stored);
            Assert.True(new FileInfo(stored).Length >= data.Length, "the stored chunk holds all the data");
        }
        else
        {
            // Rejected: with a proper status, and nothing left behind (no temporary file either).
            Assert.NotNull(rejected);
            Assert.True(rejected!.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled or StatusCode.Aborted, rejected.ToString());
            Assert.Empty(files);
        }

        meta.Process.Signal(DaemonProcess.SIGTERM);
        await meta.Process.WaitForExitAsync(stopTimeout);
        Assert.Equal(0, meta.Process.ExitCode);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_units is not null)
            await _units.DisposeAsync();
        _root.Dispose();
    }
}
