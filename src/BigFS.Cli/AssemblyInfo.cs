// BigFS runs on Linux only: FUSE, systemd, /proc.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
