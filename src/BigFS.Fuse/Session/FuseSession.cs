using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using BigFS.Fuse.Native;
using BigFS.Fuse.Protocol;
using Microsoft.Extensions.Logging;

namespace BigFS.Fuse.Session;

/// <summary>
/// Serves one FUSE connection: answers INIT, then runs reader threads (added on demand) on the fd. Each
/// request is dispatched inline; handlers that go asynchronous reply later from their own thread
/// while the reader goes back to read(2) with a fresh buffer. Ends when read(2) reports ENODEV.
/// </summary>
internal sealed class FuseSession : IFuseNotifier, IDisposable
{
    private static readonly int MaxHeaders = 64 * 1024; // in_header + write_in + slack, and PayloadOffset
    private static readonly TimeSpan KillCheckInterval = TimeSpan.FromMilliseconds(500);
    private readonly FuseChannel _channel;
    private readonly IFuseFileSystem _fs;
    private readonly FuseMountOptions _options;
    private readonly ILogger _logger;
    private readonly FuseRequestPool _pool;
    private readonly FuseDispatcher _dispatcher;
    private readonly ConcurrentDictionary<ulong, FuseRequest> _inFlight = new();
    private readonly TaskCompletionSource<FuseConnectionInfo> _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _runningReaders;
    private int _idleReaders;
    private int _stopping;
    private Exception? _failure;

    public FuseSession(int fd, IFuseFileSystem fs, FuseMountOptions options, ILogger logger)
    {
        _channel = new FuseChannel(fd);
        _fs = fs;
        _options = options;
        _logger = logger;
        Lookups = new LookupCounter();
        _pool = new FuseRequestPool(_channel, (int)options.MaxWrite + MaxHeaders, retain: options.ReaderThreads * 2 + 4);
        _dispatcher = new FuseDispatcher(fs, options, Lookups, logger);
    }

    public LookupCounter Lookups { get; }
    public Task<FuseConnectionInfo> Initialized => _initialized.Task;
    /// <summary>Completes when every reader thread has ended (unmount), faults on a fatal error.</summary>
    public Task Completion => _completed.Task;

    public void Start()
    {
        Interlocked.Increment(ref _runningReaders);
        StartThread(InitThenServe, 0);
    }

    private void StartThread(Action body, int index)
    {
        var thread = new Thread(() => body()) { IsBackground = true, Name = $"fuse-reader-{index}" };
        thread.Start();
    }

    private void InitThenServe()
    {
        try
        {
            if (!HandleInit()) return;
            ServeLoop();
        }
        finally
        {
            ReaderEnded();
        }
    }

    /// <summary>Reads and answers INIT; nothing else is read before it is answered.</summary>
    private bool HandleInit()
    {
        var req = _pool.Rent();
        try
        {
            while (true)
            {
                int n = _channel.Read(req.Buffer);
                if (n == -LibC.EINTR || n == -LibC.EAGAIN) continue;
                if (n < 0) { Fail(new IOException($"reading INIT failed: {LibC.StrError(-n)}")); return false; }
                if (!req.Begin(n) || req.Opcode != FuseOpcode.Init) { Fail(new IOException($"expected INIT, got opcode {req.Header.Opcode}")); return false; }
                var r = req.Reader();
                var initIn = r.Read<FuseInitIn>();
                var result = FuseInitNegotiation.Negotiate(initIn, new FuseInitRequest
                {
                    MaxWrite = _options.MaxWrite,
                    MaxBackground = _options.MaxBackground,
                    PosixLocks = _options.PosixLocks,
                    FlockLocks = _options.FlockLocks,
                    WritebackCache = _options.WritebackCache,
                    AutoInvalData = _options.AutoInvalData,
                    HandleKillprivV2 = _options.HandleKillprivV2,
                    PosixAcl = _options.PosixAcl,
                });
                if (result.Errno != 0)
                {
                    req.ReplyError(result.Errno);
                    Fail(new IOException($"kernel FUSE protocol {initIn.Major}.{initIn.Minor} is not supported (need 7.{FuseInitNegotiation.MinimumMinor}+)"));
                    return false;
                }
                if (result.MaxWrite == 0)
                {
                    // Kernel speaks a newer major: answer with ours and wait for the retry.
                    req.ReplyStruct(result.Reply);
                    req.Reset();
                    continue;
                }
                _dispatcher.Flags = result.Flags;
                var info = new FuseConnectionInfo(FuseInitNegotiation.KernelMajor, result.Reply.Minor, result.MaxWrite, result.MaxReadahead, result.Flags, this);
                try
                {
                    _fs.Init(info);
                }
                catch (Exception e)
                {
                    req.ReplyError(LinuxErrno.EIO);
                    Fail(new IOException($"filesystem Init failed: {e.Message}", e));
                    return false;
                }
                int err = req.ReplyStruct(result.Reply);
                if (err != 0) { Fail(new IOException($"INIT reply failed: {LibC.StrError(err)}")); return false; }
                _logger.LogInformation("FUSE connection up: kernel 7.{KernelMinor}, using 7.{Minor}, max_write {MaxWrite}, flags {Flags}",
                    result.KernelMinor, result.Reply.Minor, result.MaxWrite, result.Flags);
                _initialized.TrySetResult(info);
                return true;
            }
        }
        finally
        {
            _pool.Return(req);
        }
    }

