using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

public class FileDataTests
{
    private readonly Harness _h = new();

    private async Task<(ulong File, string A, string B)> FileWithTwoChunks()
    {
        await _h.RegisterNode("p");
        var f = await _h.Create(1, "f");
        var a = NewChunkId();
        var b = NewChunkId();
        await _h.RegisterChunk("p", a, size: 1000, owner: f, goal: 1);
        await _h.RegisterChunk("p", b, size: 1000, owner: f, goal: 1);
        return (f, a, b);
    }

    [Fact]
    public async Task Partial_overwrite_splices_and_keeps_both_chunks_live()
    {
        var (f, a, b) = await FileWithTwoChunks();
        await _h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = a });
        await _h.Commit(f, new Extent { FileOffset = 400, Length = 200, ChunkId = b, ChunkOffset = 10 });

        var layout = _h.Ns.GetLayout(new GetLayoutRequest { Ino = f });
        Assert.Equal(
            [(0ul, 400ul, a, 0ul), (400ul, 200ul, b, 10ul), (600ul, 400ul, a, 600ul)],
            layout.Extents.Select(e => (e.FileOffset, e.Length, e.ChunkId, e.ChunkOffset)));
        Assert.Equal(2, layout.Chunks.Count);
        Assert.Equal(ChunkState.Live, _h.Chunk(a).State);
        Assert.Equal(1000ul, layout.Attr.Size);
        Assert.Equal(2ul, layout.Attr.Version);

        // A range query returns only the overlapping, clipped extents.
        var part = _h.Ns.GetLayout(new GetLayoutRequest { Ino = f, Offset = 450, Length = 100 });
        var only = Assert.Single(part.Extents);
        Assert.Equal((450ul, 100ul, b, 60ul), (only.FileOffset, only.Length, only.ChunkId, only.ChunkOffset));
    }

    [Fact]
    public async Task Extent_beyond_the_chunk_is_EINVAL()
    {
        var (f, a, _) = await FileWithTwoChunks();
        Assert.Equal(Errno.EINVAL, (await _h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = a, ChunkOffset = 1 })).Errno);
        var dir = await _h.Create(1, "d", InodeType.Directory);
        Assert.Equal(Errno.EISDIR, (await _h.Ns.CommitWriteAsync(new CommitWriteRequest { Ino = dir })).Errno);
    }

    [Fact]
    public async Task Set_size_truncates_or_extends_with_a_hole()
    {
        var (f, a, _) = await FileWithTwoChunks();
        var write = new CommitWriteRequest { Ino = f, SetSize = true, Size = 500 };
        write.Extents.Add(new Extent { FileOffset = 0, Length = 1000, ChunkId = a });
        var r = await _h.Ns.CommitWriteAsync(write);
        Assert.Equal(500ul, r.Attr.Size);
        Assert.Equal(500ul, Assert.Single(_h.Ns.GetLayout(new GetLayoutRequest { Ino = f }).Extents).Length);
        var grow = await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 8, Size = 1 << 20 });
        Assert.Equal(1ul << 20, grow.Attr.Size);
        Assert.Single(_h.Ns.GetLayout(new GetLayoutRequest { Ino = f }).Extents);
        Assert.Equal(Errno.EISDIR, (await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = 1, Valid = 8 })).Errno);
    }

    [Fact]
    public async Task Open_with_truncate_empties_the_file_atomically()
    {
        var (f, a, _) = await FileWithTwoChunks();
        await _h.Commit(f, new Extent { FileOffset = 0, Length = 1000, ChunkId = a });
        var session = _h.Ns.OpenSession(new OpenSessionRequest()).SessionId;
        var r = await _h.Ns.OpenAsync(new OpenRequest { SessionId = session, Ino = f, Truncate = true });
        Assert.Equal(0ul, r.Attr.Size);
        Assert.Equal(2ul, r.Attr.Version);
        Assert.Equal(ChunkState.Garbage, _h.Chunk(a).State);
        Assert.Empty(_h.Ns.GetLayout(new GetLayoutRequest { Ino = f }).Extents);
    }

    [Fact]
    public async Task Setattr_times_and_ctime()
    {
        var f = await _h.Create(1, "f");
        _h.Time.Advance(TimeSpan.FromSeconds(5));
        var r = await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 16 | 32, AtimeNs = 111, MtimeNs = 222 });
        Assert.Equal(111, r.Attr.AtimeNs);
        Assert.Equal(222, r.Attr.MtimeNs);
        var now = (_h.Time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100;
        Assert.Equal(now, r.Attr.CtimeNs);
        r = await _h.Ns.SetAttrAsync(new SetAttrRequest { Ino = f, Valid = 128 | 256 });
        Assert.Equal(now, r.Attr.AtimeNs);
        Assert.Equal(now, r.Attr.MtimeNs);
    }

    [Fact]
    public async Task Statfs_sums_active_nodes_only()
    {
        await _h.RegisterNode("a", capacity: 1000, used: 100);
        await _h.RegisterNode("b", capacity: 500, used: 500);
        var s = _h.Ns.StatFs();
        Assert.Equal(1500ul, s.CapacityBytes);
        Assert.Equal(900ul, s.FreeBytes);
        Assert.Equal(4096u, s.BlockSize);
        _h.PassTime(_h.Options.HeartbeatTimeout + TimeSpan.FromSeconds(1), "a");
        _h.Cluster.Heartbeat(new HeartbeatRequest { NodeId = "a", CapacityBytes = 1000, UsedBytes = 100 });
        Assert.Equal(1000ul, _h.Ns.StatFs().CapacityBytes);
    }
}
