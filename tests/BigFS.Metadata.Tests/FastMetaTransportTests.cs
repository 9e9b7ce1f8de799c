using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BigFS.Protocol;
using BigFS.Protocol.FastMeta;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace BigFS.Metadata.Tests;

/// <summary>The fast metadata transport on its own: framing, dispatch to a service's handlers, errors, bad input.</summary>
public sealed class FastMetaTransportTests : IAsyncLifetime
{
    /// <summary>A Namespace service whose handlers show what reached them.</summary>
    private sealed class FakeNamespace : Namespace.NamespaceBase
    {
        public readonly TaskCompletionSource<StatusReply> NeverSynced = new();

        public override Task<AttrReply> GetAttr(InodeRequest request, ServerCallContext context) =>
            Task.FromResult(new AttrReply { Attr = new InodeAttr { Ino = request.Ino, Size = request.Ino * 2 } });

        // Replies later, from another thread, like a journaled change.
        public override async Task<StatusReply> Unlink(RemoveRequest request, ServerCallContext context)
        {
            await Task.Delay(1).ConfigureAwait(false);
            return new StatusReply { Errno = request.Name.Length };
        }

        public override Task<EntryReply> Lookup(LookupRequest request, ServerCallContext context) =>
            throw new RpcException(new Status(StatusCode.NotFound, "no such thing"));

        public override Task<StatFsReply> StatFs(StatFsRequest request, ServerCallContext context) =>
            throw new InvalidOperationException("broken on purpose");

        public readonly TaskCompletionSource SyncStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Task<StatusReply> Sync(SyncRequest request, ServerCallContext context)
        {
            SyncStarted.TrySetResult();
            return NeverSynced.Task;
        }
    }

    private readonly FakeNamespace _service = new();

    private sealed class NoCluster : Cluster.ClusterBase;
    private readonly List<string?> _sessions = [];
    private FastMetaListener _listener = null!;
    private IPEndPoint ListenerEndPoint => _listener.LocalEndPoint ?? throw new InvalidOperationException("the listener is not bound");
    private string _address = "";

    public Task InitializeAsync()
    {
        var dispatcher = new FastMetaDispatcher { OnSession = s => { lock (_sessions) _sessions.Add(s); } };
        Namespace.BindService(dispatcher, _service);
        _listener = FastMetaListener.Start("127.0.0.1:0", dispatcher, NullLogger.Instance);
        _address = $"127.0.0.1:{ListenerEndPoint!.Port}";
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _service.NeverSynced.TrySetResult(new StatusReply());
        await _listener.DisposeAsync();
    }

    private (Namespace.NamespaceClient Client, FastMetaCallInvoker Invoker) Client(string? session = "session-1")
    {
        var invoker = new FastMetaCallInvoker(new UnreachableInvoker(), _ => Task.FromResult<string?>(_address), () => session);
        invoker.UseAddress(_address);
        return (new Namespace.NamespaceClient(invoker), invoker);
    }

    /// <summary>The gRPC fallback of these tests: any call reaching it is a failure of the fast path.</summary>
    private sealed class UnreachableInvoker : CallInvoker
    {
        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            throw new InvalidOperationException($"{method.Name} fell back to gRPC");
        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();
        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();
        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
    }

    // ---- the frame header ----

    [Fact]
    public void A_header_round_trips()
    {
        var header = new MetaFrameHeader(9, StatusCode.NotFound, 32, 0x0102030405060708, 1234);
        var raw = new byte[MetaFrameHeader.Size];
        header.Encode(raw);
        Assert.Equal("BFSM"u8.ToArray(), raw[..4]);
        Assert.True(MetaFrameHeader.TryDecode(raw, out var decoded, out var error), error);
        Assert.Equal(header, decoded);
    }

