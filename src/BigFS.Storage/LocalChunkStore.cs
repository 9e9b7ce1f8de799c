using System.Collections.Concurrent;
using BigFS.Core;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BigFS.Storage;

/// <summary>
/// The chunk files of one data directory: <c>DATA/chunks/ab/&lt;id&gt;</c> (ab = first two hex
/// digits of the id), each a <see cref="ChunkFileHeader"/> followed by the data; uploads land
/// in <c>DATA/tmp</c> first. Paths are only ever built from a parsed <see cref="ChunkId"/>.
/// </summary>
public sealed class LocalChunkStore : IDisposable
{
    /// <summary>Empty files kept ready for small uploads (<see cref="StagingFilePool"/>).</summary>
    private const int StagingFilesAhead = 32;

    public const long MaxChunkSize = 64L * 1024 * 1024;

    /// <summary>Received frames are gathered into writes of this size: one syscall and thread-pool hop per MiB, not per 64 KiB.</summary>
    public const int WriteBatchBytes = 1024 * 1024;

    /// <summary>Chunk data is read in spans of this size (whole blocks) when serving and replicating.</summary>
    public const int ReadSpanBytes = 1024 * 1024;

    private readonly ConcurrentDictionary<ChunkId, StoredChunk> _chunks = new();
    private readonly ILogger _logger;
    private readonly string _dataDirectory;
    private long _usedBytes;
    private long _reservedBytes;
    private readonly StagingFilePool _staging;

    public LocalChunkStore(string dataDirectory, ILogger logger, long capacityBytes = 0)
    {
        _logger = logger;
        _dataDirectory = Path.GetFullPath(dataDirectory);
        CapacityBytes = capacityBytes;
        ChunksDirectory = Path.Combine(dataDirectory, "chunks");
        TempDirectory = Path.Combine(dataDirectory, "tmp");
        Directory.CreateDirectory(ChunksDirectory);
        Directory.CreateDirectory(TempDirectory);
        CreateFanOutDirectories();
        _staging = new StagingFilePool(TempDirectory, StagingFilesAhead, logger);
        WritesDirect = DirectIo.IsSupported(TempDirectory);
        if (!WritesDirect)
            logger.LogInformation("The filesystem of {Directory} refuses O_DIRECT: large chunks are written through the page cache", TempDirectory);
    }

    /// <summary>Whether large chunks are written with O_DIRECT (<see cref="ChunkFileWriter"/>): the data directory's filesystem takes it.</summary>
    public bool WritesDirect { get; }

    /// <summary>Keeps empty files ready for small uploads until cancelled; run after <see cref="Load"/> (which clears the temporary directory).</summary>
    public Task MakeStagingFilesAheadAsync(CancellationToken ct) => _staging.RefillAsync(ct);

    /// <summary>Closes and removes the staging files made ahead.</summary>
    public void Dispose() => _staging.Dispose();

    /// <summary>
    /// The 256 `chunks/xx` directories are made (and made durable) once at start, so the first
    /// chunks of a fresh node do not each pay an extra fsync of `chunks/` on their write path.
    /// </summary>
    private void CreateFanOutDirectories()
    {
        var created = false;
        for (var i = 0; i < 256; i++)
        {
            var dir = Path.Combine(ChunksDirectory, i.ToString("x2"));
            if (Directory.Exists(dir))
                continue;
            Directory.CreateDirectory(dir);
            created = true;
        }
        if (created)
            DirectorySync.Fsync(ChunksDirectory);
    }

    public string ChunksDirectory { get; }
    public string TempDirectory { get; }
    public long UsedBytes => Interlocked.Read(ref _usedBytes);

    /// <summary>The most chunk data this node holds (0: as much as its filesystem has room for).</summary>
    public long CapacityBytes { get; }

    /// <summary>What this node offers: <see cref="CapacityBytes"/>, or the chunks held plus the filesystem's free space.</summary>
    public long EffectiveCapacity() => CapacityBytes > 0 ? CapacityBytes : UsedBytes + DiskFreeBytes();

