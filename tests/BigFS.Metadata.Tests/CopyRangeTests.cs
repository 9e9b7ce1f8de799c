using BigFS.Core;
using BigFS.Metadata.Model;
using BigFS.Protocol;
using static BigFS.Metadata.Tests.Harness;

namespace BigFS.Metadata.Tests;

/// <summary>copy_file_range as a metadata change: the target's range comes to reference the source's chunks.</summary>
public class CopyRangeTests
{
    private readonly Harness _h = new();

    /// <summary>f: [0, 1000) in chunk a, a hole to 3000, [3000, 4000) in chunk b; size 4000.</summary>
    private async Task<(ulong File, string A, string B)> SparseFile()
    {
        await _h.RegisterNode("p");
        var f = await _h.Create(1, "f");
        var (a, b) = (NewChunkId(), NewChunkId());
        await _h.RegisterChunk("p", a, size: 1000, owner: f, goal: 1);
        await _h.RegisterChunk("p", b, size: 1000, owner: f, goal: 1);
        var commit = new CommitWriteRequest { Ino = f };
        commit.Extents.Add(new Extent { FileOffset = 0, Length = 1000, ChunkId = a });
        commit.Extents.Add(new Extent { FileOffset = 3000, Length = 1000, ChunkId = b });
        Assert.Equal(0, (await _h.Ns.CommitWriteAsync(commit)).Errno);
        return (f, a, b);
    }

    private IEnumerable<(ulong, ulong, string, ulong)> Layout(ulong ino) =>
        _h.Ns.GetLayout(new GetLayoutRequest { Ino = ino }).Extents.Select(e => (e.FileOffset, e.Length, e.ChunkId, e.ChunkOffset));

    private Task<CopyRangeReply> Copy(ulong from, ulong offsetIn, ulong to, ulong offsetOut, ulong length) =>
        _h.Ns.CopyRangeAsync(new CopyRangeRequest { InoIn = from, OffsetIn = offsetIn, InoOut = to, OffsetOut = offsetOut, Length = length });

    [Fact]
    public async Task The_target_shares_the_source_chunks_and_holes_and_grows_to_the_copied_end()
    {
        var (f, a, b) = await SparseFile();
        var g = await _h.Create(1, "g");
        var before = _h.Attr(g);

        // Asking past the source's end copies up to it.
        var reply = await Copy(f, 500, g, 100, 10_000);
        Assert.Equal(0, reply.Errno);
        Assert.Equal(3500ul, reply.Copied);
        Assert.Equal([(100ul, 500ul, a, 500ul), (2600ul, 1000ul, b, 0ul)], Layout(g));
        Assert.Equal(3600ul, reply.Attr.Size);
        Assert.True(reply.Attr.Version > before.Version);
        Assert.True(reply.Attr.MtimeNs >= before.MtimeNs);
        Assert.Equal([(0ul, 1000ul, a, 0ul), (3000ul, 1000ul, b, 0ul)], Layout(f));   // the source is unchanged

        // The chunks live while either file references them.
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("f") });
        Assert.Equal((ChunkState.Live, ChunkState.Live), (_h.Chunk(a).State, _h.Chunk(b).State));
        await _h.Ns.UnlinkAsync(new RemoveRequest { Parent = 1, Name = Name("g") });
        Assert.Equal((ChunkState.Garbage, ChunkState.Garbage), (_h.Chunk(a).State, _h.Chunk(b).State));
    }

    [Fact]
    public async Task A_copy_replaces_what_the_target_held_in_its_range_holes_included()
    {
        var (f, a, _) = await SparseFile();
        var g = await _h.Create(1, "g");
        var c = NewChunkId();
        await _h.RegisterChunk("p", c, size: 5000, owner: g, goal: 1);
        await _h.Commit(g, new Extent { FileOffset = 0, Length = 5000, ChunkId = c });

        var reply = await Copy(f, 900, g, 0, 200);
        Assert.Equal(200ul, reply.Copied);
        Assert.Equal([(0ul, 100ul, a, 900ul), (200ul, 4800ul, c, 200ul)], Layout(g));   // [100, 200) is the source's hole
        Assert.Equal(5000ul, reply.Attr.Size);
        Assert.Equal(ChunkState.Live, _h.Chunk(c).State);

        // Within one file, ranges that do not overlap.
        var self = await Copy(g, 4000, g, 6000, 1000);
        Assert.Equal(1000ul, self.Copied);
        Assert.Equal((6000ul, 1000ul, c, 4000ul), Layout(g).Last());
        Assert.Equal(7000ul, self.Attr.Size);
    }

    [Fact]
    public async Task A_shared_chunk_takes_the_higher_goal_of_the_files_holding_it()
    {
        var (f, a, b) = await SparseFile();   // goal 1
        var safer = (await _h.Ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Name = Name("safer"), Type = InodeType.File, Mode = 0x1A4, Goal = 3 })).Attr.Ino;
        Assert.Equal(1000ul, (await Copy(f, 0, safer, 0, 1000)).Copied);
        Assert.Equal((3, 1), (_h.Chunk(a).Goal, _h.Chunk(b).Goal));
    }

    [Fact]
    public async Task Bad_requests_get_an_errno_and_change_nothing()
    {
        var (f, _, _) = await SparseFile();
        var g = await _h.Create(1, "g");
        var d = await _h.Create(1, "d", InodeType.Directory);
        var version = _h.Attr(g).Version;

        var pastEnd = await Copy(f, 4000, g, 0, 100);
        Assert.Equal((0, 0ul, version), (pastEnd.Errno, pastEnd.Copied, pastEnd.Attr.Version));
        Assert.Equal(Errno.EINVAL, (await Copy(f, 0, f, 500, 1000)).Errno);   // overlapping ranges of one file
        Assert.Equal(Errno.EISDIR, (await Copy(f, 0, d, 0, 10)).Errno);
        Assert.Equal(Errno.EISDIR, (await Copy(d, 0, g, 0, 10)).Errno);
        Assert.Equal(Errno.ENOENT, (await Copy(999, 0, g, 0, 10)).Errno);
        Assert.Equal(Errno.ENOENT, (await Copy(f, 0, 999, 0, 10)).Errno);
        Assert.Equal(Errno.EFBIG, (await Copy(f, 0, g, (ulong)NamespaceLogicMax, 10)).Errno);
        Assert.Empty(Layout(g));
        Assert.Equal(version, _h.Attr(g).Version);
    }

    private const long NamespaceLogicMax = BigFS.Metadata.Logic.NamespaceLogic.MaxFileSize;
}
