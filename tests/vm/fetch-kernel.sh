#!/usr/bin/env bash
# Unpack Debian's stock kernel (the package linux-image-amd64 points at) into
# DEST, a directory of ours that the guest can see (not /var/cache), laid out
# as virtme-ng expects: DEST/boot/vmlinuz-VER and DEST/lib/modules/VER with
# the modules indexed by `depmod -b`.  Prints the path of the image.
#   tests/vm/fetch-kernel.sh DEST [PACKAGE]     (PACKAGE: linux-image-amd64)
set -euo pipefail
dest=${1:?usage: fetch-kernel.sh DEST [PACKAGE]}
meta=${2:-linux-image-amd64}
say() { echo "fetch-kernel: $*" >&2; }

pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
    say "apt knows no kernel package behind $meta (apt-get update? a Debian host?)"
    exit 1
fi
ver=${pkg#linux-image-}
img="$dest/boot/vmlinuz-$ver"
if [ -r "$img" ] && [ -s "$dest/lib/modules/$ver/modules.dep" ]; then
    echo "$img"
    exit 0
fi
mkdir -p "$dest/debs"
(cd "$dest/debs" && rm -f ./*.deb && apt-get download -q "$pkg" >&2) || {
    say "apt-get download $pkg failed"
    exit 1
}
dpkg -x "$dest"/debs/"$pkg"_*.deb "$dest"
rm -rf "$dest/debs"
if [ ! -r "$img" ]; then
    say "$pkg holds no boot/vmlinuz-$ver"
    exit 1
fi
# Debian's package may keep its modules under usr/lib (merged /usr)
if [ ! -d "$dest/lib/modules/$ver" ] && [ -d "$dest/usr/lib/modules/$ver" ]; then
    mkdir -p "$dest/lib/modules"
    mv "$dest/usr/lib/modules/$ver" "$dest/lib/modules/$ver"
fi
depmod -b "$dest" "$ver"
say "kernel $ver ready in $dest"
echo "$img"
