#!/usr/bin/env bash
# A peer for bench/mount/run.sh: MooseFS 3.0 (Debian 12's moosefs-* packages) on this one
# machine, as the issue's comparison figures were taken: one master, three chunkservers
# (each its own folder on the local disk), goal 3 on the mount, every socket on the loopback
# interface (peer-address.sh: MooseFS refuses 127.0.0.1 for its servers).
#   usage: bench/mount/moosefs.sh up DATA MOUNTPOINT      (apt-get installs what is missing)
#          bench/mount/run.sh /tmp/local "$MOUNTPOINT" ...
#          bench/mount/moosefs.sh down DATA MOUNTPOINT
# Chunkservers keep MooseFS's default HDD_FSYNC_BEFORE_CLOSE = 0 (a chunk's close does not
# wait for the disk); MFS_FSYNC_BEFORE_CLOSE=1 in the environment turns it on, the closest
# MooseFS gets to BigFS's "a close waits for two durable copies". MFS_PORT_BASE (default 9419)
# moves every port, so that two instances can be measured in one run. Needs root.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 up|down DATA MOUNTPOINT" >&2; exit 2; }
cmd=$1; data=$2; mnt=$3
base=${MFS_PORT_BASE:-9419}
ports=($((base + 13)) $((base + 23)) $((base + 33)))
here=$(cd "$(dirname "$0")" && pwd)

down() {
  if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
  for i in 0 1 2; do
    [ -f "$data/cs$i/mfschunkserver.cfg" ] && mfschunkserver -c "$data/cs$i/mfschunkserver.cfg" stop >/dev/null 2>&1 || true
  done
  [ -f "$data/master/mfsmaster.cfg" ] && mfsmaster -c "$data/master/mfsmaster.cfg" stop >/dev/null 2>&1 || true
}

up() {
  if ! command -v mfsmaster >/dev/null || ! command -v mfsmount >/dev/null || ! command -v mfschunkserver >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y moosefs-master moosefs-chunkserver moosefs-client >/dev/null
  fi
  down
  addr=$("$here/peer-address.sh" up)
  rm -rf "$data"; mkdir -p "$data/master" "$mnt"
  data=$(readlink -f "$data")
  cp /var/lib/mfs/metadata.mfs.empty "$data/master/metadata.mfs"
  echo "$addr / rw,alldirs,admin,maproot=0:0" > "$data/master/mfsexports.cfg"
  cat > "$data/master/mfsmaster.cfg" <<EOF
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = $data/master
EXPORTS_FILENAME = $data/master/mfsexports.cfg
MATOML_LISTEN_HOST = $addr
MATOML_LISTEN_PORT = $base
MATOCS_LISTEN_HOST = $addr
MATOCS_LISTEN_PORT = $((base + 1))
MATOCL_LISTEN_HOST = $addr
MATOCL_LISTEN_PORT = $((base + 2))
EOF
  mfsmaster -c "$data/master/mfsmaster.cfg" start >"$data/master.log" 2>&1
  for i in 0 1 2; do
    cs=$data/cs$i; mkdir -p "$cs/chunks"
    echo "$cs/chunks" > "$cs/mfshdd.cfg"
    cat > "$cs/mfschunkserver.cfg" <<EOF
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = $cs
HDD_CONF_FILENAME = $cs/mfshdd.cfg
HDD_FSYNC_BEFORE_CLOSE = ${MFS_FSYNC_BEFORE_CLOSE:-0}
MASTER_HOST = $addr
MASTER_PORT = $((base + 1))
BIND_HOST = $addr
CSSERV_LISTEN_HOST = $addr
CSSERV_LISTEN_PORT = ${ports[$i]}
EOF
    mfschunkserver -c "$cs/mfschunkserver.cfg" start >"$cs.log" 2>&1
  done
  mfsmount "$mnt" -H "$addr" -P $((base + 2)) >"$data/mount.log" 2>&1
  mfssetgoal -r 3 "$mnt" >/dev/null
  # A chunkserver that registered may not be taking new chunks yet: ready is when a new
  # file's chunk gets its three copies.
  local ready=
  for _ in $(seq 150); do
    echo probe > "$mnt/.probe"
    [ "$(mfsfileinfo "$mnt/.probe" 2>/dev/null | grep -c 'status:VALID')" -ge 3 ] && { ready=1; break; }
    sleep 0.2
  done
  rm -f "$mnt/.probe"
  [ -n "$ready" ] || { echo "MooseFS: a new chunk did not get three copies" >&2; exit 1; }
  echo "MooseFS mounted at $mnt (goal 3, HDD_FSYNC_BEFORE_CLOSE=${MFS_FSYNC_BEFORE_CLOSE:-0})"
}

case $cmd in
  up) up ;;
  down) down; rm -rf "$data"; "$here/peer-address.sh" down ;;
  *) echo "usage: $0 up|down DATA MOUNTPOINT" >&2; exit 2 ;;
esac
