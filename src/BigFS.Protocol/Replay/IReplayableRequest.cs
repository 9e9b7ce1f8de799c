namespace BigFS.Protocol;

/// <summary>
/// A namespace change that can carry a <see cref="ReplaySlot"/>, so that sending it again after
/// an unknown outcome is answered from the server's reply cache instead of run twice.
/// </summary>
public interface IReplayableRequest
{
    ReplaySlot? Replay { get; set; }
}

/// <summary>A reply whose failure is an errno value (every namespace reply).</summary>
public interface IErrnoReply
{
    int Errno { get; set; }
}

public sealed partial class CreateNodeRequest : IReplayableRequest;
public sealed partial class LinkRequest : IReplayableRequest;
public sealed partial class RemoveRequest : IReplayableRequest;
public sealed partial class RenameRequest : IReplayableRequest;
public sealed partial class SetXattrRequest : IReplayableRequest;
public sealed partial class RemoveXattrRequest : IReplayableRequest;
public sealed partial class CommitWriteRequest : IReplayableRequest;
public sealed partial class CopyRangeRequest : IReplayableRequest;
public sealed partial class OpenRequest : IReplayableRequest;
public sealed partial class ReleaseRequest : IReplayableRequest;

public sealed partial class EntryReply : IErrnoReply;
public sealed partial class AttrReply : IErrnoReply;
public sealed partial class CopyRangeReply : IErrnoReply;
public sealed partial class StatusReply : IErrnoReply;
