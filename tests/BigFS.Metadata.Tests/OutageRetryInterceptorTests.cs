using System.Net.Sockets;
using BigFS.Protocol;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace BigFS.Metadata.Tests;

/// <summary>Which calls wait out an unreachable metadata server, and for how long.</summary>
public class OutageRetryInterceptorTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(30);

    private static RpcException Refused() => new(new Status(StatusCode.Unavailable, "Error connecting to subchannel.",
        new HttpRequestException("Connection refused", new SocketException((int)SocketError.ConnectionRefused))));

    private static RpcException NotSent() => new(new Status(StatusCode.Unavailable, "connection lost",
        new RequestNotSentException("connection lost")));

    private static RpcException LostInFlight() => new(new Status(StatusCode.Unavailable, "metadata connection lost: reset by peer"));

    [Fact]
    public async Task A_change_the_server_never_received_is_sent_again_once_it_is_back()
    {
        var inner = new ScriptedInvoker(Refused(), NotSent(), Refused());
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(Window)));
        var reply = await ns.UnlinkAsync(new RemoveRequest { Parent = 1 });
        Assert.Equal(0, reply.Errno);
        Assert.Equal(4, inner.Calls);
    }

    [Fact]
    public async Task A_change_lost_in_flight_may_have_been_made_so_it_fails_at_once()
    {
        var inner = new ScriptedInvoker(LostInFlight());
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(Window)));
        var error = await Assert.ThrowsAsync<RpcException>(async () => await ns.UnlinkAsync(new RemoveRequest { Parent = 1 }));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1, inner.Calls);
    }

    [Theory]
    [InlineData("GetAttr")]
    [InlineData("SetAttr")]
    [InlineData("AbandonChunks")]
    [InlineData("RegisterChunk")]
    public async Task A_call_that_ends_the_same_however_often_it_runs_is_repeated_after_any_outage(string method)
    {
        var inner = new ScriptedInvoker(LostInFlight(), Refused());
        var invoker = inner.Intercept(new OutageRetryInterceptor(Window));
        var ns = new Namespace.NamespaceClient(invoker);
        var errno = method switch
        {
            "GetAttr" => (await ns.GetAttrAsync(new InodeRequest { Ino = 1 })).Errno,
            "SetAttr" => (await ns.SetAttrAsync(new SetAttrRequest { Ino = 1 })).Errno,
            "AbandonChunks" => (await ns.AbandonChunksAsync(new AbandonChunksRequest())).Errno,
            _ => (await new Cluster.ClusterClient(invoker).RegisterChunkAsync(new RegisterChunkRequest())).Errno,
        };
        Assert.Equal(0, errno);
        Assert.Equal(3, inner.Calls);
    }

    /// <summary>What grpc-dotnet reports when the server stopped answering keepalive pings (a network cut).</summary>
    private static RpcException PingUnanswered() => new(new Status(StatusCode.Internal, "Error starting gRPC call.",
        new HttpRequestException(HttpRequestError.HttpProtocolError,
            "The HTTP/2 server didn't respond to a ping request within the configured KeepAlivePingDelay.")));

    [Fact]
    public async Task A_connection_that_died_of_unanswered_keepalive_pings_is_an_outage_not_a_server_error()
    {
        // A change that carries a replay slot runs once however often it arrives: it waits and goes through.
        var inner = new ScriptedInvoker(PingUnanswered(), Refused());
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(Window)));
        var reply = await ns.CreateNodeAsync(new CreateNodeRequest { Parent = 1, Replay = new ReplaySlot { Slot = 1, Seq = 1 } });
        Assert.Equal(0, reply.Errno);
        Assert.Equal(3, inner.Calls);

        // One without, which may have reached the server, fails at once, as a call lost in flight does.
        var once = new ScriptedInvoker(PingUnanswered());
        ns = new Namespace.NamespaceClient(once.Intercept(new OutageRetryInterceptor(Window)));
        await Assert.ThrowsAsync<RpcException>(async () => await ns.UnlinkAsync(new RemoveRequest { Parent = 1 }));
        Assert.Equal(1, once.Calls);
    }

    [Fact]
    public async Task Other_errors_are_not_repeated()
    {
        var inner = new ScriptedInvoker(new RpcException(new Status(StatusCode.Internal, "boom")));
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(Window)));
        Assert.Equal(StatusCode.Internal, (await Assert.ThrowsAsync<RpcException>(async () => await ns.GetAttrAsync(new InodeRequest()))).StatusCode);
        Assert.Equal(1, inner.Calls);
    }

    [Fact]
    public async Task The_wait_ends_at_the_window_or_the_calls_deadline_whichever_comes_first()
    {
        var forever = new ScriptedInvoker(Enumerable.Repeat(Refused(), 1000).ToArray());
        var shortWindow = new Namespace.NamespaceClient(forever.Intercept(new OutageRetryInterceptor(TimeSpan.FromMilliseconds(400))));
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(async () => await shortWindow.GetAttrAsync(new InodeRequest()))).StatusCode);
        Assert.InRange(forever.Calls, 2, 5);

        var again = new ScriptedInvoker(Enumerable.Repeat(Refused(), 1000).ToArray());
        var longWindow = new Namespace.NamespaceClient(again.Intercept(new OutageRetryInterceptor(Window)));
        await Assert.ThrowsAsync<RpcException>(async () => await longWindow.GetAttrAsync(new InodeRequest(), deadline: DateTime.UtcNow.AddMilliseconds(400)));
        Assert.InRange(again.Calls, 2, 5);
    }

    [Fact]
    public async Task An_outage_longer_than_the_window_fails_later_calls_at_once_until_one_gets_through()
    {
        var inner = new ScriptedInvoker { Down = true };
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(TimeSpan.FromSeconds(1))));
        await Assert.ThrowsAsync<RpcException>(async () => await ns.GetAttrAsync(new InodeRequest()));   // waited the window
        var before = inner.Calls;
        Assert.True(before >= 2);

        // The outage has lasted the window: the next calls are tried once, not waited for.
        await Assert.ThrowsAsync<RpcException>(async () => await ns.GetAttrAsync(new InodeRequest()));
        await Assert.ThrowsAsync<RpcException>(async () => await ns.UnlinkAsync(new RemoveRequest()));
        Assert.Equal(before + 2, inner.Calls);

        // Back: a call gets through, and the next outage is waited out again.
        inner.Down = false;
        Assert.Equal(0, (await ns.GetAttrAsync(new InodeRequest())).Errno);
        // Down for the next two attempts: the call goes through on its third, well inside the
        // window (the invoker, not this thread, ends the outage: no race with the retries' timing).
        var calls = inner.Calls;
        inner.RefuseNext(2);
        Assert.Equal(0, (await ns.GetAttrAsync(new InodeRequest())).Errno);
        Assert.Equal(calls + 3, inner.Calls);
    }

    [Fact]
    public async Task Cancelling_a_waiting_call_ends_it_as_cancelled()
    {
        var inner = new ScriptedInvoker(Enumerable.Repeat(Refused(), 1000).ToArray());
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(Window)));
        using var cts = new CancellationTokenSource();
        var call = ns.GetAttrAsync(new InodeRequest(), cancellationToken: cts.Token).ResponseAsync;
        var giveUp = DateTime.UtcNow.AddSeconds(10);
        while (inner.Calls < 2)   // the call is waiting for the server
        {
            Assert.True(DateTime.UtcNow < giveUp, "the call never repeated");
            await Task.Delay(20);
        }
        cts.Cancel();
        Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => call)).StatusCode);
    }

    [Fact]
    public async Task With_no_window_nothing_waits()
    {
        var inner = new ScriptedInvoker(Refused());
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(TimeSpan.Zero)));
        await Assert.ThrowsAsync<RpcException>(async () => await ns.GetAttrAsync(new InodeRequest()));
        Assert.Equal(1, inner.Calls);
    }

    // ---- replay slots: a change the server answers from its reply cache may be sent again ----

    [Fact]
    public async Task A_change_with_a_replay_slot_is_sent_again_after_it_was_lost_in_flight_under_the_same_slot()
    {
        var inner = new ScriptedInvoker(LostInFlight(), Refused());
        var ns = new Namespace.NamespaceClient(inner.Intercept(new OutageRetryInterceptor(Window)).Intercept(new ReplaySlotInterceptor(() => true)));
        Assert.Equal(0, (await ns.UnlinkAsync(new RemoveRequest { Parent = 1 })).Errno);
        Assert.Equal(3, inner.Calls);
        Assert.All(inner.Replays, r => Assert.Equal((1u, 1ul), (r!.Slot, r.Seq)));

        // The slot is free again once the call is answered: the next call takes it with the next number.
        await ns.RenameAsync(new RenameRequest { Parent = 1 });
        Assert.Equal((1u, 2ul), (inner.Replays[^1]!.Slot, inner.Replays[^1]!.Seq));
    }

    [Fact]
    public async Task Calls_in_flight_together_have_slots_of_their_own_and_calls_without_a_session_none()
    {
        var inner = new ScriptedInvoker { Hold = true };
        var hasSession = true;
        var slots = new ReplaySlotInterceptor(() => hasSession);
        var ns = new Namespace.NamespaceClient(inner.Intercept(slots));
        var first = ns.UnlinkAsync(new RemoveRequest()).ResponseAsync;
        var second = ns.CreateNodeAsync(new CreateNodeRequest()).ResponseAsync;
        var read = ns.GetAttrAsync(new InodeRequest()).ResponseAsync;   // not a change: no slot
        Assert.Equal([1u, 2u], inner.Replays.Where(r => r is not null).Select(r => r!.Slot).Order());
        inner.ReleaseAll();
        await Task.WhenAll(first, second, read);
        Assert.Equal(2, slots.SlotCount);

        hasSession = false;
        var request = new RemoveRequest();
        var third = ns.UnlinkAsync(request).ResponseAsync;
        inner.ReleaseAll();
        await third;
        Assert.Null(request.Replay);
        Assert.Equal(2, slots.SlotCount);
    }

    /// <summary>
    /// Fails the first calls with the given errors, then answers every call with an empty (errno 0)
    /// reply (or, with <see cref="Hold"/>, once <see cref="ReleaseAll"/> is called). Records each
    /// call's replay slot as sent.
    /// </summary>
    private sealed class ScriptedInvoker(params RpcException[] failures) : CallInvoker
    {
        private int _calls;
        private readonly List<TaskCompletionSource> _held = [];
        public int Calls => Volatile.Read(ref _calls);
        public bool Hold { get; init; }
        /// <summary>While true, every call is refused (a server that is down), whatever the script says.</summary>
        public volatile bool Down;
        private int _refuseNext;

        /// <summary>The next <paramref name="count"/> calls are refused, as while Down; the ones after go through.</summary>
        public void RefuseNext(int count) => Volatile.Write(ref _refuseNext, count);
        public List<ReplaySlot?> Replays { get; } = [];

        public void ReleaseAll()
        {
            lock (_held)
            {
                foreach (var held in _held)
                    held.SetResult();
                _held.Clear();
            }
        }

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        {
            var n = Interlocked.Increment(ref _calls);
            lock (_held)
                Replays.Add((request as IReplayableRequest)?.Replay?.Clone());
            if (Hold)
            {
                var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (_held)
                    _held.Add(held);
                var later = held.Task.ContinueWith(_ => Activator.CreateInstance<TResponse>(), TaskScheduler.Default);
                return new AsyncUnaryCall<TResponse>(later, Task.FromResult(Grpc.Core.Metadata.Empty), () => Status.DefaultSuccess, () => Grpc.Core.Metadata.Empty, () => { });
            }
            var refused = Down || Interlocked.Decrement(ref _refuseNext) >= 0;
            var reply = refused ? Task.FromException<TResponse>(Refused())
                : n <= failures.Length
                ? Task.FromException<TResponse>(failures[n - 1])
                : Task.FromResult(Activator.CreateInstance<TResponse>());
            return new AsyncUnaryCall<TResponse>(reply, Task.FromResult(Grpc.Core.Metadata.Empty), () => Status.DefaultSuccess, () => Grpc.Core.Metadata.Empty, () => { });
        }

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();
        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();
        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
    }
}
