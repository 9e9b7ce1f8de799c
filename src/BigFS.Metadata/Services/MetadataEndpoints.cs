namespace BigFS.Metadata.Services;

/// <summary>Where this server's listeners can be reached, known once they are bound; told to clients.</summary>
public sealed class MetadataEndpoints
{
    /// <summary>The fast listener as host:port, or empty when there is none.</summary>
    public string FastAddress { get; set; } = "";

    /// <summary>The fast listener's Unix socket path, or empty when there is none.</summary>
    public string FastUnixPath { get; set; } = "";
}
