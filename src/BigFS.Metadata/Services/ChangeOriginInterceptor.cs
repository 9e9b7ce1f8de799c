using BigFS.Metadata.Logic;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace BigFS.Metadata.Services;

/// <summary>Records the calling session (header <c>bigfs-session</c>) as the origin of the changes the call makes.</summary>
public sealed class ChangeOriginInterceptor : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ChangeOrigin.Session = context.RequestHeaders.GetValue(ChangeOrigin.HeaderName);
        if (!BigFS.Protocol.MetaTrace.Enabled)
            return continuation(request, context);
        var start = BigFS.Protocol.MetaTrace.Now();
        var reply = continuation(request, context);
        var stage = "server.grpc." + context.Method[(context.Method.LastIndexOf('/') + 1)..];
        reply.ContinueWith(_ => BigFS.Protocol.MetaTrace.Record(stage, start), TaskContinuationOptions.ExecuteSynchronously);
        return reply;
    }
}
