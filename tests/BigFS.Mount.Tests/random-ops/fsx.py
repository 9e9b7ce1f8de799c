#!/usr/bin/env python3
"""fsx-style random file I/O checked against an in-memory model: writes, O_APPEND, reads,
truncates up and down, fsync, close/reopen (sometimes after dropping the page cache), hole
punching, zeroing, fallocate, mmap reads and writes, copy_file_range, on three files at once.
usage: fsx.py DIR SEED OPS [MAX_FILE_SIZE]; prints "ok seed N" or the failing op and its history."""
import ctypes, mmap, os, random, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 1, 2, 0x10
d, seed, nops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
maxsize = int(sys.argv[4]) if len(sys.argv) > 4 else 8 << 20
rng = random.Random(seed)
nfiles = 3
paths = [os.path.join(d, f"fsx{seed}-{i}") for i in range(nfiles)]
models = [bytearray() for _ in range(nfiles)]
fds = [os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644) for p in paths]
log = []
def fail(msg, i):
    m = models[i]
    print(f"FAIL seed {seed}: {msg}", file=sys.stderr)
    for l in log[-25:]: print("  ", l, file=sys.stderr)
    sys.exit(1)
def check_range(i, off, ln, got, what):
    exp = bytes(models[i][off:off+ln])
    if got != exp:
        bad = next((k for k in range(min(len(got), len(exp))) if got[k] != exp[k]), min(len(got), len(exp)))
        fail(f"{what} file {i} off {off} len {ln}: got {len(got)} bytes, expected {len(exp)}; first diff at +{bad} (abs {off+bad}) got {got[bad:bad+8].hex()} exp {exp[bad:bad+8].hex()}", i)
def rand_off(i):
    size = len(models[i])
    r = rng.random()
    if r < 0.3: return rng.randrange(0, size + 1) if size else 0
    if r < 0.5: return size
    if r < 0.6: return rng.randrange(0, maxsize)
    return rng.randrange(0, max(size, 1))
def rand_len():
    r = rng.random()
    if r < 0.4: return rng.randrange(1, 4096)
    if r < 0.8: return rng.randrange(1, 256 << 10)
    return rng.randrange(1, 3 << 20)
for n in range(nops):
    i = rng.randrange(nfiles); fd = fds[i]; m = models[i]
    op = rng.choices(["write", "read", "trunc", "fsync", "reopen", "punch", "zero", "falloc", "mmapw", "mmapr", "copy", "size", "readall", "append"],
                     [30, 20, 6, 4, 6, 3, 2, 2, 3, 3, 3, 3, 2, 3])[0]
    if op == "write":
        off = min(rand_off(i), maxsize - 1); ln = min(rand_len(), maxsize - off)
        data = rng.randbytes(ln) if rng.random() < 0.7 else bytes([rng.randrange(256)]) * ln
        log.append(f"{n} write {i} off {off} len {ln}")
        if os.pwrite(fd, data, off) != ln: fail("short write", i)
        if off > len(m): m.extend(b"\0" * (off - len(m)))
        m[off:off+ln] = data
    elif op == "append":
        ln = min(rand_len(), 64 << 10); data = rng.randbytes(ln)
        log.append(f"{n} append {i} len {ln} at {len(m)}")
        afd = os.open(paths[i], os.O_WRONLY | os.O_APPEND); os.write(afd, data); os.close(afd)
        m.extend(data)
    elif op == "read":
        off = rand_off(i); ln = rand_len()
        log.append(f"{n} read {i} off {off} len {ln}")
        check_range(i, off, ln, os.pread(fd, ln, off), "read")
    elif op == "readall":
        log.append(f"{n} readall {i}")
        with open(paths[i], "rb") as f: got = f.read()
        check_range(i, 0, len(m) + 10, got, "readall")
    elif op == "trunc":
        size = rng.randrange(0, maxsize) if rng.random() < 0.5 else rng.randrange(0, len(m) + 1)
        log.append(f"{n} trunc {i} to {size}")
        os.ftruncate(fd, size)
        if size < len(m): del m[size:]
        else: m.extend(b"\0" * (size - len(m)))
    elif op == "fsync":
        log.append(f"{n} fsync {i}"); os.fsync(fd)
    elif op == "reopen":
        log.append(f"{n} reopen {i}"); os.close(fd)
        if rng.random() < 0.3:
            with open("/proc/sys/vm/drop_caches", "w") as f: f.write("3")
            log.append(f"{n} (dropped caches)")
        fds[i] = os.open(paths[i], os.O_RDWR)
        st = os.fstat(fds[i])
        if st.st_size != len(m): fail(f"size after reopen {st.st_size} != {len(m)}", i)
    elif op in ("punch", "zero", "falloc"):
        if not m: continue
        off = rng.randrange(0, len(m)); ln = rand_len()
        mode = {"punch": FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "zero": FALLOC_FL_ZERO_RANGE, "falloc": 0}[op]
        log.append(f"{n} {op} {i} off {off} len {ln}")
        if libc.fallocate(fd, mode, off, ln) != 0:
            e = ctypes.get_errno()
            if e == 95: log.append("  (EOPNOTSUPP)"); continue
            fail(f"{op} failed errno {e}", i)
        if op in ("punch", "zero"):
            end = min(off + ln, len(m)) if op == "punch" else off + ln
            if end > len(m): m.extend(b"\0" * (end - len(m)))
            m[off:end] = b"\0" * (end - off)
        else:
            if off + ln > len(m): m.extend(b"\0" * (off + ln - len(m)))
    elif op in ("mmapw", "mmapr"):
        if len(m) == 0: continue
        off = rng.randrange(0, len(m)); ln = min(rng.randrange(1, 128 << 10), len(m) - off)
        log.append(f"{n} {op} {i} off {off} len {ln}")
        base = off & ~(mmap.PAGESIZE - 1)
        mm = mmap.mmap(fd, off + ln - base, offset=base)
        if op == "mmapw":
            data = rng.randbytes(ln); mm[off-base:off-base+ln] = data; m[off:off+ln] = data
            if rng.random() < 0.5: mm.flush()
        else:
            check_range(i, off, ln, mm[off-base:off-base+ln], "mmap read")
        mm.close()
    elif op == "copy":
        j = rng.randrange(nfiles)
        if not models[j]: continue
        src_off = rng.randrange(0, len(models[j])); ln = min(rand_len(), len(models[j]) - src_off)
        dst_off = min(rand_off(i), maxsize - 1); ln = min(ln, maxsize - dst_off)
        if i == j and abs(src_off - dst_off) < ln: continue
        log.append(f"{n} copy {j}@{src_off} -> {i}@{dst_off} len {ln}")
        done = 0
        while done < ln:
            k = os.copy_file_range(fds[j], fd, ln - done, src_off + done, dst_off + done)
            if k <= 0: fail(f"copy_file_range returned {k}", i)
            done += k
        data = bytes(models[j][src_off:src_off+ln])
        if dst_off > len(m): m.extend(b"\0" * (dst_off - len(m)))
        m[dst_off:dst_off+ln] = data
    elif op == "size":
        st = os.fstat(fd); log.append(f"{n} size {i} = {st.st_size}")
        if st.st_size != len(m): fail(f"fstat size {st.st_size} != model {len(m)}", i)
for i in range(nfiles):
    os.close(fds[i])
with open("/proc/sys/vm/drop_caches", "w") as f: f.write("3")
for i in range(nfiles):
    with open(paths[i], "rb") as f: got = f.read()
    check_range(i, 0, len(models[i]) + 10, got, "final read")
    os.unlink(paths[i])
print(f"ok seed {seed}: {nops} ops")
