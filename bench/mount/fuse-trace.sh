#!/usr/bin/env bash
# Where a command's time goes in FUSE: runs COMMAND with the kernel's fuse_request_send and
# fuse_request_end trace events on, pairs them by request, and prints per opcode the count,
# total time, p50 and p90 (µs) — every FUSE filesystem on the machine is counted, so run it
# on a quiet one. Needs root and a kernel with the fuse trace events (6.x).
# usage: bench/mount/fuse-trace.sh COMMAND [ARGS...]      e.g. fuse-trace.sh cp -a /usr/share/doc /mnt/bigfs/doc
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs nodev $T
[ -d $T/events/fuse ] || { echo "fuse-trace: this kernel has no fuse trace events" >&2; exit 1; }
out=$(mktemp)
stop() {
  echo 0 > $T/tracing_on
  echo 0 > $T/events/fuse/fuse_request_send/enable
  echo 0 > $T/events/fuse/fuse_request_end/enable
}
trap 'stop; rm -f "$out"' EXIT
echo 0 > $T/tracing_on; echo > $T/trace; echo 65536 > $T/buffer_size_kb
echo 1 > $T/events/fuse/fuse_request_send/enable; echo 1 > $T/events/fuse/fuse_request_end/enable
echo 1 > $T/tracing_on
start=$(date +%s.%N)
"$@"
end=$(date +%s.%N)
echo 0 > $T/tracing_on
cat $T/trace > "$out"
awk -v s="$start" -v e="$end" -v c="$*" 'BEGIN { printf "%s took %.2f s\n", c, e - s }'
python3 - "$out" <<'PY'
import collections, re, sys
sent, times, lost = {}, collections.defaultdict(list), 0
for line in open(sys.argv[1]):
    m = re.search(r' (\d+\.\d+): fuse_request_(send|end): .*?req (\d+)(.*)', line)
    if not m:
        lost += 'LOST' in line
        continue
    t, kind, req, rest = float(m.group(1)), m.group(2), m.group(3), m.group(4)
    if kind == 'send':
        op = re.search(r'\((\w+)\)', rest)
        sent[req] = (t, op.group(1) if op else '?')
    elif req in sent:
        t0, op = sent.pop(req)
        times[op].append((t - t0) * 1e6)
print(f"{'opcode':18} {'count':>7} {'total ms':>10} {'p50 us':>8} {'p90 us':>8}")
for op, v in sorted(times.items(), key=lambda x: -sum(x[1])):
    v.sort()
    print(f"{op:18} {len(v):7} {sum(v)/1e3:10.1f} {v[len(v)//2]:8.0f} {v[int(len(v)*.9)]:8.0f}")
if lost or sent:
    print(f"({len(sent)} requests without an end in the trace{', events lost: raise buffer_size_kb' if lost else ''})")
PY
