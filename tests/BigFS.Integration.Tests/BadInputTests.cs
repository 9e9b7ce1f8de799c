using BigFS.Core;
using BigFS.Protocol;
using Google.Protobuf;
using Grpc.Core;

namespace BigFS.Integration.Tests;

/// <summary>Bad input over the wire gets a clear error and leaves no partial state.</summary>
public class BadInputTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;
    private Namespace.NamespaceClient _ns = null!;
    private ChunkStore.ChunkStoreClient _node = null!;
    private Cluster.ClusterClient _admin = null!;

    public async Task InitializeAsync()
    {
        _cluster = await TestCluster.StartAsync();
        _ns = new Namespace.NamespaceClient(GrpcChannels.Create(_cluster.Meta.Address));
        _admin = new Cluster.ClusterClient(GrpcChannels.Create(_cluster.Meta.Address));
        _node = new ChunkStore.ChunkStoreClient(GrpcChannels.Create(_cluster.Nodes[0]!.Address));
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    public static TheoryData<byte[], int> InvalidNames => new()
    {
        { [], Errno.EINVAL },
        { "."u8.ToArray(), Errno.EINVAL },
        { ".."u8.ToArray(), Errno.EINVAL },
        { "a/b"u8.ToArray(), Errno.EINVAL },
        { "a\0b"u8.ToArray(), Errno.EINVAL },
        { Enumerable.Repeat((byte)'x', 256).ToArray(), Errno.ENAMETOOLONG },
    };

    [Theory]
    [MemberData(nameof(InvalidNames))]
    public async Task InvalidNamesAreRejectedAndCreateNothing(byte[] name, int errno)
    {
        foreach (var type in new[] { InodeType.File, InodeType.Directory })
        {
            var reply = await _ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = ByteString.CopyFrom(name), Type = type, Mode = 0x1a4, Exclusive = true });
            Assert.Equal(errno, reply.Errno);
        }
        var list = await _ns.ReadDirectoryAsync(new ReadDirectoryRequest { Ino = 1, MaxEntries = 100 });
        Assert.Empty(list.Entries);
    }

    [Fact]
    public async Task OperationsOnMissingInodesAnswerEnoent()
    {
        Assert.Equal(Errno.ENOENT, (await _ns.GetAttrAsync(new InodeRequest { Ino = 999_999 })).Errno);
        Assert.Equal(Errno.ENOENT, (await _ns.LookupAsync(new LookupRequest { Parent = 1, Name = TestCluster.Name("nope") })).Errno);
        Assert.Equal(Errno.ENOENT, (await _ns.CreateNodeAsync(new CreateNodeRequest { Parent = 999_999, Name = TestCluster.Name("x"), Type = InodeType.File })).Errno);
        Assert.Equal(Errno.ENOENT, (await _ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = TestCluster.Name("nope") })).Errno);
        Assert.Equal(Errno.ENOENT, (await _ns.SetAttrAsync(new SetAttrRequest { Ino = 999_999, Valid = 1, Mode = 0x1ff })).Errno);
        Assert.Equal(Errno.ENOENT, (await _ns.GetLayoutAsync(new GetLayoutRequest { Ino = 999_999 })).Errno);
    }

    [Theory]
    [InlineData("../../etc/passwd")]
    [InlineData("0123456789ABCDEF0123456789ABCDEF")]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData("/etc/passwd")]
    public async Task MalformedChunkIdsAreRejectedByNodesWithoutTouchingFiles(string id)
    {
        var read = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = _node.ReadChunk(new ReadChunkRequest { ChunkId = id, Length = 10 });
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        });
        Assert.Equal(StatusCode.InvalidArgument, read.StatusCode);
        var delete = await Assert.ThrowsAsync<RpcException>(async () => await _node.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = id }));
        Assert.Equal(StatusCode.InvalidArgument, delete.StatusCode);
        Assert.True(File.Exists("/etc/passwd"));
    }

    [Fact]
    public async Task UnknownChunkIdsAnswerNotFound()
    {
        var id = ChunkId.NewRandom().ToString();
        var delete = await Assert.ThrowsAsync<RpcException>(async () => await _node.DeleteChunkAsync(new DeleteChunkRequest { ChunkId = id }));
        Assert.Equal(StatusCode.NotFound, delete.StatusCode);
        var read = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = _node.ReadChunk(new ReadChunkRequest { ChunkId = id, Length = 10 });
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
        });
        Assert.Equal(StatusCode.NotFound, read.StatusCode);
    }

    [Fact]
    public async Task AChecksumThatDoesNotMatchIsRejectedAndNothingIsRegistered()
    {
        var data = FileHelpers.RandomBytes(200_000, seed: 9);
        var id = ChunkId.NewRandom().ToString();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = _node.WriteChunk();
            await call.RequestStream.WriteAsync(new ChunkUpload { Header = new ChunkHeader { ChunkId = id, Size = (ulong)data.Length, Checksum = ChunkChecksum.Compute(data) ^ 1, OwnerIno = 1 } });
            for (var at = 0; at < data.Length; at += 64 << 10)
                await call.RequestStream.WriteAsync(new ChunkUpload { Data = ByteString.CopyFrom(data, at, Math.Min(64 << 10, data.Length - at)) });
            await call.RequestStream.CompleteAsync();
            await call;
        });
        Assert.Contains(error.StatusCode, new[] { StatusCode.InvalidArgument, StatusCode.DataLoss });
        Assert.Equal(0, _cluster.NodesHolding(id));
        var status = await _admin.GetClusterStatusAsync(new ClusterStatusRequest());
        Assert.Equal(0UL, status.ChunksTotal);
    }

    [Fact]
    public async Task CommitOfAnUnknownChunkIsRejectedAndChangesNothing()
    {
        var file = await FileHelpers.CreateFileAsync(await _cluster.ClientAsync(), "f");
        var reply = await _ns.CommitWriteAsync(new CommitWriteRequest
        {
            Ino = file.Ino,
            Extents = { new Extent { FileOffset = 0, Length = 10, ChunkId = ChunkId.NewRandom().ToString(), ChunkOffset = 0 } },
        });
        Assert.NotEqual(0, reply.Errno);
        var bad = await _ns.CommitWriteAsync(new CommitWriteRequest
        {
            Ino = file.Ino,
            Extents = { new Extent { FileOffset = 0, Length = 10, ChunkId = "../../etc/passwd", ChunkOffset = 0 } },
        });
        Assert.NotEqual(0, bad.Errno);
        var attr = await _ns.GetAttrAsync(new InodeRequest { Ino = file.Ino });
        Assert.Equal(0UL, attr.Attr.Size);
    }

    [Fact]
    public async Task AnOversizedChunkIsRejected()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = _node.WriteChunk();
            await call.RequestStream.WriteAsync(new ChunkUpload { Header = new ChunkHeader { ChunkId = ChunkId.NewRandom().ToString(), Size = 1UL << 40, Checksum = 0, OwnerIno = 1 } });
            await call.RequestStream.CompleteAsync();
            await call;
        });
        Assert.Contains(error.StatusCode, new[] { StatusCode.InvalidArgument, StatusCode.OutOfRange, StatusCode.ResourceExhausted });
    }

    [Fact]
    public async Task AnOversizedXattrValueIsRejected()
    {
        var file = await FileHelpers.CreateFileAsync(await _cluster.ClientAsync(), "x");
        var reply = await _ns.SetXattrAsync(new SetXattrRequest { Ino = file.Ino, Name = TestCluster.Name("user.big"), Value = ByteString.CopyFrom(new byte[1 << 20]) });
        Assert.Contains(reply.Errno, new[] { Errno.E2BIG, Errno.ERANGE, Errno.ENOSPC });
        var list = await _ns.ListXattrAsync(new InodeRequest { Ino = file.Ino });
        Assert.Empty(list.Names);
    }
}
