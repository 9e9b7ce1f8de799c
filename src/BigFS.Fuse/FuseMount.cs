using BigFS.Fuse.Mounting;
using BigFS.Fuse.Session;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Fuse;

/// <summary>A mounted filesystem being served. Dispose (or UnmountAsync) to take it down.</summary>
public sealed class FuseMount : IFuseNotifier, IAsyncDisposable
{
    private readonly FuseSession _session;
    private readonly FuseMountOptions _options;
    private readonly ILogger _logger;
    private int _unmounted;

    private FuseMount(string mountPoint, FuseSession session, FuseMountOptions options, FuseConnectionInfo connection, ILogger logger)
    {
        MountPoint = mountPoint;
        _session = session;
        _options = options;
        Connection = connection;
        _logger = logger;
        Completion = WatchAsync();
    }

    public string MountPoint { get; }
    /// <summary>What INIT negotiated.</summary>
    public FuseConnectionInfo Connection { get; }
    /// <summary>Completes when the kernel ends the connection (unmount, including by someone else);
    /// faults if the session failed.</summary>
    public Task Completion { get; }

    /// <summary>
    /// Mounts <paramref name="fs"/> at <paramref name="mountPoint"/> and serves it on background
    /// threads. Returns once INIT has been answered. A stale mount of a crashed daemon at the same
    /// place is detached first.
    /// </summary>
    public static async Task<FuseMount> MountAsync(string mountPoint, IFuseFileSystem fs, FuseMountOptions? options = null,
        ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        options ??= new FuseMountOptions();
        if (options.ReaderThreads < 1) throw new ArgumentOutOfRangeException(nameof(options), "ReaderThreads must be at least 1");
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("BigFS.Fuse");
        mountPoint = Path.GetFullPath(mountPoint).TrimEnd('/');
        if (mountPoint.Length == 0) mountPoint = "/";

        int fd = FuseMounter.Mount(mountPoint, options, logger);
        var session = new FuseSession(fd, fs, options, logger);
        session.Start();
        FuseConnectionInfo connection;
        try
        {
            connection = await session.Initialized.WaitAsync(options.InitTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            TryUnmount(mountPoint, options, logger);
            await session.Completion.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            session.Dispose();
            throw;
        }
        FuseMounter.SetReadAhead(mountPoint, options.ReadAheadKb, logger);
        logger.LogInformation("Mounted {FsName} at {MountPoint}", options.FsName, mountPoint);
        return new FuseMount(mountPoint, session, options, connection, logger);
    }

    private async Task WatchAsync()
    {
        try { await _session.Completion.ConfigureAwait(false); }
        finally { _session.Dispose(); }
    }

    /// <summary>
    /// Unmounts and waits until the session has ended. A mount with open files is detached
    /// lazily (it disappears from the namespace at once; the session ends when the last file is
    /// closed), so this may wait up to <paramref name="timeout"/> (default 10 s) and then returns
    /// without waiting further.
    /// </summary>
    public async Task UnmountAsync(TimeSpan? timeout = null)
    {
        if (Interlocked.Exchange(ref _unmounted, 1) == 0) TryUnmount(MountPoint, _options, _logger);
        try
        {
            await Completion.WaitAsync(timeout ?? TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _logger.LogWarning("FUSE session at {MountPoint} still busy after unmount (files open)", MountPoint);
        }
    }

    private static void TryUnmount(string mountPoint, FuseMountOptions options, ILogger logger)
    {
        try
        {
            FuseMounter.Unmount(mountPoint, options.UseFusermount ?? !FuseMounter.IsRoot, logger);
        }
        catch (IOException e)
        {
            logger.LogError("Unmounting {MountPoint} failed: {Error}", mountPoint, e.Message);
        }
    }

    /// <inheritdoc />
    public int InvalidateInode(ulong ino, long offset = 0, long length = 0) => _session.InvalidateInode(ino, offset, length);

    /// <inheritdoc />
    public int InvalidateEntry(ulong parent, string name) => _session.InvalidateEntry(parent, name);

    /// <inheritdoc />
    public int Store(ulong ino, long offset, ReadOnlySpan<byte> data) => _session.Store(ino, offset, data);

    /// <summary>How many references the kernel holds on a node (0 = it may be dropped).</summary>
    public ulong LookupCount(ulong ino) => _session.Lookups.Get(ino);

    public async ValueTask DisposeAsync() => await UnmountAsync().ConfigureAwait(false);
}
