using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace BigFS.Protocol;

/// <summary>
/// Builds a Kestrel gRPC server the way every BigFS daemon needs it: h2c only (plain HTTP/2
/// on loopback), large messages allowed, and large HTTP/2 windows (measured: halves client CPU
/// on bulk uploads).
/// </summary>
public static class GrpcServerHost
{
    public const int MaxMessageBytes = 64 * 1024 * 1024;

    /// <param name="listen">"host:port"; port 0 picks a free one (see <see cref="BoundAddress"/>).</param>
    /// <param name="configureKestrel">Adds further endpoints after the gRPC one.</param>
    public static WebApplication Build(
        string listen,
        ILoggerFactory? loggerFactory,
        Action<IServiceCollection> configureServices,
        Action<IEndpointRouteBuilder> mapServices,
        Action<KestrelServerOptions>? configureKestrel = null)
    {
        // No config reload: it puts a recursive inotify watch on the content root (the working
        // directory), and a data directory below it then costs a watcher event per chunk write
        // (measured: 11 % of all CPU during uploads).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        if (loggerFactory is not null)
            builder.Services.AddSingleton(loggerFactory);

        var (host, port) = ParseListen(listen);
        // Accepted connections inherit the listener's TCP settings: a client host gone from the
        // network frees its connection (and a half-received chunk) in seconds.
        builder.WebHost.UseSockets(o => o.CreateBoundListenSocket = endpoint =>
        {
            var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
            DeadPeerDetection.Configure(socket);
            return socket;
        });
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.Http2.InitialConnectionWindowSize = 16 * 1024 * 1024;
            kestrel.Limits.Http2.InitialStreamWindowSize = 8 * 1024 * 1024;
            kestrel.Limits.Http2.MaxStreamsPerConnection = 1024;
            kestrel.Limits.Http2.MaxFrameSize = 1024 * 1024 - 1;
            if (host is "*" or "0.0.0.0" or "")
                kestrel.ListenAnyIP(port, o => o.Protocols = HttpProtocols.Http2);
            else
                kestrel.Listen(System.Net.IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host), port,
                    o => o.Protocols = HttpProtocols.Http2);
            // Extra endpoints (e.g. a node's bulk data listener) come after the gRPC one, which
            // stays first in the server's address list (see BoundAddress).
            configureKestrel?.Invoke(kestrel);
        });
        builder.Services.Replace(ServiceDescriptor.Singleton<IMemoryPoolFactory<byte>, LargeBlockMemoryPoolFactory>());
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = MaxMessageBytes;
            o.MaxSendMessageSize = MaxMessageBytes;
            o.EnableDetailedErrors = true;
        });
        configureServices(builder.Services);

        var app = builder.Build();
        mapServices(app);
        return app;
    }

    /// <summary>
    /// The address clients dial, e.g. http://127.0.0.1:40123, once the app has started. A
    /// wildcard listen (0.0.0.0, [::]) is advertised as this host's first non-loopback IPv4
    /// address, so other hosts can reach it; on a host with only loopback, as 127.0.0.1.
    /// </summary>
    public static string BoundAddress(this WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        var uri = new Uri(addresses.First().Replace("[::]", "0.0.0.0"));
        var host = uri.Host is "0.0.0.0" or "+" or "*" ? ReachableHostAddress() : uri.Host;
        return $"http://{host}:{uri.Port}";
    }

    private static string ReachableHostAddress()
    {
        var candidate = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up
                        && n.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !System.Net.IPAddress.IsLoopback(a));
        return candidate?.ToString() ?? "127.0.0.1";
    }

    public static (string Host, int Port) ParseListen(string listen)
    {
        if (listen.StartsWith("http://", StringComparison.Ordinal))
            listen = listen["http://".Length..].TrimEnd('/');
        var colon = listen.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(listen.AsSpan(colon + 1), out var port) || port is < 0 or > 65535)
            throw new FormatException($"listen address '{listen}' is not host:port");
        return (listen[..colon], port);
    }
}
