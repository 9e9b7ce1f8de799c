using System.Net.Sockets;
using System.Text;

namespace BigFS.Cli;

/// <summary>
/// The systemd notify protocol (sd_notify): one datagram to $NOTIFY_SOCKET. A no-op when the
/// daemon was not started by systemd.
/// </summary>
public static class SystemdNotify
{
    public static void Ready(string status) => Send($"READY=1\nSTATUS={status}\nMAINPID={Environment.ProcessId}");

    public static void Stopping() => Send("STOPPING=1");

    public static void Status(string status) => Send($"STATUS={status}");

    public static bool Send(string message)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
            return false;
        if (path[0] == '@')
            path = "\0" + path[1..];   // abstract socket namespace
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path));
            socket.Send(Encoding.UTF8.GetBytes(message));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
