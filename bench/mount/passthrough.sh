#!/usr/bin/env bash
# The FUSE ceiling for bench/mount/run.sh: libfuse3's passthrough_ll example (from
# libfuse3-dev) serving a local-disk folder, so the same workload can be measured through a
# FUSE daemon that does nothing but forward to the local filesystem, in the same run.
#   usage: bench/mount/passthrough.sh SOURCE MOUNTPOINT     (prints the daemon's PID)
#          bench/mount/run.sh /tmp/local "$MOUNTPOINT" /mnt/bigfs; umount "$MOUNTPOINT"
# Options as BigFS mounts by default: 1 s entry/attribute timeout, default_permissions and
# allow_other; the kernel's read-ahead raised to 1 MiB as BigFS does (facts: +10–25 % reads).
# Needs root, /dev/fuse, gcc, pkg-config, libfuse3-dev.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE MOUNTPOINT" >&2; exit 2; }
src=$(readlink -f "$1"); mnt=$2
examples=/usr/share/doc/libfuse3-dev/examples
[ -f "$examples/passthrough_ll.c" ] || { echo "missing $examples/passthrough_ll.c (apt-get install -y libfuse3-dev)" >&2; exit 1; }
bin=${TMPDIR:-/tmp}/bigfs-bench-passthrough_ll
[ -x "$bin" ] || gcc -O2 -Wall "$examples/passthrough_ll.c" $(pkg-config fuse3 --cflags --libs) -o "$bin"
mkdir -p "$src" "$mnt"
"$bin" -f -o "source=$src,timeout=1.0,default_permissions,allow_other" "$mnt" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.05; done
mountpoint -q "$mnt" || { echo "passthrough_ll did not mount $mnt" >&2; exit 1; }
echo 1024 > "/sys/class/bdi/$(awk -v m="$(readlink -f "$mnt")" '$5 == m { print $3 }' /proc/self/mountinfo)/read_ahead_kb"
echo "$pid"