    [Theory]
    [InlineData(0, "bad magic")]
    [InlineData(6, "unknown status")]
    [InlineData(7, "session length")]
    [InlineData(20, "reserved")]
    public void A_corrupt_header_is_refused_with_the_reason(int offset, string reason)
    {
        var raw = new byte[MetaFrameHeader.Size];
        new MetaFrameHeader(1, StatusCode.OK, 0, 1, 0).Encode(raw);
        raw[offset] = 0xEE;
        Assert.False(MetaFrameHeader.TryDecode(raw, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Oversized_and_truncated_headers_are_refused()
    {
        var raw = new byte[MetaFrameHeader.Size];
        new MetaFrameHeader(1, StatusCode.OK, 0, 1, 0).Encode(raw);
        BinaryPrimitives.WriteUInt32LittleEndian(raw.AsSpan(16), MetaFrameHeader.MaxPayloadBytes + 1);
        Assert.False(MetaFrameHeader.TryDecode(raw, out _, out var error));
        Assert.Contains("exceeds", error);
        Assert.False(MetaFrameHeader.TryDecode(raw.AsSpan(0, 10), out _, out error));
        Assert.Contains("24 bytes", error);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MetaFrameHeader(1, StatusCode.OK, 0, 1, MetaFrameHeader.MaxPayloadBytes + 1).Encode(raw));
    }

    [Fact]
    public void Every_unary_namespace_method_and_the_hot_cluster_ones_have_distinct_ids_and_streaming_has_none()
    {
        var all = MetaMethodIds.All.ToList();
        Assert.Equal(all.Count, all.Select(m => m.Id).Distinct().Count());
        Assert.True(MetaMethodIds.TryGetId("/bigfs.v1.Namespace/Rename", out _));
        Assert.True(MetaMethodIds.TryGetId("/bigfs.v1.Cluster/RegisterChunk", out _));
        Assert.False(MetaMethodIds.TryGetId("/bigfs.v1.Namespace/WatchChanges", out _));
        Assert.False(MetaMethodIds.TryGetId("/bigfs.v1.Cluster/ReportInventory", out _));
        // A waiting lock's cancellation must reach the server: only the non-waiting form is fast.
        Assert.False(MetaMethodIds.TryGetId("/bigfs.v1.Namespace/Lock", out _));
        Assert.True(MetaMethodIds.TryGetId("/bigfs.v1.Namespace/TryLock", out _));
        var dispatcher = new FastMetaDispatcher();
        Namespace.BindService(dispatcher, _service);
        Cluster.BindService(dispatcher, new NoCluster());
        Assert.Equal(all.Count, dispatcher.MethodCount);
    }

    // ---- calls through the generated client ----

    [Fact]
    public async Task Calls_reach_the_handlers_with_their_session_and_replies_match_their_requests()
    {
        var (ns, invoker) = Client();
        using var _ = invoker;
        var replies = await Task.WhenAll(Enumerable.Range(1, 300).Select(async i =>
            i % 2 == 0
                ? (await ns.GetAttrAsync(new InodeRequest { Ino = (ulong)i })).Attr.Size
                : (ulong)(await ns.UnlinkAsync(new RemoveRequest { Name = ByteString.CopyFrom(new byte[i]) })).Errno * 2));
        Assert.Equal(Enumerable.Range(1, 300).Select(i => (ulong)i * 2), replies);
        Assert.Equal(300, invoker.FastCalls);
        lock (_sessions)
            Assert.All(_sessions, s => Assert.Equal("session-1", s));
    }

    [Fact]
    public async Task A_reply_that_arrives_before_the_deadline_watch_is_set_up_completes_the_call()
    {
        // The deadline and cancellation watch is set up after the request is sent; a reply that
        // races it once made the call throw ObjectDisposedException (EIO from close in the mount).
        var (ns, invoker) = Client();
        using var _ = invoker;
        using var cts = new CancellationTokenSource();
        for (var round = 0; round < 5; round++)
        {
            var replies = await Task.WhenAll(Enumerable.Range(1, 500).Select(i => Task.Run(async () =>
                (await ns.GetAttrAsync(new InodeRequest { Ino = (ulong)i }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cts.Token)).Attr.Size)));
            Assert.Equal(Enumerable.Range(1, 500).Select(i => (ulong)i * 2), replies);
        }
    }

    [Fact]
    public async Task A_call_watch_released_while_it_is_being_set_up_neither_throws_nor_fires()
    {
        using var cts = new CancellationTokenSource();
        var abandoned = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var watch = new CallWatch();
            var reply = Task.Run(watch.Release);   // the reply, racing the set-up
            watch.Start(DateTime.UtcNow.AddSeconds(30), cts.Token, _ => Interlocked.Increment(ref abandoned));
            await reply;
        }
        cts.Cancel();
        Assert.Equal(0, abandoned);

        // Unreleased, it fires at the deadline; released first, a later start watches nothing.
        var fired = new TaskCompletionSource<StatusCode>();
        new CallWatch().Start(DateTime.UtcNow.AddMilliseconds(20), CancellationToken.None, s => fired.TrySetResult(s.StatusCode));
        Assert.Equal(StatusCode.DeadlineExceeded, await fired.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        var late = new CallWatch();
        late.Release();
        late.Start(DateTime.UtcNow, CancellationToken.None, _ => Interlocked.Increment(ref abandoned));
        Assert.Equal(0, abandoned);
    }

    [Fact]
    public void A_client_dials_the_unix_socket_only_where_its_path_exists()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bigfs-sock-{Guid.NewGuid():N}");
        Assert.Equal("10.0.0.1:7", MetaConnection.ChooseAddress("10.0.0.1:7", ""));
        Assert.Equal("10.0.0.1:7", MetaConnection.ChooseAddress("10.0.0.1:7", path));   // another host's path
        File.WriteAllText(path, "");
        try
        {
            Assert.Equal($"unix:{path};10.0.0.1:7", MetaConnection.ChooseAddress("10.0.0.1:7", path));
            Assert.Equal($"unix:{path}", MetaConnection.ChooseAddress("", path));
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Null(MetaConnection.ChooseAddress("", ""));
    }

    [Fact]
    public async Task Calls_go_over_the_unix_socket_and_a_dead_one_falls_through_to_tcp()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bigfs-{Guid.NewGuid():N}.sock");
        var dispatcher = new FastMetaDispatcher();
        Namespace.BindService(dispatcher, _service);
        await using (var unix = FastMetaListener.StartUnix(path, dispatcher, NullLogger.Instance))
        {
            using var viaUnix = new FastMetaCallInvoker(new UnreachableInvoker(), _ => Task.FromResult<string?>(null), () => null);
            viaUnix.UseAddress(MetaConnection.ChooseAddress(_address, path));
            Assert.Equal(4ul, (await new Namespace.NamespaceClient(viaUnix).GetAttrAsync(new InodeRequest { Ino = 2 })).Attr.Size);
            Assert.Equal("unix:" + path, viaUnix.ConnectedAddress);
        }
        Assert.False(File.Exists(path));   // a stopped listener removes its socket

        File.WriteAllText(path, "");        // a path that exists but where nobody listens
        try
        {
            using var fallsThrough = new FastMetaCallInvoker(new UnreachableInvoker(), _ => Task.FromResult<string?>(null), () => null);
            fallsThrough.UseAddress(MetaConnection.ChooseAddress(_address, path));
            Assert.Equal(6ul, (await new Namespace.NamespaceClient(fallsThrough).GetAttrAsync(new InodeRequest { Ino = 3 })).Attr.Size);
            Assert.Equal(_address, fallsThrough.ConnectedAddress);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_call_without_a_session_reaches_the_handler_without_one()
    {
        var (ns, invoker) = Client(session: null);
        using var _ = invoker;
        await ns.GetAttrAsync(new InodeRequest { Ino = 1 });
        lock (_sessions)
            Assert.Equal([null], _sessions);
    }

    [Fact]
    public async Task Handler_failures_arrive_as_the_status_grpc_would_give()
    {
        var (ns, invoker) = Client();
        using var _ = invoker;
        var notFound = await Assert.ThrowsAsync<RpcException>(async () => await ns.LookupAsync(new LookupRequest()));
        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
        Assert.Equal("no such thing", notFound.Status.Detail);
        var broken = await Assert.ThrowsAsync<RpcException>(async () => await ns.StatFsAsync(new StatFsRequest()));
        Assert.Equal(StatusCode.Unknown, broken.StatusCode);
        Assert.Contains("broken on purpose", broken.Status.Detail);
        // The connection is still good.
        Assert.Equal(14ul, (await ns.GetAttrAsync(new InodeRequest { Ino = 7 })).Attr.Size);
    }

    [Fact]
    public async Task Cancelled_and_timed_out_calls_fail_as_in_grpc_and_the_connection_goes_on()
    {
        var (ns, invoker) = Client();
        using var _ = invoker;
        using var cancel = new CancellationTokenSource();
        var pending = ns.SyncAsync(new SyncRequest(), cancellationToken: cancel.Token).ResponseAsync;
        cancel.Cancel();
        Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => pending)).StatusCode);
        var late = await Assert.ThrowsAsync<RpcException>(async () => await ns.SyncAsync(new SyncRequest(), deadline: DateTime.UtcNow.AddMilliseconds(50)));
        Assert.Equal(StatusCode.DeadlineExceeded, late.StatusCode);
        Assert.Equal(6ul, (await ns.GetAttrAsync(new InodeRequest { Ino = 3 })).Attr.Size);
    }

