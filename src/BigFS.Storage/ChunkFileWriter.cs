using System.IO.Hashing;
using BigFS.Core;
using Grpc.Core;

namespace BigFS.Storage;

/// <summary>
/// One chunk upload in progress, transport-neutral: data is appended in order (the caller owns
/// the buffers again once the call returns), the
/// whole-chunk and per-block checksums are computed as it arrives, and
/// <see cref="CompleteAsync"/> checks size and checksum, writes the header, publishes the file
/// and makes it durable (<see cref="Seal"/> alone does the first two, so the data can be
/// read from <see cref="StagedPath"/> before it is durable). Disposed before completion, the temporary file is removed and nothing
/// is indexed. Not thread-safe: one upload, one caller.
/// Large chunks, where the filesystem allows it, are assembled in an <see cref="AlignedChunkBuffer"/>
/// and written with one O_DIRECT write by <see cref="CompleteAsync"/> (<see cref="DirectIo"/>);
/// once sealed, their data is read from memory (<see cref="ShareReceived"/>), not from
/// <see cref="StagedPath"/>. Small chunks go through the page cache into files made ahead.
/// </summary>
public sealed class ChunkFileWriter : IAsyncDisposable
{
    private const long PreallocateFrom = 1024 * 1024;

    private readonly LocalChunkStore _store;
    private readonly ChunkId _id;
    private readonly long _size;
    private readonly ulong _checksum;
    private readonly StoredChunk? _existing;
    private readonly string? _tempPath;
    private readonly FileStream? _file;
    private readonly AlignedChunkBuffer? _image;   // the file's image, for O_DIRECT writes
    private readonly long _dataOffset;
    private readonly ulong[] _blockChecksums = [];
    private readonly XxHash3 _whole = new();
    private readonly XxHash3 _block = new();
    private int _blockFill, _blockIndex;
    private ChunkFileHeader? _sealed;
    private bool _done;
    private bool _reserved;
    private bool _imageReleased;

    private ChunkFileWriter(LocalChunkStore store, ChunkId id, long size, ulong checksum, StoredChunk? existing, string? tempPath, StagingFile? staged = null)
    {
        _store = store;
        _id = id;
        _size = size;
        _checksum = checksum;
        _existing = existing;
        _tempPath = tempPath;
        if (tempPath is null)
            return;
        _dataOffset = ChunkFileHeader.DataOffsetFor(size);
        _blockChecksums = new ulong[ChunkChecksum.BlockCount(size)];
        try
        {
            store.Reserve(_dataOffset + size);
            _reserved = true;
            if (staged is not null)
                _file = new FileStream(staged.Handle, FileAccess.Write, bufferSize: 0);
            else if (WritesDirect(store, _dataOffset + size) && OpenDirect(tempPath, _dataOffset + size) is { } direct)
            {
                try
                {
                    _file = new FileStream(direct, FileAccess.Write, bufferSize: 0);
                }
                catch
                {
                    direct.Dispose();
                    store.TryDelete(tempPath);
                    throw;
                }
                _image = AlignedChunkBuffer.Rent(RoundUp(_dataOffset + size));
            }
            else
                _file = Open(tempPath, _dataOffset + size);
        }
        catch
        {
            ReleaseReservation();
            if (staged is not null)
            {
                staged.Handle.Dispose();
                store.TryDelete(staged.Path);
            }
            throw;
        }
    }

    /// <summary>Whether a chunk file of this many bytes (header included) is written into a file made ahead (<see cref="StagingFilePool"/>), not a new preallocated one.</summary>
    internal static bool UsesStagingFile(long fileSize) => fileSize < PreallocateFrom;

    /// <summary>Whether a new chunk file of this many bytes is written with O_DIRECT: large enough to be worth it, small enough to hold in memory.</summary>
    private static bool WritesDirect(LocalChunkStore store, long fileSize) =>
        store.WritesDirect && fileSize >= PreallocateFrom && fileSize - ChunkFileHeader.DataOffsetFor(fileSize) <= VerifiedChunkImage.MaxSharedBytes;

