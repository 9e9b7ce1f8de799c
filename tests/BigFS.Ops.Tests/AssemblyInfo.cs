// The tests drive Linux-only tools: mounts, network namespaces, systemd.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
