using System.Buffers;
using BigFS.Core;
using Grpc.Core;

namespace BigFS.Storage;

/// <summary>
/// A local chunk read into one pooled buffer and verified block by block, shared by the pushes
/// to several replicas so the file is read and verified once rather than once per replica.
/// Each user holds a reference; the buffer returns to the pool when the last one releases it.
/// </summary>
public sealed class VerifiedChunkImage
{
    /// <summary>Chunks up to this size are shared this way; larger ones are streamed per replica.</summary>
    public const long MaxSharedBytes = 16L * 1024 * 1024;

    private readonly Action _returnMemory;
    private int _references;

    private VerifiedChunkImage(ReadOnlyMemory<byte> data, Action returnMemory, int references)
    {
        Data = data;
        _returnMemory = returnMemory;
        _references = references;
    }

    /// <summary>
    /// The data of a chunk just received and checked against its checksum, still in the
    /// writer's memory: the pushes need not read it back. Holds one reference to
    /// <paramref name="buffer"/> until the last of <paramref name="references"/> is released.
    /// </summary>
    internal static VerifiedChunkImage Received(AlignedChunkBuffer buffer, int offset, int length, int references)
    {
        buffer.Retain();
        return new VerifiedChunkImage(buffer.Memory.Slice(offset, length), buffer.Release, references);
    }

    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Reads and verifies the chunk; a bad block is reported through <paramref name="onCorrupt"/> and is DataLoss.</summary>
    /// <param name="source">An open handle to read from (the caller's), instead of opening the chunk's path.</param>
    public static async Task<VerifiedChunkImage> LoadAsync(StoredChunk chunk, int references, Func<StoredChunk, string, Task> onCorrupt, CancellationToken ct,
        Microsoft.Win32.SafeHandles.SafeFileHandle? source = null)
    {
        var length = (int)chunk.Size;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            if (source is not null)
                await LocalChunkStore.ReadAsync(source, chunk, 0, buffer.AsMemory(0, length), ct);
            else
                using (var handle = LocalChunkStore.OpenForRead(chunk))
                    await LocalChunkStore.ReadAsync(handle, chunk, 0, buffer.AsMemory(0, length), ct);
            var bad = FirstBadBlock(chunk, buffer.AsSpan(0, length));
            if (bad >= 0)
            {
                await onCorrupt(chunk, $"block {bad} checksum mismatch while replicating");
                throw new ChunkRejectedException(StatusCode.DataLoss, $"chunk {chunk.Id} is corrupt here (block {bad})");
            }
            return new VerifiedChunkImage(buffer.AsMemory(0, length), () => ArrayPool<byte>.Shared.Return(buffer), references);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <returns>The index of the first block whose checksum differs from the stored one, or -1.</returns>
    public static int FirstBadBlock(StoredChunk chunk, ReadOnlySpan<byte> data)
    {
        for (int block = 0, at = 0; at < data.Length; block++, at += ChunkChecksum.BlockSize)
        {
            if (ChunkChecksum.Compute(data.Slice(at, Math.Min(ChunkChecksum.BlockSize, data.Length - at))) != chunk.Header.BlockChecksums[block])
                return block;
        }
        return -1;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
            _returnMemory();
    }
}

/// <summary>
/// One <see cref="VerifiedChunkImage"/> loaded on first use, for a known number of pushes. Every
/// push calls <see cref="ReleaseAsync"/> exactly once, whether or not it used the image; the
/// image is counted for the pushes not yet released when it is loaded. With a
/// <c>source</c> handle, the image is read through it (the owner keeps it open until
/// <see cref="GetAsync"/> completed once).
/// </summary>
public sealed class SharedChunkImage(StoredChunk chunk, int pushes, Func<StoredChunk, string, Task> onCorrupt,
    Microsoft.Win32.SafeHandles.SafeFileHandle? source = null)
{
    private readonly object _lock = new();
    private int _unreleased = pushes;
    private Task<VerifiedChunkImage>? _load;

    /// <summary>An image already in memory (<see cref="VerifiedChunkImage.Received"/>, counted for <paramref name="pushes"/>).</summary>
    internal static SharedChunkImage Loaded(StoredChunk chunk, VerifiedChunkImage image, int pushes) =>
        new(chunk, pushes, (_, _) => Task.CompletedTask) { _load = Task.FromResult(image) };

    public Task<VerifiedChunkImage> GetAsync(CancellationToken ct)
    {
        lock (_lock)
            return _load ??= VerifiedChunkImage.LoadAsync(chunk, _unreleased, onCorrupt, ct, source);
    }

    public async Task ReleaseAsync()
    {
        Task<VerifiedChunkImage>? load;
        lock (_lock)
        {
            _unreleased--;
            load = _load; // loaded before this release: this push was counted in it
        }
        if (load is null)
            return;
        try
        {
            (await load).Release();
        }
        catch (Exception ex) when (ex is ChunkRejectedException or IOException or OperationCanceledException)
        {
            // The load failed: there is no buffer to return.
        }
    }
}
