#!/usr/bin/env bash
# lade vs its peers, side by side in one run, on the same generated data. Prints a table of times, lade/peer ratios
# and lade's peak RSS. Usage: bench/run.sh   (env: BENCH_SIZE_MIB, default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
size_mib=${BENCH_SIZE_MIB:-1024}
scripts/install-deps.sh
cargo build --release --locked -q
lade=$PWD/target/release/lade
work=$(mktemp -d /var/tmp/lade-bench.XXXXXX)
dockerd_dir=/tmp/lade-bench-dockerd
cleanup() { "$shared/tools/stop-dockerd.sh" "$dockerd_dir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
eval "$("$shared/tools/start-dockerd.sh" "$dockerd_dir")"
export DOCKER_HOST
docker=/usr/bin/docker

# seconds and peak RSS (KiB) of a command, from GNU time
measure() { /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null; cat "$work/time"; }
rows=()
row() { # name lade_seconds lade_rss peer_name peer_seconds
  local ratio; ratio=$(python3 -c "print(f'{$2/$5:.2f}')")
  rows+=("$(printf '%-34s %9.2f s %9.2f s %7s× %9.1f MiB  (%s)' "$1" "$2" "$5" "$ratio" "$(python3 -c "print($3/1024)")" "$4")")
}

echo "generating a ${size_mib} MiB image (incompressible data in 4 layers' worth of files) ..."
mkdir -p "$work/rootfs"
for i in 1 2 3 4; do head -c $((size_mib * 1024 * 1024 / 4)) /dev/urandom > "$work/rootfs/blob$i"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" . && rm -rf "$work/rootfs"
"$lade" --root "$work/store" import "$work/rootfs.tar" bench:big >/dev/null
"$lade" --root "$work/store" save -o "$work/seed.tar" bench:big
$docker load -i "$work/seed.tar" >/dev/null
sync

# save
read -r d_save _ < <(measure $docker save -o "$work/docker-save.tar" bench:big)
read -r l_save l_save_rss < <(measure "$lade" --root "$work/store" --progress=plain save -o "$work/lade-save.tar" bench:big)
row "save ${size_mib} MiB image" "$l_save" "$l_save_rss" "docker save" "$d_save"

# load (each into an empty store / after removing the image)
$docker rmi bench:big >/dev/null
read -r d_load _ < <(measure $docker load -i "$work/docker-save.tar")
read -r l_load l_load_rss < <(measure "$lade" --root "$work/store2" --progress=plain load -i "$work/docker-save.tar")
row "load ${size_mib} MiB image" "$l_load" "$l_load_rss" "docker load" "$d_load"

echo
printf '%-34s %11s %11s %8s %13s\n' "benchmark" "lade" "peer" "ratio" "lade peak RSS"
printf '%s\n' "${rows[@]}"
