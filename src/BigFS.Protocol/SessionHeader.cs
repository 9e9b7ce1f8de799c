namespace BigFS.Protocol;

/// <summary>
/// The gRPC request header naming the mount session a namespace call is made for; the
/// metadata server uses it to leave a session's own changes out of its change feed.
/// </summary>
public static class SessionHeader
{
    public const string Name = "bigfs-session";
}
