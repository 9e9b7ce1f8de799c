#!/usr/bin/env bash
# open+close A/B: BigFS.Fuse (samples/BigFS.Fuse.MemoryFs --null) and libfuse3's example/null.c
# mounted side by side, short runs alternated PAIRS times (order flipped every pair), each with
# latency percentiles. On a shared 2-vCPU VM a single open+close run lands in one of two
# scheduling modes (≈2× apart, for both daemons alike), so a few long runs (run.sh) can show a
# ±10 % gap either way. Many short interleaved pairs, their latency percentiles and each
# daemon's best (least disturbed) run say more; on a loaded machine even the median ratio swings.
# Extra arguments after COUNT go to the BigFS.Fuse sample (e.g. --threads 1).
# Needs root, /dev/fuse, gcc, pkg-config, libfuse3-dev. Usage: bench/fuse/open-ab.sh [PAIRS] [COUNT]
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=${1:-20}; COUNT=${2:-20000}; shift $(( $# < 2 ? $# : 2 ))
work=$(mktemp -d /tmp/fuseab.XXXXXX)
trap 'for m in "$work"/mnt-*; do umount -l "$m" 2>/dev/null || true; done; rm -rf "$work"' EXIT

gcc -O2 -Wall /usr/share/doc/libfuse3-dev/examples/null.c $(pkg-config fuse3 --cflags --libs) -o "$work/null_c"
gcc -O2 -Wall bench/fuse/openlat.c -o "$work/openlat"
# BIGFS_FUSE_DLL: measure another build of the sample (e.g. a copy of the previous commit's) instead.
dll=${BIGFS_FUSE_DLL:-samples/BigFS.Fuse.MemoryFs/bin/Release/net10.0/BigFS.Fuse.MemoryFs.dll}
[ -n "${BIGFS_FUSE_DLL:-}" ] || dotnet build samples/BigFS.Fuse.MemoryFs -c Release -v q -nologo >/dev/null

a="$work/mnt-bigfs"; b="$work/mnt-libfuse"; : > "$a"; : > "$b"
dotnet "$dll" "$a" --null "$@" >>"$work/bigfs.log" 2>&1 & pa=$!
"$work/null_c" -f "$b" >>"$work/libfuse.log" 2>&1 & pb=$!
for _ in $(seq 200); do grep -q " $a fuse" /proc/mounts && grep -q " $b fuse" /proc/mounts && break; sleep 0.05; done
grep -q " $a fuse" /proc/mounts && grep -q " $b fuse" /proc/mounts || { echo "mount failed" >&2; exit 1; }
"$work/openlat" "$a" 20000 >/dev/null; "$work/openlat" "$b" 20000 >/dev/null # warm up (JIT tiers, threads)

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "| pair | BigFS.Fuse /s | p10 / p50 / p90 µs | libfuse3 null.c /s | p10 / p50 / p90 µs | ratio |"
echo "|---:|---:|---|---:|---|---:|"
ra=(); rb=(); rr=()
for i in $(seq "$PAIRS"); do
  if [ $((i % 2)) -eq 1 ]; then x=$("$work/openlat" "$a" "$COUNT"); y=$("$work/openlat" "$b" "$COUNT")
  else y=$("$work/openlat" "$b" "$COUNT"); x=$("$work/openlat" "$a" "$COUNT"); fi
  read -r xr x10 x50 x90 <<<"$x"; read -r yr y10 y50 y90 <<<"$y"
  r=$(awk -v a="$xr" -v b="$yr" 'BEGIN { printf "%.3f", a / b }')
  ra+=("$xr"); rb+=("$yr"); rr+=("$r")
  echo "| $i | $xr | $x10 / $x50 / $x90 | $yr | $y10 / $y50 / $y90 | $r |"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }
echo
echo "medians: BigFS.Fuse $(median "${ra[@]}")/s, libfuse $(median "${rb[@]}")/s, median of per-pair ratios $(median "${rr[@]}"); best runs (least disturbed): $(best "${ra[@]}") vs $(best "${rb[@]}")/s ($PAIRS pairs of $COUNT open+close; load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg))"
umount "$a"; umount "$b"; wait "$pa" "$pb" || true
