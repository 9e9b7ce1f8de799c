using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>File capabilities (the security.capability attribute, as setcap(8) writes it).</summary>
internal static class Capabilities
{
    /// <summary>Python setting CAP_NET_BIND_SERVICE, effective, on sys.argv[1] (needs `import os, sys`).</summary>
    public const string SetInPython =
        "import struct; os.setxattr(sys.argv[1], 'security.capability', struct.pack('<5I', 0x02000001, 1 << 10, 0, 0, 0))";

    /// <param name="path">Shell-quoted.</param>
    public static Task SetAsync(string path) => RunAsync($"python3 -c \"import os, sys; {SetInPython}\" {path}");

    /// <param name="path">Shell-quoted.</param>
    public static async Task<bool> HaveAsync(string path) =>
        (await TryRunAsync($"python3 -c \"import os, sys; os.getxattr(sys.argv[1], 'security.capability')\" {path}")).ExitCode == 0;
}
