#!/usr/bin/env python3
"""Namespace differential test: the same seeded random operations on two roots (a local ext4
directory and a BigFS mount), comparing every result (value or errno) and, every 200
operations, the whole trees (types, modes, owners, link counts, symlink targets, contents,
user xattrs). usage: nsdiff.py LOCAL_DIR MOUNT_DIR SEED OPS"""
import ctypes, errno, os, random, stat, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
a, b, seed, nops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
names = ["a", "b", "c", "d", "dir1", "dir2", "x" * 200, "sp ace", "ü"]
log = []
def rpath():
    depth = rng.choices([0, 1, 2, 3], [1, 4, 3, 1])[0]
    return "/".join(rng.choice(names) for _ in range(depth + 1))
def run(root, op, args):
    p = [(x[1:] if x.startswith("=") else os.path.join(root, x)) if isinstance(x, str) else x for x in args]
    try:
        if op == "mkdir": os.mkdir(p[0], 0o755)
        elif op == "rmdir": os.rmdir(p[0])
        elif op == "create":
            fd = os.open(p[0], os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK | (os.O_EXCL if p[1] else 0), 0o644); os.write(fd, p[2].encode()); os.close(fd)
        elif op == "unlink": os.unlink(p[0])
        elif op == "rename": os.rename(p[0], p[1])
        elif op == "renamex":  # renameat2 with RENAME_NOREPLACE (1), RENAME_EXCHANGE (2) or both (EINVAL)
            r = libc.renameat2(-100, p[0].encode(), -100, p[1].encode(), p[2])
            if r != 0: return "E" + errno.errorcode.get(ctypes.get_errno(), "?")
        elif op == "link": os.link(p[0], p[1])
        elif op == "symlink": os.symlink(p[1], p[0])
        elif op == "chmod": os.chmod(p[0], p[1])
        elif op == "truncate": os.truncate(p[0], p[1])
        elif op == "readlink": return os.readlink(p[0])
        elif op == "listdir": return sorted(os.listdir(p[0]))
        elif op == "stat":
            st = os.lstat(p[0]); return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, st.st_size if not stat.S_ISDIR(st.st_mode) else 0)
        elif op == "read":
            fd = os.open(p[0], os.O_RDONLY | os.O_NONBLOCK)
            try: return os.read(fd, 1 << 20)
            finally: os.close(fd)
        elif op == "setxattr": os.setxattr(p[0], "user.k", p[1].encode())
        elif op == "getxattr": return os.getxattr(p[0], "user.k")
        elif op == "mkfifo": os.mkfifo(p[0], 0o640)
        elif op == "chown": os.chown(p[0], p[1], p[1], follow_symlinks=False)
        elif op == "removexattr": os.removexattr(p[0], "user.k")
        elif op == "listxattr": return sorted(x for x in os.listxattr(p[0]) if x.startswith("user."))
        elif op == "scandir": return sorted((e.name, e.is_dir(follow_symlinks=False), e.is_symlink(), e.is_file(follow_symlinks=False)) for e in os.scandir(p[0]))
        elif op == "openunlink":
            fd = os.open(p[0], os.O_RDWR | os.O_NONBLOCK)
            try:
                os.unlink(p[0]); os.pwrite(fd, b"after-unlink", 3); return os.pread(fd, 100, 0)
            finally: os.close(fd)
        elif op == "append":
            fd = os.open(p[0], os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
            try: os.write(fd, p[1].encode())
            finally: os.close(fd)
        elif op == "trunc_open":
            fd = os.open(p[0], os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK)
            try: os.write(fd, p[1].encode())
            finally: os.close(fd)
        elif op == "stat_follow":
            st = os.stat(p[0]); return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, st.st_uid, st.st_size if not stat.S_ISDIR(st.st_mode) else 0)
        elif op == "utime":
            os.utime(p[0], ns=(p[1], p[1] + 7), follow_symlinks=False); st = os.lstat(p[0]); return (st.st_atime_ns, st.st_mtime_ns)
        return "ok"
    except OSError as e:
        return "E" + errno.errorcode.get(e.errno, str(e.errno))
def tree(root):
    out = []
    for dp, dns, fns in os.walk(root):
        for n in sorted(dns + fns):
            full = os.path.join(dp, n); st = os.lstat(full)
            rel = os.path.relpath(full, root)
            item = (rel, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink, st.st_uid, st.st_gid)
            if stat.S_ISLNK(st.st_mode): item += (os.readlink(full),)
            elif stat.S_ISREG(st.st_mode): item += (open(full, "rb").read(), sorted(x for x in os.listxattr(full) if x.startswith("user.")))
            out.append(item)
    return sorted(out)
ops = ["mkfifo", "chown", "removexattr", "listxattr", "scandir", "openunlink", "append", "trunc_open", "stat_follow", "mkdir", "rmdir", "create", "unlink", "rename", "renamex", "link", "symlink", "chmod", "truncate", "readlink", "listdir", "stat", "read", "setxattr", "getxattr", "utime"]
for n in range(nops):
    op = rng.choices(ops, [2, 2, 2, 2, 3, 2, 3, 3, 3, 10, 5, 10, 6, 10, 4, 5, 4, 3, 3, 2, 3, 5, 3, 2, 2, 2])[0]
    if op in ("rename", "link"): args = [rpath(), rpath()]
    elif op == "renamex": args = [rpath(), rpath(), rng.choice([1, 2, 3])]
    elif op == "create": args = [rpath(), rng.random() < 0.5, "=" + "x" * rng.randrange(0, 100)]
    elif op == "symlink": args = [rpath(), "=" + rpath()]
    elif op == "chmod": args = [rpath(), rng.choice([0o644, 0o600, 0o755, 0o1777, 0o2755])]
    elif op == "truncate": args = [rpath(), rng.randrange(0, 5000)]
    elif op == "setxattr": args = [rpath(), "=v" + str(rng.randrange(100))]
    elif op == "chown": args = [rpath(), rng.choice([0, 1001, 1002])]
    elif op in ("append", "trunc_open"): args = [rpath(), "=" + "y" * rng.randrange(0, 50)]
    elif op == "utime": args = [rpath(), rng.randrange(0, 2**40) * 1000 + rng.randrange(1000)]
    else: args = [rpath()]
    ra, rb = run(a, op, args), run(b, op, args)
    log.append(f"{n} {op} {args} -> {ra!r:.60} / {rb!r:.60}")
    if ra != rb:
        print(f"FAIL seed {seed} op {n}: {op} {args}: local {ra!r:.200} mount {rb!r:.200}", file=sys.stderr)
        for l in log[-15:]: print("  ", l, file=sys.stderr)
        sys.exit(1)
    if n % 200 == 199 or n == nops - 1:
        ta, tb = tree(a), tree(b)
        if ta != tb:
            da = {x[0]: x for x in ta}; db = {x[0]: x for x in tb}
            diffs = [(k, da.get(k, None) and da[k][:5], db.get(k, None) and db[k][:5]) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)]
            print(f"FAIL seed {seed} tree differs after op {n}: {diffs[:10]}", file=sys.stderr)
            for l in log[-15:]: print("  ", l, file=sys.stderr)
            sys.exit(1)
print(f"ok seed {seed}: {nops} ops")
