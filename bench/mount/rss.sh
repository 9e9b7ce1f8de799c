#!/usr/bin/env bash
# The mount daemon's peak memory under the fio part of run.sh, with the daemon as its own process.
#   usage: bench/mount/rss.sh [PORT]      (root; fio; a Release build: dotnet build -c Release src/BigFS.Cli)
# Starts `bigfs up` (metadata server + 3 nodes) and a separate `bigfs mount`, runs sequential
# write/read and 4 KiB random read/write, samples the mount's VmRSS every 0.5 s, prints one line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bigfs=${BIGFS:-"dotnet $here/../../src/BigFS.Cli/bin/Release/net10.0/bigfs.dll"}
port=${1:-9310}
work=$(mktemp -d); data=$work/data; mnt=$work/mnt; mkdir -p "$data" "$mnt"
$bigfs up --data "$data" --port "$port" > "$work/up.log" 2>&1 & up=$!
for _ in $(seq 100); do grep -q "Local cluster up" "$work/up.log" && break; sleep 0.3; done
$bigfs mount "127.0.0.1:$port" "$mnt" > "$work/mount.log" 2>&1 & mp=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.3; done
mountpoint -q "$mnt" || { echo "no mount; see $work" >&2; kill $up $mp; exit 1; }
( while kill -0 $mp 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$mp/status 2>/dev/null || true; sleep 0.5; done ) > "$work/rss" &
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
bw() { fio --output-format=terse --terse-version=3 "$@" | awk -F';' '{ r=$7; w=$48; printf "%.0f", (r>w?r:w)/1024*1.048576 }'; }
iops() { fio --output-format=terse --terse-version=3 "$@" | awk -F';' '{ printf "%.0f", $8 + $49 }'; }
s=$mnt/b; mkdir -p "$s"
w=$(bw --name=seqw --directory="$s" --rw=write --bs=1M --size=1g --end_fsync=1 --ioengine=psync); drop
r=$(bw --name=seqw --directory="$s" --rw=read --bs=1M --size=1g --ioengine=psync)
fio --name=rand --directory="$s" --rw=write --bs=1M --size=256m --end_fsync=1 --ioengine=psync >/dev/null; drop
rr=$(iops --name=rand --directory="$s" --rw=randread --bs=4k --size=256m --ioengine=psync --runtime=15 --time_based)
rw=$(iops --name=rand --directory="$s" --rw=randwrite --bs=4k --size=256m --ioengine=psync --runtime=15 --time_based --end_fsync=1)
echo "seq write $w MB/s, seq read $r MB/s, rand read $rr IOPS, rand write $rw IOPS, mount daemon peak RSS $(( $(sort -n "$work/rss" | tail -1) / 1024 )) MiB"
umount "$mnt"; kill $mp 2>/dev/null || true; kill -TERM $up; wait $up 2>/dev/null || true
rm -rf "$work"
