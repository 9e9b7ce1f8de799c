using Grpc.Core;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// The unary methods of a gRPC service, by fast-transport method id, collected from the
/// service's generated <c>BindService(ServiceBinderBase, impl)</c>: the fast listener calls the
/// very same handler methods as gRPC does, so no operation has a second implementation.
/// </summary>
public sealed class FastMetaDispatcher : ServiceBinderBase
{
    private readonly Dictionary<ushort, IFastMethod> _methods = [];

    /// <summary>Called before each handler with the request's session (gRPC does this in an interceptor).</summary>
    public Action<string?>? OnSession { get; init; }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
    {
        if (handler is not null && MetaMethodIds.TryGetId(method.FullName, out var id))
            _methods[id] = new FastMethod<TRequest, TResponse>(method, handler);
    }

    // Streaming methods stay on gRPC.
    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) { }
    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) { }
    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) { }

    public int MethodCount => _methods.Count;

    internal bool TryGet(ushort id, out IFastMethod method) => _methods.TryGetValue(id, out method!);

    /// <summary>Where a handler's outcome goes (the connection that received the request).</summary>
    internal interface IReplySink
    {
        void Reply(ushort method, ulong requestId, Google.Protobuf.IMessage reply);
        void Error(ushort method, ulong requestId, StatusCode status, string message);
    }

    internal interface IFastMethod
    {
        /// <summary>Parses the request (synchronously: the payload buffer is reused afterwards) and runs the handler; the reply goes to <paramref name="sink"/>, now or when the handler completes.</summary>
        void Invoke(ushort id, ulong requestId, ReadOnlyMemory<byte> payload, ServerCallContext context, IReplySink sink);
    }

    private sealed class FastMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler) : IFastMethod
        where TRequest : class where TResponse : class
    {
        public void Invoke(ushort id, ulong requestId, ReadOnlyMemory<byte> payload, ServerCallContext context, IReplySink sink)
        {
            TRequest request;
            try
            {
                request = ProtobufPayload.Parse(method.RequestMarshaller, payload);
            }
            catch (Exception ex)
            {
                sink.Error(id, requestId, StatusCode.InvalidArgument, $"undecodable {method.Name} request: {ex.Message}");
                return;
            }
            Task<TResponse> reply;
            try
            {
                reply = handler(request, context);
            }
            catch (Exception ex)
            {
                Fail(id, requestId, sink, ex);
                return;
            }
            if (reply.IsCompletedSuccessfully)
                sink.Reply(id, requestId, ProtobufPayload.AsMessage(reply.Result));
            else
                reply.ContinueWith(static (t, state) =>
                {
                    var (id, requestId, sink) = ((ushort, ulong, IReplySink))state!;
                    if (t.IsCompletedSuccessfully)
                        sink.Reply(id, requestId, ProtobufPayload.AsMessage(t.Result));
                    else
                        Fail(id, requestId, sink, t.Exception?.InnerException ?? new TaskCanceledException());
                }, (id, requestId, sink), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        /// <summary>As Grpc.AspNetCore reports them: an RpcException's own status, anything else Unknown with its message.</summary>
        private static void Fail(ushort id, ulong requestId, IReplySink sink, Exception ex)
        {
            if (ex is RpcException rpc)
                sink.Error(id, requestId, rpc.StatusCode, rpc.Status.Detail);
            else
                sink.Error(id, requestId, StatusCode.Unknown, $"Exception was thrown by handler. {ex.GetType().Name}: {ex.Message}");
        }
    }
}
