using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using BigFS.Client;
using BigFS.Protocol;
using Grpc.Core;

namespace BigFS.Cli.Commands;

/// <summary>File commands that work without a mount: ls, stat, put, get, rm, mkdir.</summary>
public static class FileCommands
{
    private static readonly HashSet<string> MetaOption = ["meta"];

    public static Task<int> LsAsync(string[] args, CancellationToken ct) => WithClient(args, 0, 1, async (client, paths) =>
    {
        var path = paths.Count > 0 ? paths[0] : "/";
        var dir = await client.ResolvePathAsync(path, ct);
        if (dir.Type != InodeType.Directory)
        {
            Console.WriteLine(FormatLine(dir, Path.GetFileName(path)));
            return 0;
        }
        ulong cookie = 0;
        while (true)
        {
            var page = await client.Namespace.ReadDirectoryAsync(new ReadDirectoryRequest { Ino = dir.Ino, Cookie = cookie, MaxEntries = 1000 }, cancellationToken: ct);
            Check(page.Errno, path);
            foreach (var e in page.Entries)
            {
                Console.WriteLine(FormatLine(e.Attr, e.Name.ToStringUtf8()));
                cookie = e.Cookie;
            }
            if (page.End || page.Entries.Count == 0) break;
        }
        return 0;
    });