    [Fact]
    public async Task Calls_in_flight_fail_unavailable_when_the_server_stops()
    {
        var (ns, invoker) = Client();
        using var _ = invoker;
        await ns.GetAttrAsync(new InodeRequest { Ino = 1 });   // connected
        var pending = ns.SyncAsync(new SyncRequest()).ResponseAsync;
        await _listener.StopAsync(TimeSpan.FromMilliseconds(100));
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => pending)).StatusCode);
    }

    [Fact]
    public async Task A_stopping_server_answers_the_calls_it_accepted_and_says_it_runs_no_later_one()
    {
        using var socket = Raw();
        socket.Send(Frame(Id("Sync"), 7, new SyncRequest().ToByteArray()));
        await _service.SyncStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));   // accepted, and its handler waits

        var stopping = _listener.StopAsync(TimeSpan.FromSeconds(10));
        var goAway = Receive(socket)!.Value;
        Assert.Equal((MetaFrameHeader.GoAwayMethod, 7ul, 0), (goAway.Header.Method, goAway.Header.RequestId, goAway.Header.PayloadLength));
        socket.Send(Frame(Id("GetAttr"), 8, new InodeRequest { Ino = 1 }.ToByteArray()));   // after the go-away: never run
        _service.NeverSynced.TrySetResult(new StatusReply { Errno = 5 });

        var accepted = Receive(socket)!.Value;
        Assert.Equal((Id("Sync"), StatusCode.OK, 7ul), (accepted.Header.Method, accepted.Header.Status, accepted.Header.RequestId));
        Assert.Equal(5, StatusReply.Parser.ParseFrom(accepted.Payload).Errno);
        await stopping;
        Assert.Null(Receive(socket));   // closed without a word about request 8
    }

    [Fact]
    public async Task Under_load_every_call_at_a_graceful_stop_is_answered_or_known_never_run()
    {
        // Four stops, each with eight callers keeping calls in flight: a call that may or may
        // not have run would be an EIO for a mount; one known never run is simply repeated.
        for (var round = 0; round < 4; round++)
        {
            if (round > 0)
                await InitializeAsync();
            var (ns, invoker) = Client();
            using var _ = invoker;
            await ns.GetAttrAsync(new InodeRequest { Ino = 1 });   // connected
            var answered = 0;
            var ambiguous = new System.Collections.Concurrent.ConcurrentBag<string>();
            var callers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                while (true)
                {
                    try
                    {
                        await ns.UnlinkAsync(new RemoveRequest { Name = ByteString.CopyFromUtf8("x") });   // answered after a 1 ms wait
                        Interlocked.Increment(ref answered);
                    }
                    catch (RpcException ex)
                    {
                        if (!OutageRetryInterceptor.NeverSent(ex))
                            ambiguous.Add(ex.Status.Detail);
                        return;   // the server is gone: repeating is the interceptor's job
                    }
                }
            })).ToList();
            for (var deadline = DateTime.UtcNow.AddSeconds(10); Volatile.Read(ref answered) < 100; await Task.Delay(5))
                Assert.True(DateTime.UtcNow < deadline, "calls are not flowing");

            await _listener.StopAsync(TimeSpan.FromSeconds(10));
            await Task.WhenAll(callers);
            Assert.Empty(ambiguous);
        }
    }

    /// <summary>A hand-driven server for one client connection: the test reads its requests and writes its frames.</summary>
    private sealed class ScriptedPeer : IDisposable
    {
        private readonly Socket _listener;

        private ScriptedPeer(Socket listener, MetaConnection connection, Socket accepted) =>
            (_listener, Connection, Accepted) = (listener, connection, accepted);

        public MetaConnection Connection { get; }
        public Socket Accepted { get; }

        public static async Task<ScriptedPeer> StartAsync()
        {
            var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            listener.Listen();
            var connection = await MetaConnection.ConnectAsync($"127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndPoint!).Port}", TimeSpan.FromSeconds(5));
            var accepted = await listener.AcceptAsync();
            accepted.ReceiveTimeout = 10_000;
            return new ScriptedPeer(listener, connection, accepted);
        }

        public void Dispose()
        {
            Accepted.Dispose();
            Connection.Dispose();
            _listener.Dispose();
        }
    }

    private static readonly Marshaller<StatusReply> StatusReplies = Marshallers.Create<StatusReply>(m => m.ToByteArray(), StatusReply.Parser.ParseFrom);

    private static Task<StatusReply> Unlink(MetaConnection connection, string name) =>
        connection.CallAsync(Id("Unlink"), null, new RemoveRequest { Name = ByteString.CopyFromUtf8(name) }, StatusReplies, null, CancellationToken.None);

    /// <summary>Reads one whole request frame off a scripted peer's socket and returns its header.</summary>
    private static MetaFrameHeader ReceiveRequest(Socket accepted)
    {
        var raw = new byte[MetaFrameHeader.Size];
        Assert.True(ReceiveExactly(accepted, raw));
        Assert.True(MetaFrameHeader.TryDecode(raw, out var header, out var error), error);
        Assert.True(ReceiveExactly(accepted, new byte[header.SessionLength + header.PayloadLength]));
        return header;
    }

    [Fact]
    public async Task After_a_go_away_the_client_fails_the_later_calls_as_never_sent_and_starts_no_new_one()
    {
        // A server that takes two calls, then goes away having accepted only the first.
        using var peer = await ScriptedPeer.StartAsync();
        var (connection, accepted) = (peer.Connection, peer.Accepted);
        var first = Unlink(connection, "a");
        var second = Unlink(connection, "b");
        var ids = new List<ulong>();
        for (var i = 0; i < 2; i++)
            ids.Add(ReceiveRequest(accepted).RequestId);
        Assert.Equal([1ul, 2ul], ids);   // sent in id order

        var goAway = new byte[MetaFrameHeader.Size];
        new MetaFrameHeader(MetaFrameHeader.GoAwayMethod, StatusCode.OK, 0, 1, 0).Encode(goAway);
        accepted.Send(goAway);
        var refused = await Assert.ThrowsAsync<RpcException>(() => second);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.True(OutageRetryInterceptor.NeverSent(refused));
        Assert.False(connection.IsAlive);
        var late = await Assert.ThrowsAsync<RpcException>(() =>
            Unlink(connection, "c"));
        Assert.True(OutageRetryInterceptor.NeverSent(late));

        accepted.Send(Frame(Id("Unlink"), 1, new StatusReply { Errno = 1 }.ToByteArray()));
        Assert.Equal(1, (await first).Errno);   // the accepted call is still answered
    }

    [Fact]
    public async Task A_retired_connection_still_gets_the_replies_it_is_owed_then_closes()
    {
        using var peer = await ScriptedPeer.StartAsync();
        var (connection, accepted) = (peer.Connection, peer.Accepted);
        var owed = Unlink(connection, "a");
        var header = ReceiveRequest(accepted);

        connection.Retire();   // replaced by a new connection, as after a go-away
        Assert.False(connection.IsAlive);
        Assert.True(OutageRetryInterceptor.NeverSent(await Assert.ThrowsAsync<RpcException>(() =>
            Unlink(connection, "b"))));
        accepted.Send(Frame(Id("Unlink"), header.RequestId, new StatusReply { Errno = 7 }.ToByteArray()));
        Assert.Equal(7, (await owed).Errno);
        Assert.Equal(0, accepted.Receive(new byte[1]));   // then the client closed it
    }

    [Fact]
    public async Task A_call_whose_frame_could_not_be_written_fails_as_never_sent()
    {
        // The server closed (after a go-away the client has not read yet, say): a send fails
        // with EPIPE, or the receiving thread sees the end first. Either way nothing ran.
        for (var round = 0; round < 20; round++)
        {
            var path = Path.Combine(Path.GetTempPath(), $"bigfs-fast-{Guid.NewGuid():n}.sock");
            using var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            server.Bind(new UnixDomainSocketEndPoint(path));
            server.Listen();
            try
            {
                using var connection = await MetaConnection.ConnectAsync(MetaConnection.UnixPrefix + path, TimeSpan.FromSeconds(5));
                (await server.AcceptAsync()).Dispose();
                var failed = await Assert.ThrowsAsync<RpcException>(() => Unlink(connection, "a"));
                Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
                Assert.True(OutageRetryInterceptor.NeverSent(failed), failed.Status.Detail);
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    [Fact]
    public async Task After_a_go_away_calls_wait_for_the_fast_listener_and_never_fall_back_to_grpc()
    {
        // The server's gRPC endpoint is stopping too: a call there could fail after it ran.
        var port = ListenerEndPoint.Port;
        var (ns, invoker) = Client();   // its gRPC fallback throws if used
        using var _ = invoker;
        await ns.GetAttrAsync(new InodeRequest { Ino = 1 });
        await _listener.StopAsync(TimeSpan.FromSeconds(5));
        for (var deadline = DateTime.UtcNow.AddSeconds(10); invoker.ConnectedAddress is not null; await Task.Delay(5))
            Assert.True(DateTime.UtcNow < deadline, "the go-away was not read");

        for (var i = 0; i < 3; i++)
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => ns.GetAttrAsync(new InodeRequest { Ino = 2 }).ResponseAsync);
            Assert.True(OutageRetryInterceptor.NeverSent(refused), refused.Status.Detail);
        }
        Assert.Equal(0, invoker.FallbackCalls);

        var dispatcher = new FastMetaDispatcher();
        Namespace.BindService(dispatcher, _service);
        _listener = FastMetaListener.Start($"127.0.0.1:{port}", dispatcher, NullLogger.Instance);   // back
        AttrReply? reply = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(10); reply is null; await Task.Delay(50))
        {
            try
            {
                reply = await ns.GetAttrAsync(new InodeRequest { Ino = 3 });
            }
            catch (RpcException ex) when (OutageRetryInterceptor.NeverSent(ex) && DateTime.UtcNow < deadline)
            {
                // What the outage retry does: wait, then again.
            }
        }
        Assert.Equal(6ul, reply.Attr.Size);
        Assert.Equal(0, invoker.FallbackCalls);
    }

    [Fact]
    public async Task A_stopped_listener_frees_its_port_at_once()
    {
        var port = ListenerEndPoint.Port;
        var (ns, invoker) = Client();
        using var _ = invoker;
        await ns.GetAttrAsync(new InodeRequest { Ino = 1 });
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await _listener.StopAsync(TimeSpan.FromSeconds(1));
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(4), $"stop took {stopping.Elapsed}");   // not the accept thread's join timeout
        var dispatcher = new FastMetaDispatcher();
        Namespace.BindService(dispatcher, _service);
        _listener = FastMetaListener.Start($"127.0.0.1:{port}", dispatcher, NullLogger.Instance);
        Assert.Equal(port, ListenerEndPoint.Port);
    }

    // ---- bad input on a raw connection ----

    private Socket Raw()
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
        socket.Connect(ListenerEndPoint);
        return socket;
    }

    private static byte[] Frame(ushort method, ulong id, byte[] payload, int? declaredLength = null)
    {
        var frame = new byte[MetaFrameHeader.Size + payload.Length];
        new MetaFrameHeader(method, StatusCode.OK, 0, id, payload.Length).Encode(frame);
        if (declaredLength is { } length)
            BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(16), (uint)length);
        payload.CopyTo(frame, MetaFrameHeader.Size);
        return frame;
    }

    /// <summary>The next reply frame, or null when the server closed the connection.</summary>
    private static (MetaFrameHeader Header, byte[] Payload)? Receive(Socket socket)
    {
        var raw = new byte[MetaFrameHeader.Size];
        if (!ReceiveExactly(socket, raw)) return null;
        Assert.True(MetaFrameHeader.TryDecode(raw, out var header, out var error), error);
        var payload = new byte[header.PayloadLength];
        Assert.True(ReceiveExactly(socket, payload));
        return (header, payload);
    }

    private static bool ReceiveExactly(Socket socket, Span<byte> into)
    {
        while (into.Length > 0)
        {
            var n = socket.Receive(into);
            if (n == 0) return false;
            into = into[n..];
        }
        return true;
    }

    private static ushort Id(string name) => MetaMethodIds.TryGetId("/bigfs.v1.Namespace/" + name, out var id) ? id : throw new ArgumentException(name);

    [Fact]
    public void An_unknown_method_or_an_undecodable_request_gets_an_error_and_the_connection_stays_usable()
    {
        using var socket = Raw();
        socket.Send(Frame(999, 1, [1, 2, 3]));
        var unknown = Receive(socket)!.Value;
        Assert.Equal((StatusCode.Unimplemented, 1ul), (unknown.Header.Status, unknown.Header.RequestId));
        Assert.Contains("unknown method 999", Encoding.UTF8.GetString(unknown.Payload));

        socket.Send(Frame(Id("GetAttr"), 2, [0xFF, 0xFF, 0xFF]));
        var garbage = Receive(socket)!.Value;
        Assert.Equal((StatusCode.InvalidArgument, 2ul), (garbage.Header.Status, garbage.Header.RequestId));

        socket.Send(Frame(Id("GetAttr"), 3, new InodeRequest { Ino = 21 }.ToByteArray()));
        var good = Receive(socket)!.Value;
        Assert.Equal((StatusCode.OK, 3ul), (good.Header.Status, good.Header.RequestId));
        Assert.Equal(42ul, AttrReply.Parser.ParseFrom(good.Payload).Attr.Size);
    }

    [Fact]
    public void An_oversized_or_corrupt_frame_gets_an_error_and_the_connection_is_closed()
    {
        using (var socket = Raw())
        {
            socket.Send(Frame(Id("GetAttr"), 5, [], declaredLength: MetaFrameHeader.MaxPayloadBytes + 1));
            var reply = Receive(socket)!.Value;
            Assert.Equal((StatusCode.InvalidArgument, 5ul), (reply.Header.Status, reply.Header.RequestId));
            Assert.Contains("exceeds", Encoding.UTF8.GetString(reply.Payload));
            Assert.Null(Receive(socket));
        }
        using (var socket = Raw())
        {
            socket.Send(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            var reply = Receive(socket)!.Value;
            Assert.Contains("bad magic", Encoding.UTF8.GetString(reply.Payload));
            Assert.Null(Receive(socket));
        }
    }

    [Fact]
    public async Task A_truncated_frame_ends_only_its_own_connection()
    {
        using (var socket = Raw())
        {
            var frame = Frame(Id("GetAttr"), 1, new InodeRequest { Ino = 1 }.ToByteArray());
            socket.Send(frame.AsSpan(0, frame.Length - 1));
            socket.Shutdown(SocketShutdown.Send);
            Assert.Null(Receive(socket));
        }
        var (ns, invoker) = Client();
        using var _ = invoker;
        Assert.Equal(4ul, (await ns.GetAttrAsync(new InodeRequest { Ino = 2 })).Attr.Size);
    }
}
