using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace BigFS.Protocol;

/// <summary>
/// Gives every replayable namespace change (<see cref="IReplayableRequest"/>) a slot of its own
/// for the life of the call, and the slot's next sequence number, so that the server can answer
/// a repeat of it (by <see cref="OutageRetryInterceptor"/>, after a crash or a broken connection)
/// from its reply cache. Slots are reused, so the server keeps one reply per slot: as many as
/// this client ever had such calls in flight at once.
/// </summary>
/// <remarks>
/// Must be the outermost interceptor: the retries below it must repeat the same slot and
/// sequence number, and the slot is free again only once the caller has its answer.
/// Calls are left alone while <paramref name="hasSession"/> says false: the server keys its
/// cache by session.
/// </remarks>
public sealed class ReplaySlotInterceptor(Func<bool> hasSession) : Interceptor
{
    private sealed class Slot(uint id)
    {
        public uint Id { get; } = id;
        public ulong LastSeq;
    }

    private readonly ConcurrentStack<Slot> _free = new();
    private int _created;

    /// <summary>How many slots exist (the most replayable calls that were ever in flight at once).</summary>
    public int SlotCount => Volatile.Read(ref _created);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        if (request is not IReplayableRequest replayable || !hasSession())
            return continuation(request, context);
        if (!_free.TryPop(out var slot))
            slot = new Slot((uint)Interlocked.Increment(ref _created));
        // Always a fresh number, even on a request object sent before: two calls never share one.
        replayable.Replay = new ReplaySlot { Slot = slot.Id, Seq = ++slot.LastSeq };
        AsyncUnaryCall<TResponse> call;
        try
        {
            call = continuation(request, context);
        }
        catch
        {
            _free.Push(slot);
            throw;
        }
        if (call.ResponseAsync.IsCompleted)
            _free.Push(slot);
        else
            call.ResponseAsync.ContinueWith(static (_, state) =>
            {
                var (free, slot) = ((ConcurrentStack<Slot>, Slot))state!;
                free.Push(slot);
            }, (_free, slot), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return call;
    }
}
