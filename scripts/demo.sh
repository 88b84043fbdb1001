#!/usr/bin/env bash
# The main job on fixtures/, on a fresh machine: install what is missing, build lade, make the busybox base, import
# it, save it to a tarball, load that tarball into a second (air-gapped) store, and hand it to Docker to run.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
scripts/install-deps.sh
cargo build --release --locked -q
lade=target/release/lade
demo=target/demo
rm -rf "$demo" && mkdir -p "$demo"

"$shared/tools/make-busybox-base.sh" "$demo/base" >/dev/null
changes=()
while IFS= read -r line; do [ -n "$line" ] && changes+=(-c "$line"); done < fixtures/base/changes

echo "== lade import: busybox rootfs -> busybox:local"
"$lade" --root "$demo/store" import "${changes[@]}" "$demo/base/busybox-rootfs.tar" busybox:local
"$lade" --root "$demo/store" images
echo "== lade save -> $demo/busybox.tar"
"$lade" --root "$demo/store" save -o "$demo/busybox.tar" busybox:local
echo "== lade load into a second store (the air-gapped machine)"
"$lade" --root "$demo/airgap" load -i "$demo/busybox.tar"
"$lade" --root "$demo/airgap" inspect busybox:local | head -4

echo "== docker load + docker run"
dockerd_dir=/tmp/lade-demo-dockerd
trap '"$shared/tools/stop-dockerd.sh" "$dockerd_dir" >/dev/null 2>&1 || true' EXIT
eval "$("$shared/tools/start-dockerd.sh" "$dockerd_dir")"
export DOCKER_HOST
/usr/bin/docker load -i "$demo/busybox.tar"
/usr/bin/docker run --rm --network=none busybox:local echo "ok: Docker runs the image lade saved"
