#!/usr/bin/env bash
# A peer for bench/mount/run.sh: GlusterFS 10 (Debian 12's glusterfs-server) on this one
# machine, as the issue's comparison figures were taken: a replica-3 volume of three bricks
# (each its own folder on the local disk) served and mounted over the loopback interface
# (peer-address.sh: GlusterFS refuses 127.0.0.1 for a brick), with the volume's defaults.
#   usage: bench/mount/glusterfs.sh up DATA MOUNTPOINT    (apt-get installs what is missing)
#          bench/mount/run.sh /tmp/local "$MOUNTPOINT" ...
#          bench/mount/glusterfs.sh down DATA MOUNTPOINT
# glusterd keeps its state in /var/lib/glusterd; down stops every GlusterFS process. Needs root.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 up|down DATA MOUNTPOINT" >&2; exit 2; }
cmd=$1; data=$2; mnt=$3
here=$(cd "$(dirname "$0")" && pwd)
volume=bigfsbench

down() {
  if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
  if pgrep -x glusterd >/dev/null; then
    gluster --mode=script volume stop $volume force >/dev/null 2>&1 || true
    gluster --mode=script volume delete $volume >/dev/null 2>&1 || true
  fi
  pkill -x glusterd || true; pkill -x glusterfsd || true; pkill -x glusterfs || true
  for _ in $(seq 100); do pgrep -x glusterd >/dev/null || pgrep -x glusterfsd >/dev/null || pgrep -x glusterfs >/dev/null || break; sleep 0.1; done
  rm -rf /var/lib/glusterd/vols/$volume
}

up() {
  command -v glusterd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y glusterfs-server glusterfs-client >/dev/null
  down
  addr=$("$here/peer-address.sh" up)
  rm -rf "$data"; mkdir -p "$data" "$mnt"
  data=$(readlink -f "$data")
  glusterd --pid-file="$data/glusterd.pid" --log-file="$data/glusterd.log"
  for _ in $(seq 100); do gluster --mode=script volume list >/dev/null 2>&1 && break; sleep 0.1; done
  gluster --mode=script volume create $volume replica 3 "$addr:$data/b0" "$addr:$data/b1" "$addr:$data/b2" force >/dev/null
  gluster --mode=script volume start $volume >/dev/null
  mount -t glusterfs "$addr:/$volume" "$mnt"
  mountpoint -q "$mnt" || { echo "GlusterFS: $mnt is not mounted" >&2; exit 1; }
  echo "GlusterFS mounted at $mnt (replica 3)"
}

case $cmd in
  up) up ;;
  down) down; rm -rf "$data"; "$here/peer-address.sh" down ;;
  *) echo "usage: $0 up|down DATA MOUNTPOINT" >&2; exit 2 ;;
esac
