// The tests drive a Linux-only kernel interface.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
