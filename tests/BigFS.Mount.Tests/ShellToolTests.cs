using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>Ordinary shell tools on a BigFS mount behave as on a local disk.</summary>
public class ShellToolTests : IAsyncLifetime
{
    private MountedCluster _m = null!;
    private string Mnt => _m.MountPoint;

    public async Task InitializeAsync() => _m = await MountedCluster.StartAsync();

    public async Task DisposeAsync() => await _m.DisposeAsync();

    /// <summary>A real tree of thousands of files: the installed .NET SDK's shared framework and headers.</summary>
    private static string SourceTree()
    {
        var include = "/usr/include";
        Assert.True(Directory.Exists(include), "/usr/include is needed as a real tree to copy");
        return include;
    }

    [Fact]
    public async Task CpATreeThenDiffDuAndRmRfLeaveNoLiveChunks()
    {
        var src = SourceTree();
        var files = int.Parse((await RunAsync($"find {src} -type f | wc -l")).Trim());
        Assert.True(files > 1000, $"expected thousands of files in {src}, found {files}");

        await RunAsync($"cp -a {src} {Quote(Mnt)}/tree", timeout: TimeSpan.FromMinutes(8));
        await RunAsync($"diff -r --no-dereference {src} {Quote(Mnt)}/tree", timeout: TimeSpan.FromMinutes(5));
        // du: the same bytes in files and symlinks (directory sizes are filesystem-specific), and
        // the space used covers them (no file is counted as a hole).
        const string bytesOf = "-type f,l -printf '%s\\n' | awk '{s+=$1} END {print s}'";
        var srcBytes = long.Parse(await RunAsync($"find {src} {bytesOf}"));
        var dstBytes = long.Parse(await RunAsync($"find {Quote(Mnt)}/tree {bytesOf}"));
        Assert.Equal(srcBytes, dstBytes);
        var used = long.Parse((await RunAsync($"du -s -B1 {Quote(Mnt)}/tree")).Split('\t')[0]);
        Assert.InRange(used, srcBytes, srcBytes + files * 4096L + (16L << 20));
        Assert.Equal(files.ToString(), (await RunAsync($"find {Quote(Mnt)}/tree -type f | wc -l")).Trim());

        await RunAsync($"rm -rf {Quote(Mnt)}/tree", timeout: TimeSpan.FromMinutes(5));
        Assert.Equal("", await RunAsync($"ls -A {Quote(Mnt)}"));
        await Poll.UntilAsync(async () =>
        {
            var status = await _m.Cluster.StatusAsync();
            return status.LiveChunks == 0 && status.ChunksTotal == 0;
        }, TimeSpan.FromSeconds(60), "zero chunks after rm -rf and GC");
    }