    private void ServeLoop()
    {
        // A reader keeps reusing its own request (and its cache-warm buffer) while handlers
        // complete synchronously; it takes a fresh one from the pool only when one goes async.
        FuseRequest? req = null;
        while (Volatile.Read(ref _stopping) == 0)
        {
            req ??= _pool.Rent();
            Interlocked.Increment(ref _idleReaders);
            int n = _channel.Read(req.Buffer);
            if (Interlocked.Decrement(ref _idleReaders) == 0 && n > 0) MaybeAddReader();
            if (n < 0)
            {
                int errno = -n;
                if (errno is LibC.EINTR or LibC.EAGAIN or LibC.ENOENT) continue; // ENOENT: request interrupted before we read it
                _pool.Return(req);
                if (errno == LibC.ENODEV) return; // unmounted
                Fail(new IOException($"read(/dev/fuse) failed: {LibC.StrError(errno)}"));
                return;
            }
            if (!req.Begin(n))
            {
                _logger.LogWarning("Dropping malformed request of {Length} bytes", n);
                continue;
            }
            if (!Process(req)) req = null;
        }
        if (req is not null) _pool.Return(req);
    }

    /// <summary>
    /// Readers grow on demand, like libfuse's worker pool: when the last idle reader takes a
    /// request, another one starts (up to ReaderThreads), so a sequential workload keeps reusing
    /// one or two cache-warm threads while a parallel one gets as many as it needs.
    /// </summary>
    private void MaybeAddReader()
    {
        int running;
        do
        {
            running = Volatile.Read(ref _runningReaders);
            if (running >= _options.ReaderThreads || running == 0 || Volatile.Read(ref _stopping) != 0) return;
        }
        while (Interlocked.CompareExchange(ref _runningReaders, running + 1, running) != running);
        StartThread(() => { try { ServeLoop(); } finally { ReaderEnded(); } }, running);
    }

    /// <summary>Handles a request; true when it finished synchronously and the caller may reuse it.</summary>
    private bool Process(FuseRequest req)
    {
        if (req.Opcode == FuseOpcode.Interrupt)
        {
            HandleInterrupt(req);
            req.Reset();
            return true;
        }
        _inFlight[req.Unique] = req;
        ValueTask handled;
        try
        {
            handled = _dispatcher.HandleAsync(req);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Dispatch of {Opcode} failed", req.Opcode);
            handled = default;
        }
        if (handled.IsCompletedSuccessfully)
        {
            _inFlight.TryRemove(new KeyValuePair<ulong, FuseRequest>(req.Unique, req));
            req.Reset();
            return true;
        }
        _ = FinishLaterAsync(handled, req);
        return false;
    }

    private async Task FinishLaterAsync(ValueTask handled, FuseRequest req)
    {
        try { await handled.ConfigureAwait(false); }
        catch (Exception e) { _logger.LogError(e, "Handling {Opcode} failed", req.Opcode); }
        Finish(req);
    }

    private void Finish(FuseRequest req)
    {
        _inFlight.TryRemove(new KeyValuePair<ulong, FuseRequest>(req.Unique, req));
        _pool.Return(req);
    }

    private void HandleInterrupt(FuseRequest req)
    {
        var r = req.Reader();
        ulong target = r.Read<FuseInterruptIn>().Unique;
        if (_inFlight.TryGetValue(target, out var victim) && victim.Unique == target)
        {
            if (_options.InterruptibleRequests is { } interruptible && !interruptible.Contains(victim.Opcode))
            {
                // It finishes as it would have (no reply to the INTERRUPT), unless its process is
                // being killed: nobody will see the result, and the kill must not wait for it.
                _ = CancelIfKilledAsync(victim, target);
                return;
            }
            _logger.LogDebug("Interrupting request {Unique} ({Opcode})", target, victim.Opcode);
            victim.Cancel();
        }
        else
        {
            // Not seen yet (another reader holds it) or already answered: EAGAIN makes the kernel
            // requeue the interrupt if the request is still pending, and is ignored otherwise.
            req.ReplyError(LinuxErrno.EAGAIN);
        }
    }

