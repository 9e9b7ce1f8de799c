using BigFS.Fuse;
using BigFS.Protocol;

namespace BigFS.Mount;

/// <summary>
/// Directory listing. Offsets handed to the kernel are the metadata server's cookies shifted
/// by two, leaving 1 and 2 for "." and "..", so a listing resumes exactly where it stopped
/// even while entries are added or removed.
/// </summary>
internal sealed partial class BigFsFileSystem
{
    private const int DirectoryPage = 256;

    public ValueTask<FuseResult<FuseOpenResult>> OpenDirAsync(FuseRequestContext ctx, ulong ino, int flags) =>
        ValueTask.FromResult<FuseResult<FuseOpenResult>>(new FuseOpenResult(0));

    public ValueTask<int> ReleaseDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, int flags) => ValueTask.FromResult(0);

    /// <summary>Namespace changes are durable within milliseconds of their reply; fsync on a directory waits for that.</summary>
    public ValueTask<int> FsyncDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, bool dataOnly) => Call(async () =>
    {
        await client.SyncMetadataAsync(CancellationToken.None);
        return 0;
    }, "fsyncdir");

    public ValueTask<int> ReadDirAsync(FuseRequestContext ctx, ulong ino, ulong fh, long offset, FuseDirList list) => Call(async () =>
    {
        if (offset == 0 && !AddDot(list, ".", ino, 1)) return 0;
        if (offset <= 1 && !AddDot(list, "..", ino, 2)) return 0;
        var cookie = (ulong)Math.Max(0, offset - 2);
        while (true)
        {
            var page = await _ns.ReadDirectoryAsync(new ReadDirectoryRequest { Ino = ino, Cookie = cookie, MaxEntries = DirectoryPage },
                cancellationToken: ctx.CancellationToken);
            if (page.Errno != 0) return page.Errno;
            foreach (var e in page.Entries)
            {
                var name = NameOf(e.Name);
                var next = (long)e.Cookie + 2;
                var added = list.IsPlus ? list.AddPlus(name, Entry(e.Attr), next) : list.Add(name, e.Attr.Ino, e.Attr.Mode, next);
                if (!added) return 0;
                cookie = e.Cookie;
            }
            if (page.End || page.Entries.Count == 0) return 0;
        }
    }, "readdir");

    private static bool AddDot(FuseDirList list, string name, ulong ino, long next) =>
        list.IsPlus
            ? list.AddPlus(name, new FuseEntry(0, new FuseAttr { Ino = ino, Mode = ModeBits.S_IFDIR }), next)
            : list.Add(name, ino, ModeBits.S_IFDIR, next);
}
