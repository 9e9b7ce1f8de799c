using BigFS.Protocol;
using static BigFS.Testing.Shell;

namespace BigFS.Mount.Tests;

/// <summary>fcntl and flock locks held on the metadata server: processes on two mounts exclude each other.</summary>
public class ClusterLockTests
{
    /// <summary>
    /// A process holding an exclusive flock on a file until <see cref="ReleaseAsync"/>. Disposing
    /// it ends the process whatever happened (a failed test, a dead mount): its polling loop would
    /// otherwise outlive the test (and the test host) and keep spawning processes.
    /// </summary>
    private sealed record FlockHolder(Task<Result> Process, string Release) : IAsyncDisposable
    {
        /// <summary>Starts the holder and returns once it holds the lock.</summary>
        public static async Task<FlockHolder> StartAsync(MountedCluster m, string path)
        {
            var id = Guid.NewGuid().ToString("n");
            var (held, release) = (Path.Combine(m.Cluster.Root, "held-" + id), Path.Combine(m.Cluster.Root, "release-" + id));
            var process = TryRunAsync($"flock {Quote(path)} -c 'touch {Quote(held)}; while [ ! -e {Quote(release)} ]; do sleep 0.05; done'", timeout: TimeSpan.FromSeconds(120));
            var holder = new FlockHolder(process, release);
            try
            {
                await Poll.UntilAsync(() => File.Exists(held) || process.IsCompleted, TimeSpan.FromSeconds(10), $"a process to take the flock on {path}");
                Assert.False(process.IsCompleted, "the holder ended before taking the lock");
                return holder;
            }
            catch
            {
                await holder.DisposeAsync();
                throw;
            }
        }

        public async Task ReleaseAsync()
        {
            await File.WriteAllTextAsync(Release, "");
            Assert.Equal(0, (await Process).ExitCode);
        }

        public async ValueTask DisposeAsync()
        {
            if (Process.IsCompleted)
                return;
            await File.WriteAllTextAsync(Release, "");
            await Process;
        }
    }

    /// <summary>Runs a Python script that finds fcntl, os, struct, time and the two mount points (a, b) in place; its output lines.</summary>
    private static async Task<string[]> RunOnBothAsync(string script, string a, string b)
    {
        const string prelude = "import fcntl, os, struct, sys, time\na, b = sys.argv[1], sys.argv[2]\n";
        return (await RunAsync($"python3 -c {Quote(prelude + script)} {Quote(a)} {Quote(b)}", timeout: TimeSpan.FromSeconds(60))).Trim().Split('\n');
    }

    [Fact]
    public async Task FlockOnOneMountExcludesProcessesOnTheOther()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/lock", "");
        await using var holder = await FlockHolder.StartAsync(m, $"{a}/lock");

        Assert.NotEqual(0, (await TryRunAsync($"flock -n {Quote(b)}/lock -c true")).ExitCode);
        Assert.NotEqual(0, (await TryRunAsync($"flock -n -s {Quote(b)}/lock -c true")).ExitCode);   // shared waits for exclusive too
        // TryLock, the form the fast metadata transport carries, never waits, even when asked to.
        var client = await m.Cluster.ClientAsync();
        var session = (await client.Namespace.OpenSessionAsync(new OpenSessionRequest())).SessionId;
        var ino = ulong.Parse((await RunAsync($"stat -c %i {Quote(a)}/lock")).Trim());
        var tried = await client.Namespace.TryLockAsync(new LockRequest { SessionId = session, Ino = ino, Owner = 1, Flock = true, Type = LockType.LockWrite, Wait = true });
        Assert.Equal(11, tried.Errno);   // EAGAIN
        // An interrupted wait leaves nothing behind.
        Assert.Equal(124, (await TryRunAsync($"timeout 1 flock {Quote(b)}/lock -c true")).ExitCode);
        var waiter = TryRunAsync($"flock {Quote(b)}/lock -c 'echo got'", timeout: TimeSpan.FromSeconds(60));
        await Task.Delay(300);   // let it block (it must still be waiting below)
        Assert.False(waiter.IsCompleted);

