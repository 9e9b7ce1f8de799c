using System.Collections.Concurrent;
using Grpc.Net.Client;

namespace BigFS.Protocol;

/// <summary>
/// One long-lived HTTP/2 channel per peer address, shared by every caller in the process.
/// Channels are expensive to create and cheap to share; they multiplex calls.
/// </summary>
public sealed class GrpcChannels : IDisposable
{
    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public GrpcChannel Get(string address) => _channels.GetOrAdd(Normalize(address), Create);

    public static string Normalize(string address) =>
        address.StartsWith("http://", StringComparison.Ordinal) || address.StartsWith("https://", StringComparison.Ordinal)
            ? address.TrimEnd('/')
            : "http://" + address.TrimEnd('/');

    public static GrpcChannel Create(string address)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(20),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            InitialHttp2StreamWindowSize = 8 * 1024 * 1024,
        };
        return GrpcChannel.ForAddress(Normalize(address), new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = GrpcServerHost.MaxMessageBytes,
            MaxSendMessageSize = GrpcServerHost.MaxMessageBytes,
            DisposeHttpClient = true,
        });
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
            channel.Dispose();
        _channels.Clear();
    }
}
