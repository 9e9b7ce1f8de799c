using System.Net.Sockets;

namespace BigFS.Cli.Configuration;

/// <summary>Turns start failures that are really configuration problems into a ConfigurationError naming the key.</summary>
public static class StartupFailure
{
    public static ConfigurationError? AsConfigurationError(Exception e, string listen)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse })
                return new ConfigurationError("listen", $"{listen} is already in use");
            if (inner is SocketException { SocketErrorCode: SocketError.AddressNotAvailable })
                return new ConfigurationError("listen", $"{listen} is not an address of this host");
            if (inner is SocketException { SocketErrorCode: SocketError.AccessDenied })
                return new ConfigurationError("listen", $"not allowed to listen on {listen} (ports below 1024 need privileges)");
        }
        return null;
    }
}