    public static Task<int> StatAsync(string[] args, CancellationToken ct) => WithClient(args, 1, 1, async (client, paths) =>
    {
        var attr = await client.ResolvePathAsync(paths[0], ct);
        Console.WriteLine($"  path: {paths[0]}");
        Console.WriteLine($"  inode: {attr.Ino}   type: {attr.Type.ToString().ToLowerInvariant()}   mode: {Convert.ToString(attr.Mode & 0xfff, 8)}   links: {attr.Nlink}");
        Console.WriteLine($"  size: {attr.Size}   uid: {attr.Uid}   gid: {attr.Gid}   goal: {attr.Goal} copies   version: {attr.Version}");
        Console.WriteLine($"  mtime: {FormatTime(attr.MtimeNs)}   ctime: {FormatTime(attr.CtimeNs)}   atime: {FormatTime(attr.AtimeNs)}");
        if (attr.Type != InodeType.File)
            return 0;
        var layout = await client.Namespace.GetLayoutAsync(new GetLayoutRequest { Ino = attr.Ino, AllCopies = true }, cancellationToken: ct);
        Check(layout.Errno, paths[0]);
        var chunks = layout.Chunks.ToDictionary(c => c.ChunkId);
        Console.WriteLine($"  extents: {layout.Extents.Count}   chunks: {chunks.Count}");
        var table = new TextTable("FILE RANGE", "CHUNK", "CHUNK RANGE", "COPIES");
        foreach (var e in layout.Extents)
        {
            var copies = chunks.TryGetValue(e.ChunkId, out var c)
                ? string.Join(", ", c.Copies.Select(k => $"{k.Address.Replace("http://", "")} {k.Status.ToString().ToUpperInvariant()}{(k.Primary ? " (primary)" : "")}"))
                : "?";
            table.Add($"{e.FileOffset}+{e.Length}", e.ChunkId, $"{e.ChunkOffset}+{e.Length}", copies);
        }
        if (layout.Extents.Count > 0)
            Console.WriteLine(table.Render());
        return 0;
    });

    public static Task<int> PutAsync(string[] args, CancellationToken ct) => WithClient(args, 2, 2, async (client, paths) =>
    {
        var (local, remote) = (paths[0], paths[1]);
        if (!File.Exists(local))
            throw new CliUsageException($"{local}: no such local file");
        try
        {
            if ((await client.ResolvePathAsync(remote, ct)).Type == InodeType.Directory)
                remote = remote.TrimEnd('/') + "/" + Path.GetFileName(local);
        }
        catch (BigFsException e) when (e.Errno == BigFS.Core.Errno.ENOENT) { }
        var (parent, name) = await ResolveParentAsync(client, remote, ct);
        var mode = File.GetUnixFileMode(local);
        var created = await client.Namespace.CreateNodeAsync(new CreateNodeRequest
        {
            Parent = parent.Ino, Name = Google.Protobuf.ByteString.CopyFromUtf8(name), Type = InodeType.File,
            Mode = (uint)mode & 0xfff, Uid = 0, Gid = 0, Exclusive = false,
        }, cancellationToken: ct);
        Check(created.Errno, remote);

        await using var file = client.OpenFile(created.Attr.Ino, (long)created.Attr.Size);
        if (!created.Created)
            await file.TruncateAsync(0, ct);
        await using var input = new FileStream(local, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var buffer = ArrayPool<byte>.Shared.Rent(1024 * 1024);
        try
        {
            long offset = 0;
            int n;
            while ((n = await input.ReadAsync(buffer.AsMemory(0, 1024 * 1024), ct)) > 0)
            {
                await file.WriteAsync(offset, buffer.AsMemory(0, n), ct);
                offset += n;
            }
            await file.FlushAsync(ct);
            Console.Error.WriteLine($"{local} -> {remote}: {offset} bytes");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return 0;
    });

    public static Task<int> GetAsync(string[] args, CancellationToken ct) => WithClient(args, 2, 2, async (client, paths) =>
    {
        var (remote, local) = (paths[0], paths[1]);
        var attr = await client.ResolvePathAsync(remote, ct);
        if (attr.Type != InodeType.File)
            Check(BigFS.Core.Errno.EISDIR, remote);
        if (Directory.Exists(local))
            local = Path.Combine(local, Path.GetFileName(remote));
        await using var file = client.OpenFile(attr.Ino, (long)attr.Size);
        await using var output = new FileStream(local, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        var buffer = ArrayPool<byte>.Shared.Rent(4 * 1024 * 1024);
        try
        {
            long offset = 0;
            while (offset < (long)attr.Size)
            {
                var n = await file.ReadAsync(offset, buffer.AsMemory(0, (int)Math.Min(buffer.Length, (long)attr.Size - offset)), ct);
                if (n == 0) break;
                await output.WriteAsync(buffer.AsMemory(0, n), ct);
                offset += n;
            }
            Console.Error.WriteLine($"{remote} -> {local}: {offset} bytes");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return 0;
    });

    public static Task<int> RmAsync(string[] args, CancellationToken ct) => WithClient(args, 1, int.MaxValue, async (client, paths) =>
    {
        foreach (var path in paths)
        {
            var attr = await client.ResolvePathAsync(path, ct);
            var (parent, name) = await ResolveParentAsync(client, path, ct);
            var request = new RemoveRequest { Parent = parent.Ino, Name = Google.Protobuf.ByteString.CopyFromUtf8(name) };
            var reply = attr.Type == InodeType.Directory
                ? await client.Namespace.RemoveDirectoryAsync(request, cancellationToken: ct)
                : await client.Namespace.UnlinkAsync(request, cancellationToken: ct);
            Check(reply.Errno, path);
        }
        return 0;
    });

    public static Task<int> MkdirAsync(string[] args, CancellationToken ct) => WithClient(args, 1, int.MaxValue, async (client, paths) =>
    {
        foreach (var path in paths)
        {
            var (parent, name) = await ResolveParentAsync(client, path, ct);
            var reply = await client.Namespace.CreateNodeAsync(new CreateNodeRequest
            {
                Parent = parent.Ino, Name = Google.Protobuf.ByteString.CopyFromUtf8(name), Type = InodeType.Directory, Mode = 0x1ed, Exclusive = true,
            }, cancellationToken: ct);
            Check(reply.Errno, path);
        }
        return 0;
    });

    private static async Task<int> WithClient(string[] args, int minPaths, int maxPaths, Func<BigFsClient, List<string>, Task<int>> body)
    {
        var cl = new CommandLine(args, MetaOption);
        if (cl.Positional.Count < minPaths || cl.Positional.Count > maxPaths)
            throw new CliUsageException(minPaths == maxPaths ? $"expects {minPaths} path(s)" : $"expects {minPaths} to {maxPaths} paths");
        try
        {
            await using var client = await BigFsClient.ConnectAsync(cl.MetaAddress);
            return await body(client, cl.Positional);
        }
        catch (BigFsException e)
        {
            Console.Error.WriteLine($"bigfs: {e.Message}");
            return 1;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"bigfs: cannot reach the cluster at {cl.MetaAddress}: {e.Status.StatusCode} {e.Status.Detail}");
            return 1;
        }
    }

    private static async Task<(InodeAttr Parent, string Name)> ResolveParentAsync(BigFsClient client, string path, CancellationToken ct)
    {
        var trimmed = path.TrimEnd('/');
        var slash = trimmed.LastIndexOf('/');
        var parentPath = slash <= 0 ? "/" : trimmed[..slash];
        var name = trimmed[(slash + 1)..];
        if (name.Length == 0)
            throw new CliUsageException($"'{path}' names no file");
        return (await client.ResolvePathAsync(parentPath, ct), name);
    }

    private static void Check(int errno, string path)
    {
        if (errno != 0)
            throw new BigFsException(errno, $"{path}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    private static string FormatLine(InodeAttr a, string name)
    {
        var type = a.Type switch
        {
            InodeType.Directory => 'd', InodeType.Symlink => 'l', InodeType.Fifo => 'p', InodeType.Socket => 's',
            InodeType.CharDevice => 'c', InodeType.BlockDevice => 'b', _ => '-',
        };
        var sb = new StringBuilder().Append(type);
        const string rwx = "rwxrwxrwx";
        for (var i = 0; i < 9; i++)
            sb.Append((a.Mode & (1u << (8 - i))) != 0 ? rwx[i] : '-');
        var when = DateTimeOffset.FromUnixTimeMilliseconds(a.MtimeNs / 1_000_000).ToLocalTime();
        return $"{sb} {a.Nlink,3} {a.Uid,5} {a.Gid,5} {a.Size,12} {when:yyyy-MM-dd HH:mm} {name}";
    }

    private static string FormatTime(long ns) =>
        DateTimeOffset.FromUnixTimeMilliseconds(ns / 1_000_000).AddTicks(ns % 1_000_000 / 100).ToString("yyyy-MM-dd HH:mm:ss.fffffff zzz");
}
