#!/usr/bin/env bash
# Assembles the build context of packaging/registry/Dockerfile in DIR from a lade binary:
#   make-context.sh LADE_BINARY DIR
# The binary goes to rootfs/usr/bin/lade, stripped. A static binary (built with
# RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu) needs nothing
# else; for a dynamically linked one, the shared libraries ldd lists are copied to their paths beside it (a
# distroless-style base made from scratch). Then: lade build -t IMAGE DIR
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 LADE_BINARY DIR" >&2; exit 2; fi
lade=$1 dir=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$lade" ] || { echo "$lade: not an executable" >&2; exit 1; }
rootfs=$dir/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/var/lib/registry"
chmod 1777 "$rootfs/tmp"
if command -v strip >/dev/null 2>&1; then
  strip -o "$rootfs/usr/bin/lade" "$lade"
else
  cp "$lade" "$rootfs/usr/bin/lade"
fi
# ldd prints "not a dynamic executable" (and fails) or "statically linked" for a static binary: no libraries then.
if libs=$(ldd "$lade" 2>/dev/null); then
  for lib in $(printf '%s\n' "$libs" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
fi
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
cp "$here/Dockerfile" "$dir/Dockerfile"
echo "context ready in $dir: $(du -sh "$rootfs" | cut -f1) in rootfs"
