using Grpc.Core;

namespace BigFS.Storage;

/// <summary>A chunk operation refused for a reason the caller must see (bad id, bad size, checksum mismatch, ...).</summary>
public sealed class ChunkRejectedException(StatusCode code, string message) : Exception(message)
{
    public StatusCode Code { get; } = code;

    public RpcException ToRpcException() => new(new Status(Code, Message));
}
