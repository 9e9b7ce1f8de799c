using BigFS.Client;
using BigFS.Fuse;
using BigFS.Fuse.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Mount;

/// <summary>
/// A live BigFS mount: a cluster client, a metadata session and a FUSE session serving the
/// kernel. Stopping flushes every open file's dirty data, then unmounts.
/// </summary>
public sealed class BigFsMount : IAsyncDisposable
{
    private readonly BigFsClient _client;
    private readonly MountSession _session;
    private readonly ChangeWatch? _watch;
    private readonly BigFsFileSystem _fs;
    private readonly FuseMount _fuse;
    private readonly ILogger _logger;
    private int _stopped;

    private BigFsMount(BigFsClient client, MountSession session, ChangeWatch? watch, BigFsFileSystem fs, FuseMount fuse, ILogger logger)
    {
        _client = client;
        _session = session;
        _watch = watch;
        _fs = fs;
        _fuse = fuse;
        _logger = logger;
    }

    public string MountPoint => _fuse.MountPoint;

    /// <summary>Completes when the kernel ends the session (an unmount, from us or from `umount`).</summary>
    public Task Completion => _fuse.Completion;

    public static async Task<BigFsMount> StartAsync(BigFsMountOptions options, ILoggerFactory? loggerFactory = null, CancellationToken ct = default)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        var logger = loggerFactory.CreateLogger("BigFS.Mount");
        if (string.IsNullOrEmpty(options.MountPoint))
            throw new ArgumentException("a mount point is required", nameof(options));
        var client = await BigFsClient.ConnectAsync(options.MetadataAddress, options.ToClientOptions(), loggerFactory, ct);
        MountSession? session = null;
        ChangeWatch? watch = null;
        try
        {
            session = await MountSession.OpenAsync(client, Path.GetFullPath(options.MountPoint), logger, ct);
            var cache = new LookupCache(options.LookupCacheEntries, options.LookupCacheMaxAge, TimeProvider.System);
            var fs = new BigFsFileSystem(client, session, cache, options, logger);
            if (options.LookupCacheEntries > 0)
                watch = new ChangeWatch(client.Namespace, session, cache, logger, fs.OnOtherSessionsChange);
            session.OpenInodes = fs.OpenFiles.Snapshot;
            session.ReclaimLocks = fs.ReclaimLocksAsync;
            var fuse = await FuseMount.MountAsync(Path.GetFullPath(options.MountPoint), fs, new FuseMountOptions
            {
                FsName = "bigfs:" + options.MetadataAddress.Replace("http://", ""),
                Subtype = "bigfs",
                AllowOther = options.AllowOther,
                DefaultPermissions = true,
                ReadOnly = options.ReadOnly,
                EntryTimeout = options.EntryTimeout,
                AttrTimeout = options.AttrTimeout,
                // fcntl and flock locks go to the metadata server: they exclude processes on every
                // mount. Local locks are the kernel's own (nothing negotiated).
                PosixLocks = !options.LocalLocks,
                FlockLocks = !options.LocalLocks,
                // Only a lock wait ends on a signal (EINTR, as fcntl(F_SETLKW) and flock do). Other
                // calls finish, waiting out a metadata outage if need be, as on an NFS hard mount:
                // any signal interrupts a FUSE request, the .NET runtime's and SIGCHLD included.
                InterruptibleRequests = new HashSet<FuseOpcode> { FuseOpcode.SetLkW },
                // ACLs (stored by the metadata server) are checked by the kernel like the mode.
                PosixAcl = true,
                // Pages of a file this mount wrote stay cached across its commit (whose mtime, set
                // by the server, never equals the one the kernel set locally). Other mounts' changes
                // drop them: at the next open (close-to-open), and at once for files open here
                // when the change feed tells of them.
                AutoInvalData = false,
                // Set-id bits and security.capability go on write, truncate and chown here
                // (BigFsFileSystem.DropSetIdBits, DropCapability), so the kernel need not ask for
                // security.capability before every write: one FUSE round trip less per write.
                HandleKillprivV2 = true,
            }, loggerFactory, ct);
            logger.LogInformation("Mounted BigFS at {MountPoint} (metadata server {Meta}, session {Session})", options.MountPoint, options.MetadataAddress, session.Id);
            return new BigFsMount(client, session, watch, fs, fuse, logger);
        }
        catch
        {
            if (watch is not null) await watch.DisposeAsync();
            if (session is not null) await session.DisposeAsync();
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Flushes dirty data of every open file, then unmounts and ends the session.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        foreach (var open in _fs.OpenFiles.All())
        {
            try
            {
                await open.File.FlushAsync();
            }
            catch (Exception e) when (e is BigFsException or Grpc.Core.RpcException)
            {
                _logger.LogError("Inode {Ino}: dirty data could not be committed before unmount: {Reason}", open.File.Ino, e.Message);
            }
        }
        await _fuse.UnmountAsync();
        _fs.PageCache?.Dispose();
        _fs.Invalidator?.Dispose();
        if (_watch is not null) await _watch.DisposeAsync();
        await _session.DisposeAsync();
        await _client.DisposeAsync();
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
