#!/usr/bin/env bash
# Builds BigFS, starts a local cluster — one metadata server and three storage nodes on
# loopback, data under ./.bigfs/data — and mounts it (default ./.bigfs/mnt, or the folder
# given as $1). Runs in the foreground; Ctrl-C unmounts and stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
  echo "bigfs-up: run as root (mounting FUSE needs /dev/fuse, which is root-only here)" >&2
  exit 1
fi
if ! command -v fusermount3 >/dev/null 2>&1; then
  echo "bigfs-up: installing fuse3" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null
fi

mountpoint_dir=${1:-.bigfs/mnt}
mkdir -p .bigfs/data "$mountpoint_dir"
if grep -qs " $(realpath "$mountpoint_dir") " /proc/mounts; then
  umount -l "$mountpoint_dir" 2>/dev/null || true   # left behind by a crashed run
fi

echo "bigfs-up: building (Release)…" >&2
dotnet build src/BigFS.Cli -c Release -v q -nologo -clp:ErrorsOnly
exec dotnet src/BigFS.Cli/bin/Release/net10.0/bigfs.dll up --data .bigfs/data --mount "$mountpoint_dir"
