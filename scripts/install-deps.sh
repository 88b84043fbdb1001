#!/usr/bin/env bash
# Installs what lade's demo, tests and benchmarks need on Debian 12, skipping what is already there:
# the peers (Docker engine, skopeo, registry:2, runc, busybox, umoci, nginx, the s3s-fs S3 server), headless
# Chromium and its WebDriver for the registry web page's browser tests, and small tools.
set -euo pipefail
declare -A packages=(
  [dockerd]=docker.io [skopeo]=skopeo [docker-registry]=docker-registry [runc]=runc
  [busybox]=busybox-static [umoci]=umoci [htpasswd]=apache2-utils [openssl]=openssl
  [/usr/bin/time]=time [python3]=python3 [wrk]=wrk [newuidmap]=uidmap [/usr/sbin/nginx]=nginx [curl]=curl
  [chromium]=chromium [chromedriver]=chromium-driver
)
missing=()
for tool in "${!packages[@]}"; do
  if [[ $tool == /* ]]; then [ -x "$tool" ] && continue; else command -v "$tool" >/dev/null 2>&1 && continue; fi
  missing+=("${packages[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1
fi
# A real S3 server for the registry's S3 tests; 0.14.1 is the last release this Rust builds.
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "installing: s3s-fs 0.14.1 (cargo)" >&2
  # The binary sits behind the crate's `binary` feature; without it cargo builds the library and installs nothing.
  cargo install s3s-fs --version 0.14.1 --locked --features binary >&2
  [ -x "$HOME/.cargo/bin/s3s-fs" ] || { echo "s3s-fs was not installed" >&2; exit 1; }
fi
