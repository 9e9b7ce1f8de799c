namespace BigFS.Storage;

/// <summary>Chunk operations served by a node, per transport (tests use it to prove which path carried the data).</summary>
public sealed class NodeTraffic
{
    private long _grpcReads, _grpcWrites, _grpcReplicas, _bulkReads, _bulkWrites, _bulkReplicas;

    public long GrpcReads => Interlocked.Read(ref _grpcReads);
    public long GrpcWrites => Interlocked.Read(ref _grpcWrites);
    public long GrpcReplicas => Interlocked.Read(ref _grpcReplicas);
    public long BulkReads => Interlocked.Read(ref _bulkReads);
    public long BulkWrites => Interlocked.Read(ref _bulkWrites);
    public long BulkReplicas => Interlocked.Read(ref _bulkReplicas);

    internal void GrpcRead() => Interlocked.Increment(ref _grpcReads);
    internal void GrpcWrite() => Interlocked.Increment(ref _grpcWrites);
    internal void GrpcReplica() => Interlocked.Increment(ref _grpcReplicas);
    internal void BulkRead() => Interlocked.Increment(ref _bulkReads);
    internal void BulkWrite() => Interlocked.Increment(ref _bulkWrites);
    internal void BulkReplica() => Interlocked.Increment(ref _bulkReplicas);
}
