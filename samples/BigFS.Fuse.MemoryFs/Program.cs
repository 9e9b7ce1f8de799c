using System.Runtime.InteropServices;
using BigFS.Fuse;
using BigFS.Fuse.MemoryFs;
using Microsoft.Extensions.Logging;

// dotnet BigFS.Fuse.MemoryFs.dll MOUNTPOINT [--null [--stats]] [--threads N] [--verbose]
//   Serves an in-memory filesystem (or, with --null, a 4 GiB zero/null file mounted over the
//   regular file MOUNTPOINT, like libfuse's null example) until SIGINT/SIGTERM or unmount.
if (args.Length < 1)
{
    Console.Error.WriteLine("usage: BigFS.Fuse.MemoryFs MOUNTPOINT [--null] [--threads N] [--verbose]");
    return 2;
}
string mountPoint = args[0];
bool nullFs = args.Contains("--null");
int threads = args.SkipWhile(a => a != "--threads").Skip(1).Select(int.Parse).FirstOrDefault(0);
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true)
    .SetMinimumLevel(args.Contains("--verbose") ? LogLevel.Debug : LogLevel.Warning));

var options = new FuseMountOptions
{
    FsName = nullFs ? "nullfs" : "memoryfs",
    Subtype = nullFs ? "nullfs" : "memoryfs",
    AllowOther = Environment.UserName == "root",
    RootMode = nullFs ? ModeBits.S_IFREG : ModeBits.S_IFDIR,
};
if (threads > 0) options = options with { ReaderThreads = threads };
IFuseFileSystem fs = nullFs ? new NullFileSystem(0, 0) : new MemoryFileSystem();

var mount = await FuseMount.MountAsync(mountPoint, fs, options, loggerFactory);
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
Console.WriteLine($"mounted {mount.MountPoint}");
await mount.Completion;
if (fs is NullFileSystem nullFileSystem && args.Contains("--stats"))
    Console.Error.WriteLine($"reads={nullFileSystem.ReadStats.Count} average_read_bytes={nullFileSystem.ReadStats.AverageBytes}");
return 0;

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    _ = mount.UnmountAsync();
}
