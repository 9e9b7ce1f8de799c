#!/usr/bin/env bash
# Filesystem benchmark with standard tools, the same workload on any mounted folder.
#   usage: bench/mount/run.sh DIR [DIR ...]      e.g. bench/mount/run.sh /tmp/local /mnt/bigfs
# Each DIR gets a scratch folder; results print as one Markdown table, a column per DIR.
# Needs root (drops the page cache between write and read), fio, fs_mark (Debian: fsmark), gcc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 DIR [DIR ...]" >&2; exit 2; }
for tool in fio fs_mark gcc; do
  command -v $tool >/dev/null || { echo "missing $tool (apt-get install -y fio fsmark gcc)" >&2; exit 1; }
done
tree=${BENCH_TREE:-$(dirname "$(readlink -f "$(command -v dotnet)")")/sdk}
size=${BENCH_SIZE:-1g}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/metaops" "$here/metaops.c"

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
fio_bw() { # prints MB/s of the single job's read or write
  fio --output-format=terse --terse-version=3 "$@" | awk -F';' '{ r=$7; w=$48; printf "%.0f", (r>w?r:w)/1024*1.048576 }'
}
fsm() { # DIR ARGS...: files/s; "failed" when fs_mark does (it has crashed on MooseFS)
  local r; r=$(fs_mark -d "$1" "${@:2}" -S 1 -t 1 -k -l "$work/fs_log.txt" 2>/dev/null | awk '/^ +[0-9]/ {print $4}' | tail -1) || true
  echo "${r:-failed}"
}
fio_iops() {
  fio --output-format=terse --terse-version=3 "$@" | awk -F';' '{ printf "%.0f", $8 + $49 }'
}

declare -A R
names=()
for dir in "$@"; do
  name=$(basename "$dir"); names+=("$name")
  s="$dir/bench.$$"; mkdir -p "$s"
  R[$name,seqw]=$(fio_bw --name=seqw --directory="$s" --rw=write --bs=1M --size=$size --end_fsync=1 --ioengine=psync)
  drop
  R[$name,seqr]=$(fio_bw --name=seqw --directory="$s" --rw=read --bs=1M --size=$size --ioengine=psync)
  rm -f "$s"/seqw*
  fio --name=rand --directory="$s" --rw=write --bs=1M --size=256m --end_fsync=1 --ioengine=psync >/dev/null
  drop
  R[$name,randr]=$(fio_iops --name=rand --directory="$s" --rw=randread --bs=4k --size=256m --numjobs=1 --iodepth=1 --ioengine=psync --runtime=15 --time_based)
  R[$name,randw]=$(fio_iops --name=rand --directory="$s" --rw=randwrite --bs=4k --size=256m --numjobs=1 --ioengine=psync --runtime=15 --time_based --end_fsync=1)
  rm -f "$s"/rand*
  mkdir -p "$s/fsm0" "$s/fsm64"
  R[$name,fsm0]=$(fsm "$s/fsm0" -n 5000 -s 0)
  R[$name,fsm64]=$(fsm "$s/fsm64" -n 2000 -s 65536)
  rm -rf "$s/fsm0" "$s/fsm64"
  mkdir -p "$s/meta"
  while read -r op rate; do R[$name,$op]=$rate; done < <("$work/metaops" "$s/meta" 5000)
  drop
  start=$(date +%s.%N); cp -a "$tree" "$s/tree"; sync; end=$(date +%s.%N)
  R[$name,cp]=$(printf "%.2f" "$(echo "$end - $start" | bc)")
  start=$(date +%s.%N); rm -rf "$s/tree"; end=$(date +%s.%N)
  R[$name,rm]=$(printf "%.2f" "$(echo "$end - $start" | bc)")
  rm -rf "$s"
done

files=$(find "$tree" -type f | wc -l); mb=$(du -sm "$tree" | cut -f1)
row() { printf '| %s |' "$1"; for n in "${names[@]}"; do printf ' %s |' "${R[$n,$2]:-?}"; done; printf '\n'; }
printf '| figure |'; for n in "${names[@]}"; do printf ' %s |' "$n"; done; printf '\n|---|'; for n in "${names[@]}"; do printf -- '---|'; done; printf '\n'
row "seq write $size, 1 MiB blocks, fsync at end (MB/s)" seqw
row "seq read $size, caches dropped (MB/s)" seqr
row "4 KiB random read, 256 MiB file, caches dropped (IOPS)" randr
row "4 KiB random write, 256 MiB file (IOPS)" randw
row "empty files, fsync each, fs_mark (files/s)" fsm0
row "64 KiB files, fsync each, fs_mark (files/s)" fsm64
row "stat, caches dropped (/s)" stat
row "rename (/s)" rename
row "unlink (/s)" unlink
row "cp -a of a $files-file ${mb} MB tree (s)" cp
row "rm -rf of that tree (s)" rm
