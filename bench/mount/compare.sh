#!/usr/bin/env bash
# One comparison run of bench/mount/run.sh: the local disk, the FUSE ceiling (passthrough.sh),
# MooseFS 3.0 (as configured by default, and with HDD_FSYNC_BEFORE_CLOSE=1), GlusterFS 10 and a
# fresh `bigfs up`, every one with 3 copies on this machine. Each system is started just before
# its turn and stopped right after it: an idle peer is not idle (three idle MooseFS
# chunkservers take ~8 % of a CPU), and on two cores that would count against the next one;
# and each starts only once the machine is quiet again (no disk writes, CPUs idle).
#   usage: bench/mount/compare.sh WORKDIR [SYSTEM ...]
#          SYSTEM: local ceiling moosefs moosefs-fsync glusterfs bigfs (default: all, in that order)
#          BIGFS="dotnet /path/bigfs.dll" to measure a given build (default: builds src/BigFS.Cli)
# Prints one Markdown table, a column per system. Needs root and what run.sh, passthrough.sh,
# moosefs.sh and glusterfs.sh need (the last two install their Debian packages if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 WORKDIR [SYSTEM ...]" >&2; exit 2; }
work=$1; shift
systems=("$@"); [ ${#systems[@]} -gt 0 ] || systems=(local ceiling moosefs moosefs-fsync glusterfs bigfs)
mkdir -p "$work"; work=$(readlink -f "$work")

if [[ " ${systems[*]} " == *" bigfs "* && -z "${BIGFS:-}" ]]; then
  dotnet build "$here/../../src/BigFS.Cli" -c Release -o "$work/bigfs-build" >/dev/null
  BIGFS="dotnet $work/bigfs-build/bigfs.dll"
fi

bigfs_pid=
start() { # SYSTEM
  local s=$1 dir=$work/$1
  case $s in
    local) mkdir -p "$dir" ;;
    ceiling) "$here/passthrough.sh" "$work/ceiling-src" "$dir" >/dev/null ;;
    moosefs) "$here/moosefs.sh" up "$work/moosefs-data" "$dir" >&2 ;;
    moosefs-fsync) MFS_FSYNC_BEFORE_CLOSE=1 "$here/moosefs.sh" up "$work/moosefs-fsync-data" "$dir" >&2 ;;
    glusterfs) "$here/glusterfs.sh" up "$work/glusterfs-data" "$dir" >&2 ;;
    bigfs)
      mkdir -p "$dir"
      $BIGFS up --data "$work/bigfs-data" --port "${BIGFS_PORT:-9400}" --mount "$dir" >"$work/bigfs.log" 2>&1 &
      bigfs_pid=$!
      for _ in $(seq 600); do mountpoint -q "$dir" && break; kill -0 $bigfs_pid 2>/dev/null || break; sleep 0.1; done
      mountpoint -q "$dir" || { echo "bigfs up did not mount $dir (log: $work/bigfs.log)" >&2; exit 1; } ;;
    *) echo "unknown system $s" >&2; exit 2 ;;
  esac
}
stop() {
  local s=$1 dir=$work/$1
  case $s in
    local) rm -rf "$dir" ;;
    ceiling) umount "$dir"; rm -rf "$work/ceiling-src" ;;
    moosefs) "$here/moosefs.sh" down "$work/moosefs-data" "$dir" ;;
    moosefs-fsync) "$here/moosefs.sh" down "$work/moosefs-fsync-data" "$dir" ;;
    glusterfs) "$here/glusterfs.sh" down "$work/glusterfs-data" "$dir" ;;
    bigfs) kill -TERM $bigfs_pid; wait $bigfs_pid || true; rm -rf "$work/bigfs-data" ;;  # TERM: a background job ignores INT
  esac
}

# What the previous system left behind (its deletions written back, its daemons' exit) must not
# count against the next: wait, up to 2 minutes, until a 3 s window sees no disk writes and the
# CPUs at least 90 % idle. Measured: right after GlusterFS's run, BigFS's stat rate was half its
# usual for the first ~20 s.
quiesce() {
  local t0=$SECONDS w1 w2 i1 i2 t1 t2
  sync
  while [ $((SECONDS - t0)) -lt 120 ]; do
    w1=$(awk '$3 !~ /^(loop|ram)/ { s += $10 } END { print s }' /proc/diskstats)
    read -r _ a b c i1 d e f g _ < /proc/stat; t1=$((a + b + c + i1 + d + e + f + g))
    sleep 3
    w2=$(awk '$3 !~ /^(loop|ram)/ { s += $10 } END { print s }' /proc/diskstats)
    read -r _ a b c i2 d e f g _ < /proc/stat; t2=$((a + b + c + i2 + d + e + f + g))
    [ "$w1" = "$w2" ] && [ $(( (i2 - i1) * 100 )) -ge $(( (t2 - t1) * 90 )) ] && break
  done
  echo "$(date -u +%H:%M:%S) quiet after $((SECONDS - t0)) s" >&2
}

for s in "${systems[@]}"; do
  quiesce
  start "$s"
  echo "$(date -u +%H:%M:%S) measuring $s" >&2
  (cd "$work" && "$here/run.sh" "$work/$s") > "$work/$s.md" || echo "run.sh failed on $s" >&2
  stop "$s"
done

# Merge the one-column tables: the figure names of the first, then each system's value.
awk -F'|' '
  FNR == 1 { file++ }
  { row[FNR] = (file == 1 ? "|" $2 "|" : row[FNR]) $3 "|"; rows = FNR > rows ? FNR : rows }
  END { for (i = 1; i <= rows; i++) print row[i] }
' $(for s in "${systems[@]}"; do echo "$work/$s.md"; done)
