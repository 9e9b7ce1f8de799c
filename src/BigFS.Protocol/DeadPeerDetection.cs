using System.Net;
using System.Net.Sockets;

namespace BigFS.Protocol;

/// <summary>
/// TCP settings that notice, within seconds, a peer gone from the network: a host powered off,
/// a cable pulled, a partition. Such a peer sends no reset, so without them a connect waits for
/// the kernel's SYN retries (about two minutes), and a call on an open connection waits for its
/// own deadline (minutes for a chunk) while sent data is retransmitted into the void. A peer
/// that is only slow still acknowledges at the TCP level, so a slow call is never cut short.
/// </summary>
public static class DeadPeerDetection
{
    /// <summary>The longest wait for a node or server to accept a connection.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Sent data left unacknowledged this long ends the connection (TCP_USER_TIMEOUT), and so do
    /// keepalive probes unanswered this long, which an idle connection (a caller waiting for a
    /// reply) sends from <see cref="KeepAliveIdle"/> on.
    /// </summary>
    public static readonly TimeSpan UserTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan KeepAliveIdle = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(2);
    private const int KeepAliveProbes = 5;
    private const int IpProtoTcp = 6, TcpUserTimeout = 18;   // <netinet/tcp.h>

    /// <summary>Applies the settings to a TCP socket (other sockets, such as Unix ones, are left alone).</summary>
    public static void Configure(Socket socket)
    {
        if (socket.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            return;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, (int)KeepAliveIdle.TotalSeconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, (int)KeepAliveInterval.TotalSeconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, KeepAliveProbes);
        if (OperatingSystem.IsLinux())
            socket.SetRawSocketOption(IpProtoTcp, TcpUserTimeout, BitConverter.GetBytes((int)UserTimeout.TotalMilliseconds));
    }

    /// <summary>Connects within <see cref="ConnectTimeout"/>; longer is a <see cref="SocketError.TimedOut"/> failure.</summary>
    public static async Task ConnectAsync(Socket socket, EndPoint endpoint, CancellationToken ct)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timer.CancelAfter(ConnectTimeout);
        try
        {
            await socket.ConnectAsync(endpoint, timer.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new SocketException((int)SocketError.TimedOut);
        }
    }
}