    private static long RoundUp(long length) => (length + AlignedChunkBuffer.Alignment - 1) / AlignedChunkBuffer.Alignment * AlignedChunkBuffer.Alignment;

    private static Microsoft.Win32.SafeHandles.SafeFileHandle? OpenDirect(string tempPath, long fileSize)
    {
        try
        {
            return DirectIo.TryCreate(tempPath, fileSize);
        }
        catch (IOException ex) when (LocalChunkStore.IsDiskFull(ex))
        {
            throw LocalChunkStore.DiskFull(ex);
        }
    }

    private static FileStream Open(string tempPath, long fileSize)
    {
        try
        {
            return new FileStream(tempPath, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read,   // read while staged (the copies to replicas)
                // Synchronous: a positional write into the page cache takes microseconds, less than
                // the thread-pool hand-off an asynchronous one costs here (Linux has no async file I/O).
                BufferSize = 0, Options = FileOptions.None,
                // Large chunks are preallocated (one extent); small ones are not: their fsync is
                // cheaper without the unwritten-extent conversion.
                PreallocationSize = fileSize >= PreallocateFrom ? fileSize : 0,
            });
        }
        catch (IOException ex) when (LocalChunkStore.IsDiskFull(ex))
        {
            throw LocalChunkStore.DiskFull(ex);
        }
    }

    private void ReleaseReservation()
    {
        if (_reserved)
            _store.Release(_dataOffset + _size);
        _reserved = false;
    }

    /// <summary>A new upload into <paramref name="staged"/> if given (a file made ahead, at <paramref name="tempPath"/>), or into a file created at <paramref name="tempPath"/>.</summary>
    internal static ChunkFileWriter Create(LocalChunkStore store, ChunkId id, long size, ulong checksum, string tempPath, StagingFile? staged = null) =>
        new(store, id, size, checksum, null, staged?.Path ?? tempPath, staged);

    /// <summary>The chunk is already here with this content: the data is only drained.</summary>
    internal static ChunkFileWriter ForExisting(LocalChunkStore store, StoredChunk existing) =>
        new(store, existing.Id, existing.Size, existing.Header.Checksum, existing, null);

    public ChunkId Id => _id;
    public long Size => _size;
    public long Received { get; private set; }

    /// <summary>Where the sealed data can be read before it is published: the temporary file, or the identical chunk already here.</summary>
    public string StagedPath => _existing?.Path ?? _tempPath!;

    /// <summary>Whether this upload is written with O_DIRECT from memory (and <see cref="ShareReceived"/> gives its data).</summary>
    public bool IsDirect => _image is not null;

    /// <summary>Appends the buffers (in order) at the current end; more data than the declared size is InvalidArgument.</summary>
    public void Append(IReadOnlyList<ReadOnlyMemory<byte>> buffers)
    {
        long bytes = 0;
        foreach (var b in buffers)
            bytes += b.Length;
        if (Received + bytes > _size)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"chunk {_id}: more data than the declared {_size} bytes");
        if (bytes == 0)
            return;
        if (_file is not null)
        {
            foreach (var b in buffers)
                Hash(b.Span);
            try
            {
                if (_image is null)
                    RandomAccess.Write(_file.SafeFileHandle, buffers, _dataOffset + Received);
                else
                {
                    // Only copied here: written whole once sealed (one I/O, header included).
                    var at = _dataOffset + Received;
                    foreach (var b in buffers)
                    {
                        b.Span.CopyTo(_image.Span(at, b.Length));
                        at += b.Length;
                    }
                }
            }
            catch (IOException ex) when (LocalChunkStore.IsDiskFull(ex))
            {
                throw LocalChunkStore.DiskFull(ex);
            }
        }
        Received += bytes;
    }

    private void Hash(ReadOnlySpan<byte> data)
    {
        _whole.Append(data);
        while (!data.IsEmpty)
        {
            var take = Math.Min(data.Length, ChunkChecksum.BlockSize - _blockFill);
            _block.Append(data[..take]);
            data = data[take..];
            _blockFill += take;
            if (_blockFill == ChunkChecksum.BlockSize)
            {
                _blockChecksums[_blockIndex++] = _block.GetCurrentHashAsUInt64();
                _block.Reset();
                _blockFill = 0;
            }
        }
    }

    /// <summary>
    /// Verifies size and checksum and writes the header: the chunk is complete in its temporary
    /// file (readable at <see cref="StagedPath"/>) but not yet durable nor indexed.
    /// </summary>
    public ChunkFileHeader Seal()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (_sealed is not null)
            return _sealed;
        if (Received != _size)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"chunk {_id}: received {Received} bytes, header said {_size}");
        if (_existing is not null)
            return _sealed = _existing.Header;
        if (_blockFill > 0)
            _blockChecksums[_blockIndex] = _block.GetCurrentHashAsUInt64();
        var actual = _whole.GetCurrentHashAsUInt64();
        if (actual != _checksum)
            throw new ChunkRejectedException(StatusCode.DataLoss, $"chunk {_id}: checksum mismatch (data {actual:x16}, header {_checksum:x16})");
        var header = new ChunkFileHeader(_size, _checksum, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), _blockChecksums);
        if (_image is null)
            RandomAccess.Write(_file!.SafeFileHandle, header.Encode(), 0);
        else
            header.Encode().CopyTo(_image.Span(0, (int)_dataOffset));   // on the disk in CompleteAsync
        return _sealed = header;
    }

    /// <summary>
    /// A direct upload's whole file in one write: header, data, padding to the alignment (cut
    /// off again). Done when completing, not when sealing, so the replica pushes (from memory)
    /// need not wait for this node's disk.
    /// </summary>
    private void WriteDirect()
    {
        var end = _dataOffset + _size;
        var padded = RoundUp(end);
        _image!.Span(end, (int)(padded - end)).Clear();
        try
        {
            RandomAccess.Write(_file!.SafeFileHandle, _image.Span(0, (int)padded), 0);
            if (padded != end)
                RandomAccess.SetLength(_file.SafeFileHandle, end);
        }
        catch (IOException ex) when (LocalChunkStore.IsDiskFull(ex))
        {
            throw LocalChunkStore.DiskFull(ex);
        }
    }

    /// <summary>
    /// The sealed data of a direct upload, for <paramref name="pushes"/> replica pushes (each
    /// releases it once); null for an upload through the page cache.
    /// </summary>
    public VerifiedChunkImage? ShareReceived(int pushes)
    {
        if (_image is null || _sealed is null)
            return null;
        return VerifiedChunkImage.Received(_image, (int)_dataOffset, (int)_size, pushes);
    }

    /// <summary>Seals the chunk if not yet done, publishes the file under its name, makes it durable and indexes it (<see cref="LocalChunkStore.Publish"/>).</summary>
    public async Task<StoredChunk> CompleteAsync(CancellationToken ct)
    {
        var header = Seal();
        if (_existing is not null)
        {
            _done = true;
            return _existing;
        }
        if (_image is not null)
            WriteDirect();
        var chunk = _store.Publish(_id, header, _tempPath!, _file!.SafeFileHandle);
        await _file.DisposeAsync();
        _done = true;
        ReleaseReservation();   // now counted in the store's used bytes
        return chunk;
    }

    public async ValueTask DisposeAsync()
    {
        if (_file is not null)
            await _file.DisposeAsync();
        if (!_imageReleased && _image is not null)
        {
            _imageReleased = true;
            _image.Release();
        }
        if (!_done && _tempPath is not null)
            _store.TryDelete(_tempPath);
        _done = true;
        ReleaseReservation();
    }
}
