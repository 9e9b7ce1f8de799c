using BigFS.Client;
using BigFS.Core;

namespace BigFS.Data.Tests;

public class MergeAndCompactionPolicyTests
{
    private const int MiB = 1024 * 1024;
    private const int Region = 4 * MiB;

    private static RegionMergePolicy.Piece P(long offset, int length) => new(offset, length);

    private static RegionMergePolicy.Cluster C(long start, long end) => new(start, end);

    [Fact]
    public void ARegionAtLeastHalfDirty_IsMergedWhole_UpToTheFileEnd()
    {
        var policy = new RegionMergePolicy(Region);
        var pieces = Enumerable.Range(0, 512).Select(i => P(Region + i * 8192L, 4096)).ToList();

        var plan = policy.Plan(pieces, fileSize: 256L * MiB);

        var group = Assert.Single(plan);
        Assert.Equal((0, 512, true, (long)Region, 2L * Region), (group.First, group.Count, group.Merge, group.SpanStart, group.SpanEnd));
        Assert.Equal([C(Region, 2L * Region)], group.Clusters);
        var fileEnd = pieces[^1].End + 10;
        Assert.Equal(fileEnd, policy.Plan(pieces, fileSize: fileEnd).Single().SpanEnd);
    }

    [Fact]
    public void PiecesFarApart_ShareOneChunk_WithoutReuploadingWhatLiesBetween()
    {
        var policy = new RegionMergePolicy(Region);
        var group = Assert.Single(policy.Plan([P(0, 100), P(3 * MiB, 100)], fileSize: 64L * MiB));

        Assert.True(group.Merge);
        Assert.Equal([C(0, 100), C(3 * MiB, 3 * MiB + 100)], group.Clusters);
        Assert.Equal(200, group.UploadBytes);
    }

    [Fact]
    public void SmallGapsAreFilled_LargeOnesAreNot()
    {
        var policy = new RegionMergePolicy(Region, gapFillBytes: 64 * 1024);
        var group = Assert.Single(policy.Plan([P(MiB, 100), P(MiB + 50_000, 100), P(2 * MiB, 100)], fileSize: 64L * MiB));

        Assert.Equal([C(MiB, MiB + 50_100), C(2 * MiB, 2 * MiB + 100)], group.Clusters);
        Assert.Equal((long)MiB, group.SpanStart);
        Assert.Equal(2L * MiB + 100, group.SpanEnd);
    }

    [Fact]
    public void ASinglePieceInARegion_IsUploadedAsItIs()
    {
        var policy = new RegionMergePolicy(Region);
        var plan = policy.Plan([P(100, 10), P(Region + 100, 10)], fileSize: 64L * MiB);

        Assert.Equal([(0, false), (1, false)], plan.Select(g => (g.First, g.Merge)));
    }

    [Fact]
    public void PiecesAreGroupedPerRegion_AndAPieceCrossingARegionStaysAlone()
    {
        var policy = new RegionMergePolicy(Region);
        List<RegionMergePolicy.Piece> pieces =
        [
            P(0, 10), P(20, 10), P(40, 10),             // region 0: merged
            P(Region - 5, 10),                          // crosses into region 1
            P(Region + 100, 10),                        // alone in region 1
            P(2L * Region, 10), P(2L * Region + 50, 10) // region 2: merged
        ];

        var plan = policy.Plan(pieces, fileSize: 3L * Region);

        Assert.Equal([(0, 3, true), (3, 1, false), (4, 1, false), (5, 2, true)], plan.Select(g => (g.First, g.Count, g.Merge)));
        Assert.Equal([C(0, 50)], plan[0].Clusters);
    }

    [Fact]
    public void UnderPressure_PlainPiecesAndDenseRegionsAreSealedBeforeSparseOnes()
    {
        var policy = new RegionMergePolicy(Region);
        var pieces = new List<RegionMergePolicy.Piece>();
        pieces.AddRange(Enumerable.Range(0, 10).Select(i => P(i * 400_000L, 4096)));           // region 0: sparse
        pieces.AddRange(Enumerable.Range(0, 500).Select(i => P(Region + i * 8192L, 4096)));    // region 1: dense
        pieces.Add(P(2L * Region - 10, 20));                                                   // crosses into region 2

        var order = RegionMergePolicy.CheapestFirst(pieces, policy.Plan(pieces, 3L * Region));

        // Region 0 packs its pieces (uploads what it frees); the crossing piece likewise; region 1 uploads twice what it frees.
        Assert.Equal([(0, true), (510, false), (10, true)], order.Select(g => (g.First, g.Merge)));
    }

    [Fact]
    public void Compaction_PicksRegionsDrawingOnTooManyChunks_IgnoringHolesAndRegionsOutsideTheRange()
    {
        var policy = new CompactionPolicy(Region, maxChunksPerRegion: 3);
        var extents = new List<FileExtent>();
        // Region 0: 4 chunks. Region 1: one chunk in 10 runs with holes between. Region 2: 4 chunks.
        for (var i = 0; i < 4; i++) extents.Add(new FileExtent(i * 1000L, 1000, $"a{i}", 0));
        for (var i = 0; i < 10; i++) extents.Add(new FileExtent(Region + i * 100_000L, 1000, "b", i * 1000L));
        for (var i = 0; i < 4; i++) extents.Add(new FileExtent(2L * Region + i * 1000L, 1000, $"c{i}", 0));

        Assert.Equal([0L, 2L * Region], policy.RegionsToCompact(extents, 0, 3L * Region));
        Assert.Equal([2L * Region], policy.RegionsToCompact(extents, Region, 3L * Region));
    }

    [Fact]
    public void Compaction_AnExtentSpanningRegions_CountsInEach()
    {
        var policy = new CompactionPolicy(Region, maxChunksPerRegion: 2);
        List<FileExtent> extents =
        [
            new(Region - 10, 20, "x", 0),
            new(Region + 10, 10, "y", 0),
            new(Region + 30, 10, "z", 0),
        ];

        Assert.Equal([(long)Region], policy.RegionsToCompact(extents, 0, 2L * Region));
    }
}

public class RegionChunkBoundsTests
{
    private const int Region = 1000;

    [Fact]
    public void AnEmptyFile_CountsItsOwnCommits_AndNeedsNoLayoutUntilTheBound()
    {
        var bounds = new RegionChunkBounds(Region);
        bounds.ResetEmpty();

        for (var i = 0; i < 3; i++)
            bounds.AddCommitted([new FileExtent(10 + i, 1, $"c{i}", 0)]);

        Assert.False(bounds.MayExceed(0, 3));
        bounds.AddCommitted([new FileExtent(500, 1000, "d", 0)]); // spans regions 0 and 1
        Assert.True(bounds.MayExceed(0, 3));
        Assert.False(bounds.MayExceed(1, 3));
    }

    [Fact]
    public void UnknownRegions_MayExceed_UntilAWindowIsObserved()
    {
        var bounds = new RegionChunkBounds(Region);
        Assert.True(bounds.MayExceed(5, 8));
        bounds.AddCommitted([new FileExtent(5000, 10, "x", 0)]);
        Assert.True(bounds.MayExceed(5, 8));

        bounds.Observe(4000, 3000, [new FileExtent(5000, 10, "x", 0), new FileExtent(5100, 10, "y", 0)]);

        Assert.False(bounds.MayExceed(5, 2));
        Assert.True(bounds.MayExceed(5, 1));
        Assert.False(bounds.MayExceed(4, 0));
        Assert.True(bounds.MayExceed(7, 8)); // outside the observed window
        bounds.Forget();
        Assert.True(bounds.MayExceed(5, 8));
    }
}
