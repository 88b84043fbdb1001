#!/usr/bin/env bash
# The whole test suite: installs the peers it needs, starts a private Docker engine, runs formatting and lint checks,
# every unit and end-to-end test, and the Dockerfile corpus check; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
scripts/install-deps.sh

dockerd_dir=/tmp/lade-test-dockerd
cleanup() { [ -x "$shared/tools/stop-dockerd.sh" ] && "$shared/tools/stop-dockerd.sh" "$dockerd_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [ -x "$shared/tools/start-dockerd.sh" ]; then
  eval "$("$shared/tools/start-dockerd.sh" "$dockerd_dir")"
  export DOCKER_HOST
  # The tests reuse this engine (start-dockerd.sh is idempotent for a directory).
  export LADE_TEST_DOCKERD_DIR=$dockerd_dir
elif [ "${CI:-}" = true ]; then
  echo "error: $shared/tools/start-dockerd.sh not found; the suite needs ../shared" >&2; exit 1
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --release --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

if [ -f "$shared/corpus/check.py" ] && target/release/lade dockerfile parse --help >/dev/null 2>&1; then
  python3 "$shared/corpus/check.py" -- target/release/lade dockerfile parse --format json | tail -3
elif [ -f "$shared/corpus/check.py" ]; then
  echo "corpus check: skipped, lade has no 'dockerfile parse' command yet"
else
  echo "corpus check: skipped, $shared/corpus is absent"
fi
