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