    private long DiskFreeBytes()
    {
        try
        {
            return new DriveInfo(_dataDirectory).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return long.MaxValue;   // unknown: the write itself reports a full disk
        }
    }

    /// <summary>
    /// Sets room aside for an upload of <paramref name="size"/> bytes, counting the uploads in
    /// progress, or refuses it with ResourceExhausted (the writer's ENOSPC). Released by the writer.
    /// </summary>
    internal void Reserve(long size)
    {
        var reserved = Interlocked.Add(ref _reservedBytes, size);
        var room = EffectiveCapacity() - UsedBytes;
        if (reserved <= room)
            return;
        Interlocked.Add(ref _reservedBytes, -size);
        throw new ChunkRejectedException(StatusCode.ResourceExhausted,
            $"no space for a chunk of {size} bytes ({Math.Max(0, room)} bytes free{(CapacityBytes > 0 ? $" of the configured capacity {CapacityBytes}" : " on the disk")})");
    }

    /// <summary>Room set aside for uploads in progress.</summary>
    internal long ReservedBytes => Interlocked.Read(ref _reservedBytes);

    internal void Release(long size) => Interlocked.Add(ref _reservedBytes, -size);

    /// <summary>A full disk met while writing is the writer's ENOSPC, not an I/O error.</summary>
    internal static bool IsDiskFull(IOException ex) => ex.HResult is 28 or 112;   // ENOSPC; ERROR_DISK_FULL as .NET may map it

    internal static ChunkRejectedException DiskFull(IOException ex) =>
        new(StatusCode.ResourceExhausted, "no space left on the node's disk: " + ex.Message);

    public int Count => _chunks.Count;
    public ICollection<StoredChunk> All => _chunks.Values;

    public string PathFor(ChunkId id)
    {
        var text = id.ToString();
        return Path.Combine(ChunksDirectory, text[..2], text);
    }

    /// <summary>Parses an id from the wire; anything but 32 lowercase hex digits is InvalidArgument.</summary>
    public static ChunkId ParseId(string? text) =>
        text is not null && ChunkId.TryParse(text, out var id)
            ? id
            : throw new ChunkRejectedException(StatusCode.InvalidArgument, "chunk id must be 32 lowercase hex digits");

    public bool TryGet(ChunkId id, out StoredChunk chunk) => _chunks.TryGetValue(id, out chunk!);

    /// <summary>The chunk, if here and healthy: NotFound / DataLoss otherwise.</summary>
    public StoredChunk GetServable(ChunkId id)
    {
        if (!_chunks.TryGetValue(id, out var chunk))
            throw new ChunkRejectedException(StatusCode.NotFound, $"chunk {id} is not on this node");
        if (chunk.IsCorrupt)
            throw new ChunkRejectedException(StatusCode.DataLoss, $"chunk {id} is corrupt on this node");
        return chunk;
    }

    /// <summary>Indexes the chunk files already on disk and removes leftover temporary files.</summary>
    public void Load()
    {
        foreach (var temp in Directory.EnumerateFiles(TempDirectory))
            File.Delete(temp);
        Span<byte> head = stackalloc byte[ChunkFileHeader.FixedLength];
        foreach (var dir in Directory.EnumerateDirectories(ChunksDirectory))
        foreach (var path in Directory.EnumerateFiles(dir))
        {
            var name = Path.GetFileName(path);
            if (!ChunkId.TryParse(name, out var id) || Path.GetFileName(dir) != name[..2])
            {
                _logger.LogWarning("Ignoring stray file {Path} in the chunk directory", path);
                continue;
            }
            try
            {
                var header = ReadHeader(path);
                if (new FileInfo(path).Length != header.DataOffset + header.Size)
                    throw new InvalidDataException("file length does not match its header");
                Add(new StoredChunk(id, header, path));
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException)
            {
                _logger.LogError(ex, "Chunk file {Path} is unreadable; not serving it", path);
            }
        }
        _logger.LogInformation("Loaded {Count} chunks ({Bytes} bytes) from {Directory}", Count, UsedBytes, ChunksDirectory);
    }

