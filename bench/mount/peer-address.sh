#!/usr/bin/env bash
# The address the peers of bench/mount (moosefs.sh, glusterfs.sh) listen and connect on.
# Both refuse 127.0.0.0/8 for their servers, so this puts a private address on the loopback
# interface: traffic to it never leaves the machine.
#   usage: bench/mount/peer-address.sh up|down      (up prints the address)
# down leaves it while a peer still listens on it.
set -euo pipefail
addr=${BENCH_PEER_ADDRESS:-10.213.0.1}
case ${1:-} in
  up) ip -4 addr show dev lo | grep -q " $addr/" || ip addr add "$addr/32" dev lo; echo "$addr" ;;
  down) # only once no peer still listens on it
    if [ -z "$(ss -Htln src "$addr")" ]; then ip addr del "$addr/32" dev lo 2>/dev/null || true; fi ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
