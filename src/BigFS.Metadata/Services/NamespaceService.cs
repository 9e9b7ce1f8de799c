using BigFS.Metadata.Logic;
using BigFS.Protocol;
using Grpc.Core;

namespace BigFS.Metadata.Services;

/// <summary>
/// The Namespace gRPC service: a thin adapter over <see cref="NamespaceLogic"/>. The fast
/// metadata listener dispatches to these same handlers (<c>FastMetaDispatcher</c>).
/// </summary>
public sealed class NamespaceService(NamespaceLogic ns, ClusterLogic cluster, MetadataEndpoints endpoints) : Namespace.NamespaceBase
{
    public override Task<EntryReply> Lookup(LookupRequest request, ServerCallContext context) => Task.FromResult(ns.Lookup(request));
    public override Task<AttrReply> GetAttr(InodeRequest request, ServerCallContext context) => Task.FromResult(ns.GetAttr(request));
    public override Task<AttrReply> SetAttr(SetAttrRequest request, ServerCallContext context) => ns.SetAttrAsync(request);
    public override Task<EntryReply> CreateNode(CreateNodeRequest request, ServerCallContext context) => ns.CreateNodeAsync(request);
    public override Task<ReadLinkReply> ReadLink(InodeRequest request, ServerCallContext context) => Task.FromResult(ns.ReadLink(request));
    public override Task<EntryReply> Link(LinkRequest request, ServerCallContext context) => ns.LinkAsync(request);
    public override Task<StatusReply> Unlink(RemoveRequest request, ServerCallContext context) => ns.UnlinkAsync(request);
    public override Task<StatusReply> RemoveDirectory(RemoveRequest request, ServerCallContext context) => ns.RemoveDirectoryAsync(request);
    public override Task<StatusReply> Rename(RenameRequest request, ServerCallContext context) => ns.RenameAsync(request);
    public override Task<ReadDirectoryReply> ReadDirectory(ReadDirectoryRequest request, ServerCallContext context) => Task.FromResult(ns.ReadDirectory(request));
    public override Task<StatFsReply> StatFs(StatFsRequest request, ServerCallContext context) => Task.FromResult(ns.StatFs());
    public override Task<XattrReply> GetXattr(GetXattrRequest request, ServerCallContext context) => Task.FromResult(ns.GetXattr(request));
    public override Task<StatusReply> SetXattr(SetXattrRequest request, ServerCallContext context) => ns.SetXattrAsync(request);
    public override Task<ListXattrReply> ListXattr(InodeRequest request, ServerCallContext context) => Task.FromResult(ns.ListXattr(request));
    public override Task<StatusReply> RemoveXattr(RemoveXattrRequest request, ServerCallContext context) => ns.RemoveXattrAsync(request);
    public override Task<LayoutReply> GetLayout(GetLayoutRequest request, ServerCallContext context) => Task.FromResult(ns.GetLayout(request));
    public override Task<AttrReply> CommitWrite(CommitWriteRequest request, ServerCallContext context) => ns.CommitWriteAsync(request);
    public override Task<CopyRangeReply> CopyRange(CopyRangeRequest request, ServerCallContext context) => ns.CopyRangeAsync(request);
    public override Task<StatusReply> Sync(SyncRequest request, ServerCallContext context) => ns.SyncAsync();
    public override Task<SessionReply> OpenSession(OpenSessionRequest request, ServerCallContext context) => Task.FromResult(ns.OpenSession(request));
    public override Task<StatusReply> RenewSession(SessionRequest request, ServerCallContext context) => Task.FromResult(ns.RenewSession(request));
    public override Task<StatusReply> CloseSession(SessionRequest request, ServerCallContext context) => ns.CloseSessionAsync(request);
    public override Task<AttrReply> Open(OpenRequest request, ServerCallContext context) => ns.OpenAsync(request);
    public override Task<StatusReply> Release(ReleaseRequest request, ServerCallContext context) => ns.ReleaseAsync(request);
    public override async Task WatchChanges(SessionRequest request, IServerStreamWriter<ChangeNotice> responseStream, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.SessionId) || request.SessionId.Length > 128)
            throw new RpcException(new Status(StatusCode.InvalidArgument, "a session id is required"));
        using var watcher = ns.WatchChanges(request.SessionId);
        await responseStream.WriteAsync(new ChangeNotice());   // the watch is in place
        while (await watcher.NextAsync(context.CancellationToken) is { } notice)
            await responseStream.WriteAsync(notice);
    }

    public override Task<ListWritableNodesReply> ListWritableNodes(ListWritableNodesRequest request, ServerCallContext context)
    {
        var reply = cluster.ListWritableNodes();
        reply.MetadataFastAddress = endpoints.FastAddress;
        reply.MetadataFastUnix = endpoints.FastUnixPath;
        return Task.FromResult(reply);
    }

    public override async Task<StatusReply> Lock(LockRequest request, ServerCallContext context)
    {
        try
        {
            return await ns.LockAsync(request, context.CancellationToken);
        }
        catch (LockServiceStoppingException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));   // repeated by the client once the server is back
        }
    }
    public override Task<StatusReply> TryLock(LockRequest request, ServerCallContext context)
    {
        request.Wait = false;
        return Lock(request, context);
    }

    public override Task<TestLockReply> TestLock(LockRequest request, ServerCallContext context) => Task.FromResult(ns.TestLock(request));

    public override Task<StatusReply> AbandonChunks(AbandonChunksRequest request, ServerCallContext context) => ns.AbandonChunksAsync(request);

    public override async Task<StatusReply> ReportBadCopy(ReportBadCopyRequest request, ServerCallContext context) =>
        new() { Errno = await cluster.ReportBadCopyAsync(request.ChunkId, request.NodeId, request.Reason) };
}
