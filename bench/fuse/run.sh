#!/usr/bin/env bash
# FUSE benchmark: BigFS.Fuse (managed, samples/BigFS.Fuse.MemoryFs --null) against libfuse3's
# example/null.c, both serving the same thing: a 4 GiB file, mounted over a regular file, that
# reads as zeros and discards writes. Same machine, same run, interleaved repetitions; medians.
# BigFS.Fuse raises the mount's read_ahead_kb to 1024 (design §6); libfuse leaves 128, so
# libfuse is also measured with read_ahead_kb raised by hand ("libfuse-ra").
# Needs root, /dev/fuse, gcc, pkg-config, libfuse3-dev. Usage: bench/fuse/run.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
work=$(mktemp -d /tmp/fusebench.XXXXXX)
trap 'for m in "$work"/mnt-*; do umount -l "$m" 2>/dev/null || true; done; rm -rf "$work"' EXIT

examples=/usr/share/doc/libfuse3-dev/examples
gcc -O2 -Wall "$examples/null.c" $(pkg-config fuse3 --cflags --libs) -o "$work/null_c"
gcc -O2 -Wall bench/fuse/rates.c -o "$work/rates"
# BIGFS_FUSE_DLL: measure another build of the sample (e.g. a copy of the previous commit's) instead.
dll=${BIGFS_FUSE_DLL:-samples/BigFS.Fuse.MemoryFs/bin/Release/net10.0/BigFS.Fuse.MemoryFs.dll}
[ -n "${BIGFS_FUSE_DLL:-}" ] || dotnet build samples/BigFS.Fuse.MemoryFs -c Release -v q -nologo >/dev/null

start() { # impl mountpoint -> pid
  local impl=$1 mp=$2
  : > "$mp"
  # Daemon output goes to a log: an inherited stdout would keep $(start ...) waiting forever.
  if [ "$impl" != bigfs ]; then "$work/null_c" -f "$mp" >>"$work/$impl.log" 2>&1 &
  else dotnet "$dll" "$mp" --null >>"$work/$impl.log" 2>&1 & fi
  local pid=$!
  for _ in $(seq 200); do grep -q " $mp fuse" /proc/mounts && break; sleep 0.05; done
  grep -q " $mp fuse" /proc/mounts || { echo "mount of $impl failed" >&2; exit 1; }
  if [ "$impl" = libfuse-ra ]; then # libfuse with the same read-ahead window BigFS.Fuse sets
    echo 1024 > "/sys/class/bdi/$(awk -v m="$mp" '$5 == m { print $3 }' /proc/self/mountinfo)/read_ahead_kb"
  fi
  echo $pid
}
stop() { umount "$1"; while kill -0 "$2" 2>/dev/null; do sleep 0.05; done; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
ddtime() { dd "$@" bs=1M count=4096 2>&1 | awk '/copied/ { print $(NF-3) }'; } # seconds

declare -A results
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$REPS"); do
  order="bigfs libfuse libfuse-ra"; [ $((rep % 2)) -eq 0 ] && order="libfuse-ra libfuse bigfs" # alternate who goes first
  for impl in $order; do
    mp="$work/mnt-$impl"
    pid=$(start $impl "$mp")
    results[$impl,read1]+="$(mbps $((4096 << 20)) "$(ddtime if="$mp" of=/dev/null)") "
    t0=$(date +%s.%N)
    dd if="$mp" of=/dev/null bs=1M count=4096 status=none & r1=$!
    dd if="$mp" of=/dev/null bs=1M count=4096 status=none & r2=$!
    wait $r1 $r2
    t1=$(date +%s.%N)
    results[$impl,read2]+="$(mbps $((8192 << 20)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')") "
    results[$impl,write1]+="$(mbps $((4096 << 20)) "$(ddtime if=/dev/zero of="$mp" conv=notrunc)") "
    results[$impl,open]+="$("$work/rates" open "$mp" 100000) "
    results[$impl,stat]+="$("$work/rates" stat "$mp" 1000000) "
    if [ $impl = bigfs ]; then results[$impl,rss]+="$(awk '/VmHWM/ { print $2 }' /proc/$pid/status) "; fi
    stop "$mp" "$pid"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ratios() { paste -d' ' <(echo "$1" | tr ' ' '\n' | grep -v '^$') <(echo "$2" | tr ' ' '\n' | grep -v '^$') | awk '{ printf "%.3f ", $1 / $2 }'; }
echo "machine: $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg), $REPS interleaved repetitions"
echo
echo "| figure | BigFS.Fuse (C#), median | libfuse3 null.c, median | ratio of medians | median of per-repetition ratios | libfuse3 null.c with read_ahead_kb=1024, median | ratio to it |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for k in read1:"dd read 4 GiB, 1 MiB blocks, 1 reader (MB/s)" read2:"dd read 4 GiB ×2 parallel readers, aggregate (MB/s)" \
         write1:"dd write 4 GiB, 1 MiB blocks (MB/s)" open:"open+close (/s)" stat:"stat (/s)"; do
  key=${k%%:*}; label=${k#*:}
  a=$(echo "${results[bigfs,$key]}" | median); b=$(echo "${results[libfuse,$key]}" | median)
  r=$(ratios "${results[bigfs,$key]}" "${results[libfuse,$key]}" | median)
  c=$(echo "${results[libfuse-ra,$key]}" | median)
  echo "| $label | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }') | $(printf '%.2f' "$r") | $c | $(awk -v a="$a" -v c="$c" 'BEGIN { printf "%.2f", a / c }') |"
done
echo
echo "BigFS.Fuse daemon peak RSS (VmHWM) per run, KiB: ${results[bigfs,rss]}"
echo "raw: $(for k in "${!results[@]}"; do echo "$k=[${results[$k]}]"; done | sort | tr '\n' ' ')"