    /// <summary>
    /// Cancels a request not otherwise interruptible once its thread has a fatal signal pending:
    /// checked now, and then every <see cref="KillCheckInterval"/> while the request lasts, since
    /// a kill after the first signal brings no second INTERRUPT.
    /// </summary>
    private async Task CancelIfKilledAsync(FuseRequest victim, ulong unique)
    {
        var (tid, opcode) = (victim.Header.Pid, victim.Opcode);
        while (victim.IsPending(unique))
        {
            // Checked again after the read of /proc: the request may have ended, and its pooled object carry another.
            if (FatalSignal.IsPending(tid) && victim.IsPending(unique))
            {
                _logger.LogDebug("Request {Unique} ({Opcode}): its process {Pid} is being killed; cancelling it", unique, opcode, tid);
                victim.Cancel();
                return;
            }
            await Task.Delay(KillCheckInterval);
        }
    }

    /// <summary>FUSE_NOTIFY_INVAL_INODE: drop cached data of [offset, offset+length) (length 0 = to EOF; offset −1 = attributes only).</summary>
    public int InvalidateInode(ulong ino, long offset = 0, long length = 0)
    {
        Span<byte> message = stackalloc byte[FuseReplyEncoder.OutHeaderSize + Marshal.SizeOf<FuseNotifyInvalInodeOut>()];
        FuseReplyEncoder.EncodeNotifyHeader(message, FuseNotifyCode.InvalInode, Marshal.SizeOf<FuseNotifyInvalInodeOut>());
        MemoryMarshal.Write(message[FuseReplyEncoder.OutHeaderSize..], new FuseNotifyInvalInodeOut { Ino = ino, Off = offset, Len = length });
        return _channel.Send(message, default);
    }

    /// <summary>FUSE_NOTIFY_INVAL_ENTRY: forget the cached name <paramref name="name"/> in <paramref name="parent"/>.</summary>
    public int InvalidateEntry(ulong parent, string name)
    {
        var nameBytes = FileNameEncoding.GetBytes(name);
        int headerLength = FuseReplyEncoder.OutHeaderSize + Marshal.SizeOf<FuseNotifyInvalEntryOut>();
        Span<byte> header = stackalloc byte[headerLength];
        FuseReplyEncoder.EncodeNotifyHeader(header, FuseNotifyCode.InvalEntry, Marshal.SizeOf<FuseNotifyInvalEntryOut>() + nameBytes.Length + 1);
        MemoryMarshal.Write(header[FuseReplyEncoder.OutHeaderSize..], new FuseNotifyInvalEntryOut { Parent = parent, NameLen = (uint)nameBytes.Length });
        var payload = new byte[nameBytes.Length + 1];
        nameBytes.CopyTo(payload, 0);
        return _channel.Send(header, payload);
    }

    /// <summary>FUSE_NOTIFY_STORE: <paramref name="data"/> into the page cache of <paramref name="ino"/> at <paramref name="offset"/>.</summary>
    public int Store(ulong ino, long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || data.IsEmpty) return LinuxErrno.EINVAL;
        int headerLength = FuseReplyEncoder.OutHeaderSize + Marshal.SizeOf<FuseNotifyStoreOut>();
        Span<byte> header = stackalloc byte[headerLength];
        FuseReplyEncoder.EncodeNotifyHeader(header, FuseNotifyCode.Store, Marshal.SizeOf<FuseNotifyStoreOut>() + data.Length);
        MemoryMarshal.Write(header[FuseReplyEncoder.OutHeaderSize..], new FuseNotifyStoreOut { NodeId = ino, Offset = (ulong)offset, Size = (uint)data.Length });
        return _channel.Send(header, data);
    }

    private void Fail(Exception e)
    {
        _failure ??= e;
        _logger.LogError("FUSE session failed: {Error}", e.Message);
        _initialized.TrySetException(e);
        Volatile.Write(ref _stopping, 1);
    }

    private void ReaderEnded()
    {
        if (Interlocked.Decrement(ref _runningReaders) != 0) return;
        _initialized.TrySetException(new IOException("FUSE session ended before INIT"));
        if (_failure is null) _completed.TrySetResult();
        else _completed.TrySetException(_failure);
    }

    public void Dispose() => _channel.Dispose();
}