    [Fact]
    public async Task CpWithinTheMountSharesChunksInsteadOfCopyingBytes()
    {
        // coreutils' cp copies with copy_file_range; the mount makes that one metadata change.
        var data = FileHelpers.RandomBytes(20 << 20, seed: 41);
        await File.WriteAllBytesAsync($"{Mnt}/a.bin", data);
        await Poll.UntilAsync(async () => (await _m.Cluster.StatusAsync()).ChunksUncommitted == 0, TimeSpan.FromSeconds(30), "a.bin committed");
        var chunks = (await _m.Cluster.StatusAsync()).LiveChunks;

        await RunAsync($"cp {Quote(Mnt)}/a.bin {Quote(Mnt)}/b.bin");
        Assert.Equal(chunks, (await _m.Cluster.StatusAsync()).LiveChunks);   // no chunk was written
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{Mnt}/b.bin")));

        // The copies are independent files: writing one leaves the other as it was.
        await RunAsync($"printf changed | dd of={Quote(Mnt)}/b.bin bs=1 seek=5000000 conv=notrunc status=none");
        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        Assert.Equal(FileHelpers.Sha256(data), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{Mnt}/a.bin")));
        var changed = data.ToArray();
        "changed"u8.CopyTo(changed.AsSpan(5_000_000));
        Assert.Equal(FileHelpers.Sha256(changed), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{Mnt}/b.bin")));

        // Writes still buffered in the mount, on either side, are in the copy: the source's
        // before it, the target's under it. Holes stay holes.
        var script = $$"""
            import os
            src = os.open("{{Mnt}}/s.bin", os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(src, b"S" * 100000, 0)
            os.pwrite(src, b"T" * 1000, 3 << 20)
            dst = os.open("{{Mnt}}/d.bin", os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(dst, b"D" * 200000, 0)
            print(os.copy_file_range(src, dst, 5 << 20, 0, 50000))
            expected = b"D" * 50000 + b"S" * 100000 + bytes((3 << 20) - 100000) + b"T" * 1000   # the source's hole replaces D
            print(os.pread(dst, 8 << 20, 0) == expected, os.fstat(dst).st_size, os.lseek(dst, 0, os.SEEK_HOLE))
            """;
        Assert.Equal($"{(3 << 20) + 1000}\nTrue {50000 + (3 << 20) + 1000} 150000", (await RunAsync($"python3 -c {Quote(script)}")).Trim());

        // Each file's chunks stay while any file references them.
        File.Delete($"{Mnt}/a.bin");
        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        Assert.Equal(FileHelpers.Sha256(changed), FileHelpers.Sha256(await File.ReadAllBytesAsync($"{Mnt}/b.bin")));
        await RunAsync($"rm {Quote(Mnt)}/b.bin {Quote(Mnt)}/s.bin {Quote(Mnt)}/d.bin");
        await Poll.UntilAsync(async () => (await _m.Cluster.StatusAsync()) is { LiveChunks: 0, ChunksTotal: 0 }, TimeSpan.FromSeconds(60), "zero chunks after rm and GC");
    }

    [Fact]
    public async Task TarCreateAndExtractRoundTrip()
    {
        await RunAsync($"mkdir -p {Quote(Mnt)}/src && cp -a /usr/include/linux {Quote(Mnt)}/src/");
        await RunAsync($"tar -C {Quote(Mnt)}/src -cf {Quote(Mnt)}/a.tar linux");
        await RunAsync($"mkdir {Quote(Mnt)}/out && tar -C {Quote(Mnt)}/out -xf {Quote(Mnt)}/a.tar");
        await RunAsync($"diff -r /usr/include/linux {Quote(Mnt)}/out/linux");
        // And a tar of the mount compared with a tar of the source, member by member.
        Assert.Equal(
            await RunAsync("tar -C /usr/include -cf - linux | tar -tvf - | awk '{print $3, $6}' | sort"),
            await RunAsync($"tar -C {Quote(Mnt)}/out -cf - linux | tar -tvf - | awk '{{print $3, $6}}' | sort"));
    }

    [Fact]
    public async Task GitInitCommitAndFsckInsideTheMount()
    {
        var env = new Dictionary<string, string> { ["GIT_AUTHOR_NAME"] = "t", ["GIT_AUTHOR_EMAIL"] = "t@t", ["GIT_COMMITTER_NAME"] = "t", ["GIT_COMMITTER_EMAIL"] = "t@t", ["HOME"] = "/tmp" };
        var repo = $"{Mnt}/repo";
        await RunAsync($"git init -q {Quote(repo)} && cp -a /usr/include/linux {Quote(repo)}/", environment: env);
        await RunAsync("git add -A && git commit -qm first && echo change >> linux/fs.h && git commit -qam second", repo, environment: env);
        await RunAsync("git gc -q && git fsck --full --strict", repo, environment: env);
        Assert.Contains("second", await RunAsync("git log --oneline", repo, environment: env));
        Assert.Equal("", (await RunAsync("git status --porcelain", repo, environment: env)).Trim());
    }

    [Fact]
    public async Task RsyncArchiveIsCompleteAndASecondRunTransfersNothing()
    {
        await RunAsync($"rsync -a /usr/include/linux/ {Quote(Mnt)}/r/");
        await RunAsync($"diff -r /usr/include/linux {Quote(Mnt)}/r");
        var second = await RunAsync($"rsync -a --itemize-changes /usr/include/linux/ {Quote(Mnt)}/r/");
        Assert.Equal("", second.Trim());
    }

    [Fact]
    public async Task OneGiBWrittenWithDdHasTheSameSha256BeforeAndAfterDroppingCaches()
    {
        var local = Path.Combine(_m.Cluster.Root, "random.bin");
        await RunAsync($"head -c 1073741824 /dev/urandom > {Quote(local)}", timeout: TimeSpan.FromMinutes(3));
        var expected = (await RunAsync($"sha256sum < {Quote(local)}")).Split(' ')[0];
        await RunAsync($"dd if={Quote(local)} of={Quote(Mnt)}/random.bin bs=1M conv=fsync status=none", timeout: TimeSpan.FromMinutes(5));
        File.Delete(local);
        Assert.Equal(expected, (await RunAsync($"sha256sum < {Quote(Mnt)}/random.bin", timeout: TimeSpan.FromMinutes(3))).Split(' ')[0]);
        await RunAsync("sync; echo 3 > /proc/sys/vm/drop_caches");
        Assert.Equal(expected, (await RunAsync($"sha256sum < {Quote(Mnt)}/random.bin", timeout: TimeSpan.FromMinutes(3))).Split(' ')[0]);
        Assert.Equal("1073741824", (await RunAsync($"stat -c %s {Quote(Mnt)}/random.bin")).Trim());
    }

    [Fact]
    public async Task SortOfALargeFile()
    {
        await RunAsync($"seq 1 2000000 | shuf --random-source=<(yes) > {Quote(Mnt)}/numbers");
        await RunAsync($"sort -n -S 16M -T {Quote(Mnt)} {Quote(Mnt)}/numbers > {Quote(Mnt)}/sorted", timeout: TimeSpan.FromMinutes(3));
        Assert.Equal(await RunAsync("seq 1 2000000 | sha256sum"), await RunAsync($"sha256sum < {Quote(Mnt)}/sorted"));
    }

    [Fact]
    public async Task EditorSavePatternWriteTempThenRenameOver()
    {
        await RunAsync($"printf 'one\\ntwo\\n' > {Quote(Mnt)}/doc.txt && ln {Quote(Mnt)}/doc.txt {Quote(Mnt)}/doc.link");
        // What vim/emacs/sed -i do: write a new file beside, fsync, rename over the original.
        await RunAsync($"sed -i 's/two/three/' {Quote(Mnt)}/doc.txt");
        await RunAsync($"cd {Quote(Mnt)} && printf 'fresh\\n' > .doc.txt.swp && sync .doc.txt.swp && mv .doc.txt.swp doc.txt");
        Assert.Equal("fresh\n", await File.ReadAllTextAsync($"{Mnt}/doc.txt"));
        Assert.Equal("one\ntwo\n", await File.ReadAllTextAsync($"{Mnt}/doc.link"));
        Assert.Equal("", await RunAsync($"ls -A {Quote(Mnt)} | grep -v -e '^doc.txt$' -e '^doc.link$' || true"));
    }
}
