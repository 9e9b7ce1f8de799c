using Grpc.Core;

namespace BigFS.Protocol.FastMeta;

/// <summary>
/// The call context handlers see on the fast transport: the connection's peer and lifetime.
/// BigFS's unary handlers read nothing from it; the session travels in the frame instead of a header.
/// </summary>
internal sealed class FastMetaCallContext(string peer, CancellationToken connectionClosed) : ServerCallContext
{
    private Status _status;
    private WriteOptions? _writeOptions;

    protected override string MethodCore => "";
    protected override string HostCore => "";
    protected override string PeerCore => peer;
    protected override DateTime DeadlineCore => DateTime.MaxValue;
    protected override Metadata RequestHeadersCore => Metadata.Empty;
    protected override CancellationToken CancellationTokenCore => connectionClosed;
    protected override Metadata ResponseTrailersCore => Metadata.Empty;
    protected override Status StatusCore { get => _status; set => _status = value; }
    protected override WriteOptions? WriteOptionsCore { get => _writeOptions; set => _writeOptions = value; }
    protected override AuthContext AuthContextCore { get; } = new(null, new Dictionary<string, List<AuthProperty>>());

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("the fast metadata transport does not propagate calls");
}
