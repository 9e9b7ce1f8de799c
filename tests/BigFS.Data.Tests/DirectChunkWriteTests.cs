using BigFS.Core;
using BigFS.Storage;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Data.Tests;

/// <summary>Large chunks written with O_DIRECT from an aligned image in memory, which the replica pushes then send.</summary>
public class DirectChunkWriteTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bigfs-direct-" + Guid.NewGuid().ToString("n"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private LocalChunkStore NewStore()
    {
        var store = new LocalChunkStore(_dir, NullLogger.Instance);
        Assert.True(store.WritesDirect, $"the filesystem of {_dir} refuses O_DIRECT; these tests need one that takes it (ext4, XFS, tmpfs on Linux ≥ 6.6)");
        return store;
    }

    private static void AppendInPieces(ChunkFileWriter writer, byte[] data, int piece)
    {
        for (var at = 0; at < data.Length; at += piece)
            writer.Append([data.AsMemory(at, Math.Min(piece, data.Length - at))]);
    }

    [Theory]
    [InlineData(3_000_123, 70_001)]          // an unaligned tail, pieces that straddle the 1 MiB writes
    [InlineData(4 * 1024 * 1024, 1 << 20)]   // a whole default chunk in aligned pieces
    [InlineData(1_048_577 - 4096, 65_536)]    // just large enough for its own file
    public async Task A_large_chunk_is_written_directly_and_its_file_holds_exactly_the_header_and_the_data(int size, int piece)
    {
        using var store = NewStore();
        var data = ChunkUploads.Random(size, size);
        var id = ChunkId.NewRandom();

        StoredChunk stored;
        await using (var writer = store.BeginStore(id, size, ChunkChecksum.Compute(data)))
        {
            Assert.True(writer.IsDirect);
            AppendInPieces(writer, data, piece);
            stored = await writer.CompleteAsync(CancellationToken.None);
        }

        Assert.Equal(ChunkFileHeader.DataOffsetFor(size) + size, new FileInfo(stored.Path).Length);
        Assert.Equal(ChunkChecksum.ComputeBlocks(data), stored.Header.BlockChecksums);
        var back = new byte[size];
        using (var handle = LocalChunkStore.OpenForRead(stored))
            Assert.Equal(size, await LocalChunkStore.ReadAsync(handle, stored, 0, back, CancellationToken.None));
        Assert.Equal(data, back);

        // What a restarted node reads from the disk: the header decodes and the chunk is indexed again.
        using var reopened = new LocalChunkStore(_dir, NullLogger.Instance);
        reopened.Load();
        Assert.True(reopened.TryGet(id, out var loaded));
        Assert.Equal(stored.Header.Checksum, loaded!.Header.Checksum);
    }

    [Fact]
    public async Task The_received_image_outlives_the_writer_until_every_push_released_it()
    {
        using var store = NewStore();
        var data = ChunkUploads.Random(2_500_000, 7);
        var writer = store.BeginStore(ChunkId.NewRandom(), data.Length, ChunkChecksum.Compute(data));
        AppendInPieces(writer, data, 1 << 20);
        Assert.Null(writer.ShareReceived(2));   // not before it is sealed: unverified data is never pushed
        writer.Seal();
        var image = writer.ShareReceived(2)!;
        await writer.CompleteAsync(CancellationToken.None);
        await writer.DisposeAsync();

        Assert.Equal(data, image.Data.ToArray());
        image.Release();
        Assert.Equal(data, image.Data.ToArray());   // one push still holds it
        image.Release();
    }

    [Fact]
    public async Task Small_chunks_still_go_through_the_page_cache_and_share_no_image()
    {
        using var store = NewStore();
        var data = ChunkUploads.Random(70_000, 8);
        await using var writer = store.BeginStore(ChunkId.NewRandom(), data.Length, ChunkChecksum.Compute(data));
        Assert.False(writer.IsDirect);
        writer.Append([data]);
        writer.Seal();
        Assert.Null(writer.ShareReceived(2));
    }

    [Fact]
    public async Task A_direct_upload_with_a_wrong_checksum_is_DataLoss_and_leaves_no_file()
    {
        using var store = NewStore();
        var data = ChunkUploads.Random(3_000_000, 9);
        var writer = store.BeginStore(ChunkId.NewRandom(), data.Length, ChunkChecksum.Compute(data) ^ 1);
        Assert.True(writer.IsDirect);
        AppendInPieces(writer, data, 1 << 20);
        var ex = Assert.Throws<ChunkRejectedException>(() => writer.Seal());
        Assert.Equal(StatusCode.DataLoss, ex.Code);
        await writer.DisposeAsync();
        Assert.DoesNotContain(Directory.EnumerateFiles(store.TempDirectory), f => !StagingFilePool.IsSpare(f));
        Assert.Equal(0, store.Count);
    }
}
