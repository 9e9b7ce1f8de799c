#!/usr/bin/env bash
# Builds the BigFS packages: a Debian package (artifacts/bigfs_VERSION_amd64.deb) and a plain
# tarball for other distributions (artifacts/bigfs-VERSION-linux-x64.tar.gz). The binary is
# self-contained: the target machine needs no .NET runtime.
#   usage: packaging/build.sh [OUTDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$(realpath -m "${1:-$root/artifacts}")
version=$(grep -o '<Version>[^<]*' "$root/Directory.Build.props" | cut -d'>' -f2)
arch=amd64

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
publish="$work/publish"
# Publish from a copy of the sources: a runtime-specific restore/publish in the tree would
# rewrite its obj/ folders under builds and test runs that use them at the same time.
mkdir -p "$work/src"
rsync -a --exclude bin/ --exclude obj/ "$root/src" "$root/protos" "$root/Directory.Build.props" "$root/Directory.Packages.props" "$work/src/"
if [ -f "$root/nuget.config" ]; then cp "$root/nuget.config" "$work/src/"; fi
if [ -f "$root/global.json" ]; then cp "$root/global.json" "$work/src/"; fi
dotnet publish "$work/src/src/BigFS.Cli" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:DebugType=none \
  -o "$publish" -v q -nologo

stage="$work/bigfs_${version}_${arch}"
install -D -m 0755 "$publish/bigfs" "$stage/usr/bin/bigfs"
install -D -m 0755 "$here/mount.fuse.bigfs" "$stage/usr/sbin/mount.fuse.bigfs"
for unit in "$root"/systemd/*.service; do
  install -D -m 0644 "$unit" "$stage/lib/systemd/system/$(basename "$unit")"
done
for conf in "$here"/etc/*.json; do
  install -D -m 0644 "$conf" "$stage/etc/bigfs/$(basename "$conf")"
done
install -D -m 0644 "$root/README.md" "$stage/usr/share/doc/bigfs/README.md"

# The tarball: same tree, no package metadata.
mkdir -p "$out"
tar -C "$stage" -czf "$out/bigfs-${version}-linux-x64.tar.gz" --owner=0 --group=0 .

mkdir -p "$stage/DEBIAN"
installed_kb=$(du -sk "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$installed_kb/" "$here/debian/control" > "$stage/DEBIAN/control"
for script in postinst prerm postrm; do
  install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"
done
(cd "$stage" && find etc -type f | sed 's#^#/#' > DEBIAN/conffiles)
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out/bigfs_${version}_${arch}.deb" >/dev/null
echo "$out/bigfs_${version}_${arch}.deb"
echo "$out/bigfs-${version}-linux-x64.tar.gz"
