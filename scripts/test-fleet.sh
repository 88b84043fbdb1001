#!/usr/bin/env bash
# The registry fleet on a real distributed object store: a 3-node Garage cluster (replication factor 3) on loopback
# ports, then the fleet tests (tests/registry_s3.rs) against it: 3 lade replicas behind nginx, registry:2 on the same
# bucket, Docker through nginx, a replica killed mid-push, online GC across replicas; then the conformance replay on
# 3 replicas on the cluster (registry-server/tests/conformance_v2_s3.rs). Installs what is missing
# (scripts/install-deps.sh, then Garage from crates.io: about 25 minutes to build), stops everything at the end.
# Usage: scripts/test-fleet.sh [--bench] [cargo test filter]   (--bench: then bench/run.sh s3 on the same cluster, where
# registry:2's S3 driver works too, unlike on s3s-fs)
set -euo pipefail
bench=false
if [ "${1:-}" = --bench ]; then bench=true; shift; fi
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
if ! command -v garage >/dev/null 2>&1; then
  echo "installing: garage (cargo, --no-default-features --features bundled-libs,sqlite)" >&2
  cargo install garage --locked --no-default-features --features bundled-libs,sqlite >&2
fi
work=$(mktemp -d /tmp/lade-fleet.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret=$(openssl rand -hex 32)
s3_ports=()
for n in 1 2 3; do
  dir=$work/node$n
  mkdir -p "$dir"
  rpc=$(free_port); s3=$(free_port); admin=$(free_port)
  s3_ports+=("$s3")
  cat > "$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
  garage -c "$dir/garage.toml" server >"$dir/garage.log" 2>&1 &
  pids+=($!)
done
g() { garage -c "$work/node1/garage.toml" "$@"; }
for _ in $(seq 60); do g status >/dev/null 2>&1 && break; sleep 1; done
# Every node writes its key at startup: on a loaded machine the others may not have yet.
for n in 2 3; do
  for _ in $(seq 60); do garage -c "$work/node$n/garage.toml" node id -q >/dev/null 2>&1 && break; sleep 1; done
done
for n in 2 3; do
  id=$(garage -c "$work/node$n/garage.toml" node id -q 2>/dev/null || garage -c "$work/node$n/garage.toml" node id)
  g node connect "$id"
done
for n in 1 2 3; do
  id=$(garage -c "$work/node$n/garage.toml" node id -q 2>/dev/null || garage -c "$work/node$n/garage.toml" node id)
  g layout assign "${id%%@*}" -z dc1 -c 1G
done
g layout apply --version 1
g bucket create registry
key=$(g json-api CreateKey '{"name":"lade-fleet"}')
key_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["accessKeyId"])' "$key")
key_secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secretAccessKey"])' "$key")
g bucket allow --read --write --owner registry --key "$key_id"
g status
# Each test takes a fresh root directory in the bucket; replicas talk to different Garage nodes' S3 endpoints
# through the first one (any node serves the whole cluster).
export LADE_TEST_S3_ENDPOINT=http://127.0.0.1:${s3_ports[0]}
export LADE_TEST_S3_BUCKET=registry LADE_TEST_S3_ACCESS_KEY=$key_id LADE_TEST_S3_SECRET_KEY=$key_secret
export LADE_TEST_DOCKERD_DIR=${LADE_TEST_DOCKERD_DIR:-/tmp/lade-test-dockerd}
cargo test --test registry_s3 -- --test-threads=2 "$@"
if [ $# -eq 0 ]; then
  # The conformance replay on 3 lade replicas sharing the cluster's bucket behind a round-robin balancer, sha512
  # uploads included (s3s-fs, CI's S3 server, cannot hold their long keys).
  cargo test -p registry-server --test conformance_v2_s3
fi
echo "fleet tests passed on a 3-node Garage cluster"
if $bench; then
  BENCH_S3_ENDPOINT=$LADE_TEST_S3_ENDPOINT BENCH_S3_BUCKET=registry BENCH_S3_ACCESS_KEY=$key_id \
    BENCH_S3_SECRET_KEY=$key_secret bench/run.sh s3
fi