    private static ChunkFileHeader ReadHeader(string path)
    {
        using var handle = File.OpenHandle(path);
        var fixedPart = new byte[ChunkFileHeader.FixedLength];
        if (RandomAccess.Read(handle, fixedPart, 0) != fixedPart.Length)
            throw new InvalidDataException("short header");
        var blocks = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(fixedPart.AsSpan(8));
        if (blocks > ChunkChecksum.BlockCount(MaxChunkSize))
            throw new InvalidDataException("bad block count");
        var whole = new byte[ChunkFileHeader.FixedLength + 8 * blocks];
        if (RandomAccess.Read(handle, whole, 0) != whole.Length)
            throw new InvalidDataException("short header");
        if (!ChunkFileHeader.TryDecode(whole, out var header, out var error))
            throw new InvalidDataException(error);
        return header!;
    }

    /// <summary>
    /// Streams an upload into a temporary file, verifying size and checksum as it arrives,
    /// then fsyncs and renames it into place (see <see cref="ChunkFileWriter"/>). On any
    /// failure the temporary file is removed and nothing is indexed. An identical chunk already
    /// here is accepted (idempotent). Frames are written in batches of up to
    /// <see cref="WriteBatchBytes"/> (one pwritev each), so a producer must not reuse a frame's
    /// memory after yielding it.
    /// </summary>
    public async Task<StoredChunk> StoreAsync(ChunkId id, long size, ulong checksum, IAsyncEnumerable<ReadOnlyMemory<byte>> frames, CancellationToken ct)
    {
        await using var writer = await ReceiveAsync(id, size, checksum, frames, ct);
        return await writer.CompleteAsync(ct);
    }

