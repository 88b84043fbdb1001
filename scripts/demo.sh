#!/usr/bin/env bash
# The main job on fixtures/, on a fresh machine: install what is missing, build lade, make the busybox base, build
# fixtures/hello with lade and run it, push it to lade's own registry, pull it into a second store, save it to a
# tarball (the air-gapped transfer) and run it in Docker from that tarball.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
scripts/install-deps.sh
cargo build --release --locked -q
lade=$PWD/target/release/lade
demo=$PWD/target/demo
rm -rf "$demo" && mkdir -p "$demo"
dockerd_dir=/tmp/lade-demo-dockerd
registry_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  "$shared/tools/stop-dockerd.sh" "$dockerd_dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$shared/tools/make-busybox-base.sh" "$demo/base" >/dev/null
changes=()
while IFS= read -r line; do [ -n "$line" ] && changes+=(-c "$line"); done < fixtures/base/changes
export LADE_ROOT=$demo/store
echo "== lade import: the busybox base"
"$lade" import "${changes[@]}" "$demo/base/busybox-rootfs.tar" busybox:local

echo "== lade build fixtures/hello (RUN in runc)"
"$lade" build --progress=plain -t hello:1 fixtures/hello
echo "== lade run hello:1"
"$lade" run --rm hello:1

echo "== lade registry serve, lade push, lade pull into a second store"
"$lade" registry serve --addr 127.0.0.1:0 --root "$demo/registry" > "$demo/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do grep -q listening "$demo/registry.log" && break; sleep 0.1; done
host=$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$demo/registry.log" | head -1)
"$lade" tag hello:1 "$host/demo/hello:1"
"$lade" push "$host/demo/hello:1"
LADE_ROOT=$demo/second "$lade" pull "$host/demo/hello:1"

echo "== lade save -> tarball -> docker load -> docker run"
LADE_ROOT=$demo/second "$lade" save -o "$demo/hello.tar" "$host/demo/hello:1"
eval "$("$shared/tools/start-dockerd.sh" "$dockerd_dir")"
export DOCKER_HOST
/usr/bin/docker load -i "$demo/hello.tar"
/usr/bin/docker run --rm --network=none "$host/demo/hello:1"
