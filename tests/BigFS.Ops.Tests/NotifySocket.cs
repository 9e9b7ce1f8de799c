using System.Net.Sockets;
using System.Text;

namespace BigFS.Ops.Tests;

/// <summary>
/// The receiving end of the systemd notify protocol: a Unix datagram socket whose path goes in
/// NOTIFY_SOCKET, as systemd's own would.
/// </summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket;
    private readonly List<string> _received = [];

    public NotifySocket(string path)
    {
        Path = path;
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(path));
    }

    public string Path { get; }

    /// <summary>Every datagram received so far (each may hold several NAME=value lines).</summary>
    public IReadOnlyList<string> Received => _received;

    /// <summary>Waits for a datagram holding the exact line <paramref name="line"/> and returns that datagram.</summary>
    public async Task<string> WaitForAsync(string line, TimeSpan timeout)
    {
        var existing = _received.FirstOrDefault(m => m.Split('\n').Contains(line));
        if (existing is not null) return existing;
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        while (true)
        {
            int n;
            try { n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token); }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no '{line}' on the notify socket within {timeout.TotalSeconds}s; received: [{string.Join(" | ", _received)}]");
            }
            var message = Encoding.UTF8.GetString(buffer, 0, n);
            _received.Add(message);
            if (message.Split('\n').Contains(line)) return message;
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        File.Delete(Path);
    }
}