        await holder.ReleaseAsync();
        Assert.Equal("got", (await waiter).Stdout.Trim());
        await RunAsync($"flock -n {Quote(a)}/lock -c true");
    }

    [Fact]
    public async Task ACounterIncrementedUnderFlockFromTwoMountsLosesNoIncrement()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/counter", "0\n");
        await File.WriteAllTextAsync($"{a}/counter.lock", "");
        string Loop(string mnt) =>
            $"for i in $(seq 100); do flock {Quote(mnt)}/counter.lock sh -c 'n=$(cat {Quote(mnt)}/counter); echo $((n + 1)) > {Quote(mnt)}/counter'; done";
        await Task.WhenAll(RunAsync(Loop(a), timeout: TimeSpan.FromMinutes(3)), RunAsync(Loop(b), timeout: TimeSpan.FromMinutes(3)));
        Assert.Equal("200", (await File.ReadAllTextAsync($"{b}/counter")).Trim());
        Assert.Equal("200", (await File.ReadAllTextAsync($"{a}/counter")).Trim());
    }

    [Fact]
    public async Task WithLocalLocksOnlyTheSameMountsProcessesExcludeEachOther()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2, mountArgs: "-o local_locks");
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/lock", "");
        await using var holder = await FlockHolder.StartAsync(m, $"{a}/lock");
        Assert.NotEqual(0, (await TryRunAsync($"flock -n {Quote(a)}/lock -c true")).ExitCode);
        await RunAsync($"flock -n {Quote(b)}/lock -c true");   // the kernel of one machine knows nothing of the other
        await holder.ReleaseAsync();
    }

    [Fact]
    public async Task RecordLocksConflictByRangeAcrossMountsAndCarryTheDataWrittenUnderThem()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        // A locks bytes 0-99, writes without closing and unlocks; a process on B tests and
        // takes ranges meanwhile, then waits for the range and must read A's write.
        var script = """
            fa = os.open(a + "/rec", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.lockf(fa, fcntl.LOCK_EX, 100, 0)
            r, w = os.pipe()
            if os.fork() == 0:
                fb = os.open(b + "/rec", os.O_RDWR)
                try:
                    fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
                    print("overlap granted")
                except OSError as e:
                    print("overlap", e.strerror)
                fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 200)
                print("disjoint granted")
                t = struct.unpack("hhqqi", fcntl.fcntl(fb, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 40, 20, 0)))
                print("getlk", t[0] == fcntl.F_WRLCK, t[2], t[3])
                os.write(w, b"x")
                fcntl.lockf(fb, fcntl.LOCK_EX, 10, 50)
                os.lseek(fb, 0, 0)
                print("read", os.read(fb, 100).decode())
                os._exit(0)
            os.read(r, 1)
            time.sleep(0.5)
            os.write(fa, b"written under the lock")
            fcntl.lockf(fa, fcntl.LOCK_UN, 100, 0)
            os.wait()
            """;
        var lines = await RunOnBothAsync(script, a, b);
        Assert.Equal(["overlap Resource temporarily unavailable", "disjoint granted", "getlk True 0 100", "read written under the lock"], lines);
    }

    [Fact]
    public async Task OpenFileDescriptionLocksGoAtTheLastCloseAndProcessLocksAtAnyClose()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var script = """
            whole = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
            def other_mount_can_lock(name):
                fb = os.open(b + "/" + name, os.O_RDWR)
                try:
                    fcntl.fcntl(fb, fcntl.F_OFD_SETLK, whole)
                    return "free"
                except OSError:
                    return "held"
                finally:
                    os.close(fb)
            for name in ("ofd", "posix"):
                open(a + "/" + name, "w").close()
            # An OFD lock belongs to the open file: held while it is open, gone at its last close.
            fd = os.open(a + "/ofd", os.O_RDWR)
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, whole)
            held = other_mount_can_lock("ofd")
            os.close(fd)
            time.sleep(0.5)   # the kernel's release follows the close
            print("ofd", held, other_mount_can_lock("ofd"))
            # A process's lock goes at any close of the file, and one taken again through
            # another descriptor stays after the first descriptor's release.
            fd1, fd2 = os.open(a + "/posix", os.O_RDWR), os.open(a + "/posix", os.O_RDWR)
            fcntl.lockf(fd1, fcntl.LOCK_EX)
            os.close(fd1)
            gone = other_mount_can_lock("posix")
            fcntl.lockf(fd2, fcntl.LOCK_EX)
            time.sleep(0.5)
            print("posix", gone, other_mount_can_lock("posix"))
            """;
        Assert.Equal(["ofd held free", "posix free held"], await RunOnBothAsync(script, a, b));
    }

    [Fact]
    public async Task TwoSqliteWritersOnTwoMountsLoseNoTransaction()
    {
        // SQLite serializes writers with fcntl locks and expects a lock holder to see the last
        // holder's writes: both across mounts. With each kernel locking alone (local_locks),
        // this same run loses rows and fails with "disk I/O error".
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        var writer = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1], timeout=60)
            db.execute("create table if not exists t (who text, i integer)")
            db.commit()
            for i in range(int(sys.argv[3])):
                db.execute("insert into t values (?, ?)", (sys.argv[2], i))
                db.commit()
            """;
        await RunAsync($"python3 -c {Quote(writer)} {Quote(a)}/db init 1");
        var onA = TryRunAsync($"python3 -c {Quote(writer)} {Quote(a)}/db A 150", timeout: TimeSpan.FromMinutes(3));
        var onB = TryRunAsync($"python3 -c {Quote(writer)} {Quote(b)}/db B 150", timeout: TimeSpan.FromMinutes(3));
        foreach (var (who, run) in new[] { ("A", await onA), ("B", await onB) })
            Assert.True(run.ExitCode == 0, $"{who}: {run.Stderr}\nmount A:\n{m.Mounts[0].Log}\nmount B:\n{m.Mounts[1].Log}");
        var check = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
            + "print(db.execute('select who, count(distinct i) from t group by who order by who').fetchall(), db.execute('pragma integrity_check').fetchone()[0])";
        foreach (var mount in new[] { a, b })
            Assert.Equal("[('A', 150), ('B', 150), ('init', 1)] ok", (await RunAsync($"python3 -c {Quote(check)} {Quote(mount)}/db")).Trim());
    }

    [Fact]
    public async Task LocksGoWithAKilledProcessAndWithAMountThatDied()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2, configure: o => o.SessionLease = TimeSpan.FromSeconds(3));
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/lock", "");

        // A holder killed with SIGKILL: the kernel closes its descriptors, which releases.
        var pidFile = Path.Combine(m.Cluster.Root, "pid");
        _ = TryRunAsync($"exec flock {Quote(b)}/lock sh -c 'echo $$ > {Quote(pidFile)}; exec sleep 100'", timeout: TimeSpan.FromSeconds(120));
        await Poll.UntilAsync(() => File.Exists(pidFile) && File.ReadAllText(pidFile).Trim().Length > 0, TimeSpan.FromSeconds(10), "B's holder");
        Assert.NotEqual(0, (await TryRunAsync($"flock -n {Quote(a)}/lock -c true")).ExitCode);
        await RunAsync($"kill -9 {File.ReadAllText(pidFile).Trim()}");
        await Poll.UntilAsync(async () => (await TryRunAsync($"flock -n {Quote(a)}/lock -c true")).ExitCode == 0, TimeSpan.FromSeconds(10), "the killed holder's lock to go");

        // A whole mount gone (its daemon killed while a process held a lock): its session expires, and with it the lock.
        await using var orphan = await FlockHolder.StartAsync(m, $"{b}/lock");   // never released: its mount dies
        Assert.NotEqual(0, (await TryRunAsync($"flock -n {Quote(a)}/lock -c true")).ExitCode);
        await m.Mounts[1].KillAsync();
        await Poll.UntilAsync(async () => (await TryRunAsync($"flock -n {Quote(a)}/lock -c true")).ExitCode == 0, TimeSpan.FromSeconds(30), "the dead mount's lock to expire with its session");
    }

    /// <summary>Takes a write lock on MINE, then (once the other process holds its own) waits for one on OTHER.</summary>
    private const string CrossLockScript = """
        import errno, fcntl, os, sys, time
        mine, other, ready, peer = sys.argv[1:5]
        fd = os.open(mine, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        open(ready, "w").close()
        while not os.path.exists(peer):
            time.sleep(0.02)
        try:
            fcntl.lockf(os.open(other, os.O_RDWR), fcntl.LOCK_EX)
            print("got")
        except OSError as e:
            print("EDEADLK" if e.errno == errno.EDEADLK else errno.errorcode[e.errno])   # Python names 35 EDEADLOCK
        """;

    [Fact]
    public async Task TwoProcessesOnTwoMountsWaitingForEachOthersLocksAreToldEDEADLK()
    {
        // As on one machine (same script on the local disk, below): of two processes that would
        // wait for each other, the one whose wait closes the cycle gets EDEADLK; once it exits,
        // the other gets its lock.
        async Task<string[]> RunPair(string dirA, string dirB, string tag)
        {
            await File.WriteAllTextAsync($"{dirA}/x", "");
            await File.WriteAllTextAsync($"{dirA}/y", "");
            var (r1, r2) = (Path.Combine(Path.GetTempPath(), $"r1-{tag}-{Guid.NewGuid():n}"), Path.Combine(Path.GetTempPath(), $"r2-{tag}-{Guid.NewGuid():n}"));
            var one = TryRunAsync($"python3 -c {Quote(CrossLockScript)} {Quote(dirA)}/x {Quote(dirA)}/y {r1} {r2}", timeout: TimeSpan.FromSeconds(60));
            var two = TryRunAsync($"python3 -c {Quote(CrossLockScript)} {Quote(dirB)}/y {Quote(dirB)}/x {r2} {r1}", timeout: TimeSpan.FromSeconds(60));
            var outputs = new[] { (await one).Stdout.Trim(), (await two).Stdout.Trim() };
            File.Delete(r1);
            File.Delete(r2);
            return [.. outputs.Order()];
        }
        var local = Directory.CreateTempSubdirectory("bigfs-deadlock-").FullName;
        try
        {
            Assert.Equal(["EDEADLK", "got"], await RunPair(local, local, "local"));
        }
        finally
        {
            Directory.Delete(local, recursive: true);
        }
        await using var m = await MountedCluster.StartAsync(mounts: 2);
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        Assert.Equal(["EDEADLK", "got"], await RunPair(a, b, "mounts"));
    }

    [Fact]
    public async Task ALockAnotherMountTookWhileItsHolderCouldNotReclaimFailsTheHoldersIo()
    {
        // A's daemon is stalled (SIGSTOP) across a metadata restart until the reclaim grace is
        // over; B takes the lock. When A comes back its reclaim fails: the process that still
        // believes it holds the lock must not go on writing as if it did (NFS answers EIO too).
        await using var m = await MountedCluster.StartAsync(mounts: 2, configure: o => o.LockReclaimGrace = TimeSpan.FromSeconds(1));
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/lock", "");
        var (ready, go) = (Path.Combine(m.Cluster.Root, "ready"), Path.Combine(m.Cluster.Root, "go"));
        var script = $$"""
            import errno, fcntl, os, time
            fd = os.open("{{a}}/lock", os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, b"before ")
            open("{{ready}}", "w").close()
            while not os.path.exists("{{go}}"):
                time.sleep(0.05)
            def attempt(f):
                try:
                    f()
                    return "ok"
                except OSError as e:
                    return errno.errorcode[e.errno]
            print(attempt(lambda: os.write(fd, b"after")), attempt(lambda: os.fsync(fd)), attempt(lambda: os.close(fd)))
            """;
        var holder = TryRunAsync($"python3 -c {Quote(script)}", timeout: TimeSpan.FromMinutes(2));
        await Poll.UntilAsync(() => File.Exists(ready) || holder.IsCompleted, TimeSpan.FromSeconds(10), "A's process to take the lock");

        await RunAsync($"kill -STOP {m.Mounts[0].Pid}");
        Task<FlockHolder> taking;
        try
        {
            await m.Cluster.RestartMetaAsync();
            taking = FlockHolder.StartAsync(m, $"{b}/lock");   // granted once the grace is over
            await taking;
        }
        finally
        {
            await RunAsync($"kill -CONT {m.Mounts[0].Pid}");
        }
        await using var other = await taking;
        await Poll.UntilAsync(() => m.Mounts[0].Log.Contains("(1 lost)"), TimeSpan.FromSeconds(30), "A to find its lock gone\n" + m.Mounts[0].Log);

        await File.WriteAllTextAsync(go, "");
        var result = await holder;
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("EIO EIO EIO", result.Stdout.Trim());
        await other.ReleaseAsync();
        // A new open on A locks (once B's release, sent by its kernel after the holder exits, is in) and writes as usual.
        await RunAsync($"flock -w 20 {Quote(a)}/lock sh -c 'echo again >> {Quote(a)}/lock'");
        // cat, not .NET's File API: .NET takes a non-blocking shared flock on open, which fails
        // (EWOULDBLOCK: "being used by another process") until flock(1)'s release, which its
        // kernel sends after the process exits, is in.
        Assert.EndsWith("again\n", await RunAsync($"cat {Quote(a)}/lock"));
    }

    [Fact]
    public async Task ALockHeldAcrossAMetadataServerRestartIsTakenBack()
    {
        await using var m = await MountedCluster.StartAsync(mounts: 2, configure: o => o.LockReclaimGrace = TimeSpan.FromSeconds(8));
        var (a, b) = (m.Mounts[0].MountPoint, m.Mounts[1].MountPoint);
        await File.WriteAllTextAsync($"{a}/lock", "");
        await using var holder = await FlockHolder.StartAsync(m, $"{a}/lock");
        // A process on B waits for the lock across the restart: the stopping server ends its
        // wait (else the wait would hold the server's shutdown), and the mount asks again.
        var waiter = TryRunAsync($"flock {Quote(b)}/lock -c 'echo got'", timeout: TimeSpan.FromMinutes(2));
        await Task.Delay(500);   // let its request reach the server and wait there

        var restart = System.Diagnostics.Stopwatch.StartNew();
        await m.Cluster.RestartMetaAsync();
        Assert.True(restart.Elapsed < TimeSpan.FromSeconds(20), $"the restart took {restart.Elapsed}: a waiting lock held the shutdown");
        // B asks right away (its request waits out the grace) and again once A has reclaimed.
        Assert.NotEqual(0, (await TryRunAsync($"flock -n {Quote(b)}/lock -c true", timeout: TimeSpan.FromSeconds(30))).ExitCode);
        await Poll.UntilAsync(() => m.Mounts[0].Log.Contains("Took back 1 locks"), TimeSpan.FromSeconds(30), "A to take its lock back\n" + m.Mounts[0].Log);
        Assert.Contains("(0 lost)", m.Mounts[0].Log);
        Assert.NotEqual(0, (await TryRunAsync($"flock -n {Quote(b)}/lock -c true")).ExitCode);

        Assert.False(waiter.IsCompleted);

        await holder.ReleaseAsync();
        Assert.Equal("got", (await waiter).Stdout.Trim());
        await RunAsync($"flock -n {Quote(b)}/lock -c true");
    }
}