    /// <summary>
    /// The receiving half of <see cref="StoreAsync"/>: the data is in a temporary file, not yet
    /// verified nor durable. The caller completes (or abandons) and disposes the writer.
    /// </summary>
    public async Task<ChunkFileWriter> ReceiveAsync(ChunkId id, long size, ulong checksum, IAsyncEnumerable<ReadOnlyMemory<byte>> frames, CancellationToken ct)
    {
        var writer = BeginStore(id, size, checksum);
        try
        {
            var batch = new List<ReadOnlyMemory<byte>>();
            var batchBytes = 0L;
            await foreach (var frame in frames.WithCancellation(ct))
            {
                if (writer.Received + batchBytes + frame.Length > size)
                    throw new ChunkRejectedException(StatusCode.InvalidArgument, $"chunk {id}: more data than the declared {size} bytes");
                if (frame.IsEmpty)
                    continue;
                batch.Add(frame);
                batchBytes += frame.Length;
                if (batchBytes >= WriteBatchBytes)
                {
                    writer.Append(batch);
                    batch.Clear();
                    batchBytes = 0;
                }
            }
            if (batchBytes > 0)
                writer.Append(batch);
            return writer;
        }
        catch
        {
            await writer.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts storing a chunk: validates the size and opens a temporary file (or, when an
    /// identical chunk is already here, a writer that discards the data and returns it).
    /// Dispose the writer without completing it to abandon the upload (the temp file goes).
    /// </summary>
    public ChunkFileWriter BeginStore(ChunkId id, long size, ulong checksum)
    {
        if (size <= 0 || size > MaxChunkSize)
            throw new ChunkRejectedException(StatusCode.InvalidArgument, $"chunk size {size} is outside 1..{MaxChunkSize}");
        if (_chunks.TryGetValue(id, out var existing))
        {
            if (existing.Size != size || existing.Header.Checksum != checksum)
                throw new ChunkRejectedException(StatusCode.AlreadyExists, $"chunk {id} exists here with different content");
            return ChunkFileWriter.ForExisting(this, existing);
        }
        var staged = ChunkFileWriter.UsesStagingFile(ChunkFileHeader.DataOffsetFor(size) + size) ? _staging.TryTake() : null;
        return ChunkFileWriter.Create(this, id, size, checksum, Path.Combine(TempDirectory, $"{id}.{Guid.NewGuid():n}"), staged);
    }

    /// <summary>
    /// Renames a complete, sealed upload (<paramref name="tempPath"/>, still open as
    /// <paramref name="file"/>) to its chunk path, then makes it durable with one fsync of the
    /// file, and indexes it. Rename first, then fsync — not fsync, rename, directory fsync: on a
    /// journaling filesystem (ext4, XFS, btrfs) the file's fsync commits the journal transaction
    /// holding the rename too, so one disk flush replaces two on every write's path. A crash
    /// between the two can leave a torn file under the chunk's name; it was never acknowledged
    /// nor committed, and its checksums (verified by every read and by the scrubber) expose it.
    /// A concurrent upload of the same id that won the rename is accepted if its content is the same.
    /// </summary>
    internal StoredChunk Publish(ChunkId id, ChunkFileHeader header, string tempPath, Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        var finalPath = PathFor(id);
        var dir = System.IO.Path.GetDirectoryName(finalPath)!;
        var newDir = !Directory.Exists(dir);
        if (newDir)
            Directory.CreateDirectory(dir);
        try
        {
            File.Move(tempPath, finalPath, overwrite: false);
        }
        catch (IOException) when (File.Exists(finalPath))
        {
            // A concurrent upload of the same id won the rename (it may not be indexed yet:
            // its file is complete, since the header is written before the rename). It may not
            // be durable yet either: this answer must not claim more than the disk holds.
            TryDelete(tempPath);
            if (!_chunks.TryGetValue(id, out var raced))
            {
                raced = Add(new StoredChunk(id, ReadHeader(finalPath), finalPath));
            }
            if (raced.Size != header.Size || raced.Header.Checksum != header.Checksum)
                throw new ChunkRejectedException(StatusCode.AlreadyExists, $"chunk {id} exists here with different content");
            using (var winner = File.OpenHandle(finalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                RandomAccess.FlushToDisk(winner);
            return raced;
        }
        RandomAccess.FlushToDisk(file);
        if (newDir)
        {
            DirectorySync.Fsync(dir);
            DirectorySync.Fsync(ChunksDirectory);
        }
        return Add(new StoredChunk(id, header, finalPath));
    }

    /// <summary>Reads data bytes of a chunk at <paramref name="offset"/> (relative to the data).</summary>
    public static async ValueTask<int> ReadAsync(Microsoft.Win32.SafeHandles.SafeFileHandle handle, StoredChunk chunk, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        var length = (int)Math.Min(buffer.Length, chunk.Size - offset);
        var done = 0;
        while (done < length)
        {
            var n = await RandomAccess.ReadAsync(handle, buffer.Slice(done, length - done), chunk.Header.DataOffset + offset + done, ct);
            if (n == 0)
                throw new IOException($"chunk file {chunk.Path} is shorter than its header says");
            done += n;
        }
        return done;
    }

    public static Microsoft.Win32.SafeHandles.SafeFileHandle OpenForRead(StoredChunk chunk) =>
        File.OpenHandle(chunk.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);

    /// <returns>false when the chunk is not here.</returns>
    public bool Delete(ChunkId id)
    {
        if (!_chunks.TryRemove(id, out var chunk))
            return false;
        Interlocked.Add(ref _usedBytes, -chunk.Size);
        TryDelete(chunk.Path);
        return true;
    }

    /// <returns>The indexed instance (an earlier one if the id was already indexed).</returns>
    private StoredChunk Add(StoredChunk chunk)
    {
        if (_chunks.TryAdd(chunk.Id, chunk))
            Interlocked.Add(ref _usedBytes, chunk.Size);
        return _chunks.GetValueOrDefault(chunk.Id, chunk);
    }

    internal void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException ex) { _logger.LogWarning(ex, "Could not delete {Path}", path); }
    }
}
