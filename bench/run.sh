#!/usr/bin/env bash
# lade vs its peers, side by side in one run, on the same generated data. Prints a table of times, lade/peer ratios
# and lade's peak RSS. Usage: bench/run.sh [archive|build|cache|registry|mirror|transfer|rootless|s3|soak]...   (default: all but
# soak). Env: BENCH_SIZE_MIB (image and context size, default 1024), SOAK_SECONDS (per registry, default 600).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
size_mib=${BENCH_SIZE_MIB:-1024}
groups=${*:-archive build cache registry mirror transfer rootless s3}
scripts/install-deps.sh
cargo build --release --locked -q
lade=$PWD/target/release/lade
work=$(mktemp -d /var/tmp/lade-bench.XXXXXX)
dockerd_dir=/tmp/lade-bench-dockerd
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$shared/tools/stop-dockerd.sh" "$dockerd_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$shared/tools/start-dockerd.sh" "$dockerd_dir")"
export DOCKER_HOST
docker=/usr/bin/docker
export LADE_ROOT=$work/store

# "seconds peak-RSS-KiB" of a command, from GNU time
measure() { /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; return 1; }; cat "$work/time"; }
rows=()
row() { # name lade_seconds lade_rss_kib peer_name peer_seconds
  rows+=("$(python3 -c "import sys; n,l,r,p,ps=sys.argv[1:]; print(f'{n:<44} {float(l):8.2f} s {float(ps):8.2f} s {float(l)/max(float(ps),0.001):7.2f}x {int(r)/1024:8.1f} MiB  ({p})')" "$@")")
  echo "${rows[-1]}" >&2
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$shared/tools/make-busybox-base.sh" "$work/base" >/dev/null
$docker load -i "$work/base/busybox-docker-save.tar" >/dev/null
"$lade" load -q -i "$work/base/busybox-docker-save.tar" >/dev/null

make_big_image() {
  [ -f "$work/big.tar" ] && return
  mkdir -p "$work/bigroot"
  for i in 1 2 3 4; do head -c $((size_mib * 1024 * 1024 / 4)) /dev/urandom > "$work/bigroot/blob$i"; done
  tar -C "$work/bigroot" -cf "$work/rootfs.tar" . && rm -rf "$work/bigroot"
  "$lade" import "$work/rootfs.tar" bench:big >/dev/null
  "$lade" save -o "$work/big.tar" bench:big
  $docker load -i "$work/big.tar" >/dev/null
  rm -f "$work/rootfs.tar"
  sync
}

# A realistic image: the first BENCH_SIZE_MIB of this machine's /usr (binaries, libraries, headers, debug symbols),
# built by lade with COPY, so its layer is stored gzip-compressed as every built image's is. $work/usr.tar is lade's
# save of it; $work/usr-docker.tar is Docker's own save (uncompressed layers), the archive a Docker user would copy.
make_usr_image() {
  [ -f "$work/usr.tar" ] && return
  local ctx=$work/ctx-usr
  mkdir -p "$ctx/rootfs"
  python3 -c '
import os, sys
limit, total = int(sys.argv[1]) * 1024 * 1024, 0
for root, dirs, files in os.walk("/usr"):
    dirs.sort()
    print(os.path.relpath(root, "/"))
    for name in sorted(files):
        path = os.path.join(root, name)
        if os.path.isfile(path) and not os.path.islink(path):
            total += os.path.getsize(path)
        print(os.path.relpath(path, "/"))
        if total >= limit:
            sys.exit(0)
' "$size_mib" > "$work/usr-files"
  tar -C / --no-recursion -cf - -T "$work/usr-files" | tar -C "$ctx/rootfs" -xf -
  printf 'FROM scratch\nCOPY rootfs/ /\n' > "$ctx/Dockerfile"
  "$lade" build -q -t bench:usr "$ctx" >/dev/null
  rm -rf "$ctx"
  "$lade" save -o "$work/usr.tar" bench:usr
  $docker load -i "$work/usr.tar" >/dev/null
  $docker save -o "$work/usr-docker.tar" bench:usr
  sync
}

bench_archive() {
  make_big_image
  read -r d _ < <(measure $docker save -o "$work/docker-save.tar" bench:big)
  read -r l r < <(measure "$lade" --progress=plain save -o "$work/lade-save.tar" bench:big)
  row "save ${size_mib} MiB image" "$l" "$r" "docker save" "$d"
  $docker rmi bench:big >/dev/null
  read -r d _ < <(measure $docker load -i "$work/docker-save.tar")
  read -r l r < <(measure env LADE_ROOT="$work/store-load" "$lade" --progress=plain load -i "$work/docker-save.tar")
  row "load ${size_mib} MiB image" "$l" "$r" "docker load" "$d"
  rm -rf "$work/store-load" "$work/docker-save.tar" "$work/lade-save.tar"
}

# cold, no-op and one-file-edit builds of the node-style fixture with each builder
bench_build() {
  for builder in lade buildkit classic; do
    rm -rf "$work/ctx-$builder" && cp -a fixtures/nodeapp "$work/ctx-$builder"
  done
  build() { # builder context tag [--no-cache]
    case $1 in
      lade) measure "$lade" build -q ${4:-} -t "$3" "$2" ;;
      buildkit) measure env DOCKER_BUILDKIT=1 $docker build --network=none -q ${4:-} -t "$3" "$2" ;;
      classic) measure env DOCKER_BUILDKIT=0 $docker build --network=none -q ${4:-} -t "$3" "$2" ;;
    esac
  }
  declare -A cold noop edit rss
  for builder in lade buildkit classic; do
    read -r cold[$builder] rss[$builder] < <(build $builder "$work/ctx-$builder" "nodeapp-$builder" --no-cache)
    read -r noop[$builder] _ < <(build $builder "$work/ctx-$builder" "nodeapp-$builder")
    echo "module.exports = $RANDOM;" > "$work/ctx-$builder/src/util.js"
    read -r edit[$builder] _ < <(build $builder "$work/ctx-$builder" "nodeapp-$builder")
  done
  for peer in buildkit classic; do
    row "build node-style app, cold" "${cold[lade]}" "${rss[lade]}" "$peer" "${cold[$peer]}"
    row "build node-style app, no-op rebuild" "${noop[lade]}" "${rss[lade]}" "$peer" "${noop[$peer]}"
    row "build node-style app, one-file edit" "${edit[lade]}" "${rss[lade]}" "$peer" "${edit[$peer]}"
  done
  # The multi-stage fixture (two independent stages feeding a FROM scratch stage), cold.
  local multi
  for builder in lade buildkit classic; do
    read -r multi _ < <(build $builder fixtures/multistage "multistage-$builder" --no-cache)
    cold[$builder]=$multi
  done
  for peer in buildkit classic; do
    row "build multi-stage fixture, cold" "${cold[lade]}" "${rss[lade]}" "$peer" "${cold[$peer]}"
  done
  # A big COPY context: incompressible data, text, and many small files.
  local ctx=$work/ctx-big
  mkdir -p "$ctx/small"
  head -c $((size_mib * 1024 * 1024 * 3 / 4)) /dev/urandom > "$ctx/random.bin"
  python3 -c "import sys; line=b'lade benchmark text line, compressible\n'; n=$((size_mib * 1024 * 1024 / 4)); sys.stdout.buffer.write((line * (n // len(line) + 1))[:n])" > "$ctx/text.txt"
  python3 -c "
import os
for i in range(50000):
    d=os.path.join('$ctx/small', str(i % 100))
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f'{i}.txt'), 'w').write(f'file {i}\n')
"
  printf 'FROM busybox:local\nCOPY . /ctx\n' > "$ctx/Dockerfile"
  read -r l r < <(measure "$lade" build -q --no-cache -t big-lade "$ctx")
  read -r b _ < <(measure env DOCKER_BUILDKIT=1 $docker build --network=none -q --no-cache -t big-bk "$ctx")
  row "build ${size_mib} MiB COPY context, cold" "$l" "$r" "buildkit" "$b"
  read -r l r < <(measure "$lade" build -q -t big-lade "$ctx")
  read -r b _ < <(measure env DOCKER_BUILDKIT=1 $docker build --network=none -q -t big-bk "$ctx")
  row "build ${size_mib} MiB COPY context, no-op" "$l" "$r" "buildkit" "$b"
  $docker rmi big-bk >/dev/null; rm -rf "$ctx"
}

# Fresh-machine rebuilds through a registry, as on a CI fleet: machine A builds and exports its cache to registry:2,
# then a machine holding only the base image builds again. lade exports `--cache-to type=registry,mode=max` and
# imports it with --cache-from; Docker 20.10's BuildKit can import only an inline cache, so it builds with
# BUILDKIT_INLINE_CACHE=1, pushes the image, and builds again from a pruned builder with --cache-from of that image.
# Each "fresh machine" is a new lade store with the base loaded, or Docker with its build cache pruned and the
# built images removed (the base stays, for both). Cold builds on the same fresh machines are the reference.
bench_cache() {
  start_registries
  local fixture n=$RANDOM
  fresh_lade() { rm -rf "$work/cache-fresh" && LADE_ROOT=$work/cache-fresh "$lade" load -q -i "$work/base/busybox-docker-save.tar" >/dev/null; }
  fresh_docker() { # images to remove
    $docker rmi -f "$@" >/dev/null 2>&1 || true
    $docker builder prune -af >/dev/null
  }
  for fixture in nodeapp cicache; do
    local ctx=$work/ctx-cache-$fixture cache_ref=$reg2/lade-cache-$n/$fixture:buildcache bk_ref=$reg2/bk-cache-$n/$fixture:1
    rm -rf "$ctx" && cp -a "fixtures/$fixture" "$ctx"
    # Machine A.
    rm -rf "$work/cache-a" && LADE_ROOT=$work/cache-a "$lade" load -q -i "$work/base/busybox-docker-save.tar" >/dev/null
    LADE_ROOT=$work/cache-a "$lade" build -q --network=none --cache-to "type=registry,ref=$cache_ref,mode=max" -t "$fixture-lade" "$ctx" >/dev/null
    rm -rf "$work/cache-a"
    fresh_docker "$bk_ref"
    DOCKER_BUILDKIT=1 $docker build --network=none -q --build-arg BUILDKIT_INLINE_CACHE=1 -t "$bk_ref" "$ctx" >/dev/null
    $docker push "$bk_ref" >/dev/null
    # Fresh machines.
    local cold cached rss bk_cold bk_cached
    fresh_lade
    read -r cold _ < <(measure env LADE_ROOT="$work/cache-fresh" "$lade" build -q --network=none -t "$fixture-lade" "$ctx")
    fresh_lade
    read -r cached rss < <(measure env LADE_ROOT="$work/cache-fresh" "$lade" build -q --network=none --cache-from "type=registry,ref=$cache_ref" -t "$fixture-lade" "$ctx")
    fresh_docker "$bk_ref" "$fixture-bk"
    read -r bk_cold _ < <(measure env DOCKER_BUILDKIT=1 $docker build --network=none -q -t "$fixture-bk" "$ctx")
    fresh_docker "$bk_ref" "$fixture-bk"
    read -r bk_cached _ < <(measure env DOCKER_BUILDKIT=1 $docker build --network=none -q --cache-from "$bk_ref" -t "$fixture-bk" "$ctx")
    fresh_docker "$bk_ref" "$fixture-bk"
    rm -rf "$work/cache-fresh"
    row "fresh-machine build $fixture, --cache-from" "$cached" "$rss" "buildkit --cache-from inline" "$bk_cached"
    row "fresh-machine build $fixture, --cache-from" "$cached" "$rss" "lade cold, fresh machine" "$cold"
    row "fresh-machine build $fixture, cold" "$cold" "$rss" "buildkit cold" "$bk_cold"
  done
}

start_registries() {
  [ -n "${lade_reg:-}" ] && return
  local port
  port=$(free_port)
  "$lade" registry serve --addr "127.0.0.1:$port" --root "$work/lade-registry" >/dev/null 2>&1 &
  pids+=($!); lade_reg=127.0.0.1:$port; lade_reg_pid=$!
  port=$(free_port)
  mkdir -p "$work/registry2"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\nlog:\n  level: error\n  accesslog:\n    disabled: true\n' "$work/registry2" "$port" > "$work/registry2.yml"
  docker-registry serve "$work/registry2.yml" >/dev/null 2>&1 &
  pids+=($!); reg2=127.0.0.1:$port; reg2_pid=$!
  sleep 1
}

# manifest GETs at 64 connections, a big blob GET, and 8 concurrent pulls, on each registry; and their peak RSS
bench_registry() {
  make_big_image
  start_registries
  for reg in "$lade_reg" "$reg2"; do
    "$lade" tag busybox:local "$reg/bench/busybox:1" && "$lade" push -q "$reg/bench/busybox:1" >/dev/null
    "$lade" tag bench:big "$reg/bench/big:1" && "$lade" push -q "$reg/bench/big:1" >/dev/null
    wrk -t2 -c64 -d10s --latency -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "http://$reg/v2/bench/busybox/manifests/1" > "$work/wrk-$reg.txt"
  done
  python3 - "$work/wrk-$lade_reg.txt" "$work/wrk-$reg2.txt" <<'PY' | tee -a "$work/notes"
import re, sys
def parse(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    return rps, float(p99.group(1)) * scale
(lr, lp), (rr, rp) = parse(sys.argv[1]), parse(sys.argv[2])
print(f"manifest GET, 64 connections: lade {lr:,.0f} req/s (p99 {lp:.1f} ms), registry:2 {rr:,.0f} req/s (p99 {rp:.1f} ms): {lr/rr:.1f}x the requests")
PY
  local blob
  blob=$("$lade" inspect bench:big | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RootFS"]["Layers"][0])')
  # best of three, alternating, so one cold cache or scheduling hiccup does not decide the row
  local l=999 r=999 t
  for _ in 1 2 3; do
    read -r t _ < <(measure curl -sf -o /dev/null "http://$lade_reg/v2/bench/big/blobs/$blob"); l=$(python3 -c "print(min($l, $t))")
    read -r t _ < <(measure curl -sf -o /dev/null "http://$reg2/v2/bench/big/blobs/$blob"); r=$(python3 -c "print(min($r, $t))")
  done
  row "GET ${size_mib} MiB blob (curl, best of 3), lade registry" "$l" 0 "registry:2" "$r"
  for reg in "$lade_reg" "$reg2"; do
    start=$(date +%s.%N)
    pulls=()
    for i in 1 2 3 4 5 6 7 8; do LADE_ROOT="$work/pull-$i" "$lade" pull -q "$reg/bench/big:1" >/dev/null & pulls+=($!); done
    wait "${pulls[@]}"
    end=$(date +%s.%N)
    rm -rf "$work"/pull-*
    echo "$end - $start" | bc > "$work/eight-$reg"
  done
  row "8 concurrent pulls of ${size_mib} MiB, lade registry" "$(cat "$work/eight-$lade_reg")" 0 "registry:2" "$(cat "$work/eight-$reg2")"
  echo "registry peak RSS: lade $(awk '/VmHWM/{print $2/1024" MiB"}' /proc/$lade_reg_pid/status), registry:2 $(awk '/VmHWM/{print $2/1024" MiB"}' /proc/$reg2_pid/status)" | tee -a "$work/notes"
}

# Pull-through mirrors of the registry:2 above: lade (`proxy.remoteurl`) and registry:2 in proxy mode, each on a
# fresh root. A miss is the first GET of the big layer blob (fetched upstream, stored, streamed on), a hit the second
# (from the mirror's store); then a whole `lade pull` of the big image through each mirror, cold and warm.
bench_mirror() {
  make_big_image
  start_registries
  "$lade" tag bench:big "$reg2/bench/big:1" && "$lade" push -q "$reg2/bench/big:1" >/dev/null
  local port lade_mirror reg2_mirror lade_mirror_pid
  port=$(free_port)
  printf 'proxy:\n  remoteurl: http://%s\n' "$reg2" > "$work/lade-mirror.yml"
  "$lade" registry serve --addr "127.0.0.1:$port" --root "$work/lade-mirror" --config "$work/lade-mirror.yml" >/dev/null 2>&1 &
  pids+=($!); lade_mirror=127.0.0.1:$port; lade_mirror_pid=$!
  port=$(free_port)
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\nlog:\n  level: error\n  accesslog:\n    disabled: true\nproxy:\n  remoteurl: http://%s\n' \
    "$work/registry2-mirror" "$port" "$reg2" > "$work/registry2-mirror.yml"
  docker-registry serve "$work/registry2-mirror.yml" >/dev/null 2>&1 &
  pids+=($!); reg2_mirror=127.0.0.1:$port
  sleep 1
  local blob
  blob=$("$lade" inspect bench:big | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["RootFS"]["Layers"][0])')
  local -A miss hit
  for reg in "$lade_mirror" "$reg2_mirror"; do
    read -r miss[$reg] _ < <(measure curl -sf -o /dev/null "http://$reg/v2/bench/big/blobs/$blob")
    read -r hit[$reg] _ < <(measure curl -sf -o /dev/null "http://$reg/v2/bench/big/blobs/$blob")
  done
  row "mirror miss: GET ${size_mib} MiB blob, lade mirror" "${miss[$lade_mirror]}" 0 "registry:2 proxy" "${miss[$reg2_mirror]}"
  row "mirror hit: GET ${size_mib} MiB blob, lade mirror" "${hit[$lade_mirror]}" 0 "registry:2 proxy" "${hit[$reg2_mirror]}"
  row "mirror hit vs miss, lade mirror" "${hit[$lade_mirror]}" 0 "lade miss" "${miss[$lade_mirror]}"
  local -A cold warm
  for reg in "$lade_mirror" "$reg2_mirror"; do
    # The manifest is not cached yet (only the blob): the cold pull fetches it and the config.
    read -r cold[$reg] _ < <(measure env LADE_ROOT="$work/mirror-pull-1" "$lade" pull -q "$reg/bench/big:1")
    read -r warm[$reg] _ < <(measure env LADE_ROOT="$work/mirror-pull-2" "$lade" pull -q "$reg/bench/big:1")
    rm -rf "$work"/mirror-pull-*
  done
  row "lade pull ${size_mib} MiB through a mirror, first" "${cold[$lade_mirror]}" 0 "registry:2 proxy" "${cold[$reg2_mirror]}"
  row "lade pull ${size_mib} MiB through a mirror, again" "${warm[$lade_mirror]}" 0 "registry:2 proxy" "${warm[$reg2_mirror]}"
  echo "lade mirror peak RSS: $(awk '/VmHWM/{print $2/1024" MiB"}' /proc/$lade_mirror_pid/status)" | tee -a "$work/notes"
}

# POST, one streamed PATCH of the image's layer blob from store $3, and the closing PUT, with curl
curl_upload() { # registry repository store
  local blob location
  blob=$(python3 - "$3" <<'PY'
import json, sys, os
root = sys.argv[1]
index = json.load(open(os.path.join(root, "index.json")))
for m in index["manifests"]:
    manifest = json.load(open(os.path.join(root, "blobs", *m["digest"].split(":"))))
    if "layers" in manifest:
        print(max(manifest["layers"], key=lambda l: l["size"])["digest"]); break
PY
)
  location=$(curl -sf -D - -o /dev/null -X POST "http://$1/v2/$2/blobs/uploads/" | awk -F': ' 'tolower($1)=="location"{print $2}' | tr -d '\r')
  case $location in http*) ;; *) location=http://$1$location ;; esac
  location=$(curl -sf -D - -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -T "$3/blobs/${blob/://}" "$location" | awk -F': ' 'tolower($1)=="location"{print $2}' | tr -d '\r')
  case $location in http*) ;; *) location=http://$1$location ;; esac
  case $location in *\?*) location="$location&digest=$blob" ;; *) location="$location?digest=$blob" ;; esac
  curl -sf -o /dev/null -X PUT "$location"
}

bench_transfer() {
  make_big_image
  make_usr_image
  start_registries
  transfer_image big "$work/big.tar" "$work/big.tar" random
  transfer_image usr "$work/usr.tar" "$work/usr-docker.tar" "/usr files"
}

# Push and pull of bench:$1 with each tool, into and out of each registry. lade's pushing store is loaded from $2
# (lade's save: its layers as lade stores them); skopeo copies $3 (Docker's save); Docker pushes its own copy.
transfer_image() { # name lade-archive docker-archive label
  local name=$1 label="${size_mib} MiB $4 image" n=$RANDOM
  # A store that has never pushed anywhere, and fresh repositories: nothing is skipped or mounted.
  local pusher=$work/store-push-$name
  LADE_ROOT=$pusher "$lade" load -q -i "$2" >/dev/null
  for reg in "$reg2" "$lade_reg"; do
    LADE_ROOT=$pusher "$lade" tag "bench:$name" "$reg/lade-$n/$name:1"
    read -r l r < <(measure env LADE_ROOT="$pusher" "$lade" push -q "$reg/lade-$n/$name:1")
    $docker tag "bench:$name" "$reg/docker-$n/$name:1"
    read -r d _ < <(measure $docker push "$reg/docker-$n/$name:1")
    read -r s _ < <(measure skopeo copy -q --dest-tls-verify=false "docker-archive:$3" "docker://$reg/skopeo-$n/$name:1")
    row "push $label to ${reg##*:}" "$l" "$r" "docker push" "$d"
    row "push $label to ${reg##*:}" "$l" "$r" "skopeo copy" "$s"
    # The registry's own ingest speed bounds every client: one streamed PATCH of the same layer blob by curl.
    local started
    started=$(date +%s.%N)
    curl_upload "$reg" "curl-$n/$name" "$pusher"
    c=$(echo "$(date +%s.%N) - $started" | bc)
    row "push $label to ${reg##*:}" "$l" "$r" "curl PATCH of its layer" "$c"
    read -r l r < <(measure env LADE_ROOT="$work/store-pull" "$lade" pull -q "$reg/lade-$n/$name:1")
    read -r s _ < <(measure skopeo copy -q --src-tls-verify=false "docker://$reg/lade-$n/$name:1" "oci:$work/skopeo-oci:$name")
    # Docker must not hold the layers: drop every tag of the image, pull, then load the original back.
    $docker rmi -f "$($docker images -q "bench:$name")" >/dev/null
    read -r d _ < <(measure $docker pull "$reg/docker-$n/$name:1")
    row "pull $label from ${reg##*:}" "$l" "$r" "skopeo to oci:" "$s"
    row "pull $label from ${reg##*:}" "$l" "$r" "docker pull" "$d"
    rm -rf "$work/store-pull" "$work/skopeo-oci"
    $docker rmi -f "$($docker images -q "$reg/docker-$n/$name:1")" >/dev/null
    $docker load -i "$3" >/dev/null
  done
  rm -rf "$pusher"
}

# The registry on S3: lade replicas and registry:2 serving one s3s-fs bucket (or BENCH_S3_ENDPOINT with
# BENCH_S3_BUCKET/ACCESS_KEY/SECRET_KEY, e.g. the Garage cluster of scripts/test-fleet.sh), both started from the same
# registry:2 config.yml. Push and pull of the 1 GiB random image by lade through each, and each server's peak RSS.
# registry:2's S3 driver needs ListMultipartUploads, which s3s-fs lacks: there its pushes fail and the push rows
# compare lade on S3 with lade on the filesystem instead (said in the row).
bench_s3() {
  make_big_image
  local endpoint bucket=${BENCH_S3_BUCKET:-registry} key=${BENCH_S3_ACCESS_KEY:-bench} secret=${BENCH_S3_SECRET_KEY:-bench-secret}
  if [ -n "${BENCH_S3_ENDPOINT:-}" ]; then
    endpoint=$BENCH_S3_ENDPOINT
  else
    local port; port=$(free_port)
    mkdir -p "$work/s3/$bucket"
    "${S3S_FS:-$HOME/.cargo/bin/s3s-fs}" --host 127.0.0.1 --port "$port" --access-key "$key" --secret-key "$secret" "$work/s3" >/dev/null 2>&1 &
    pids+=($!); endpoint=http://127.0.0.1:$port
    sleep 1
  fi
  printf 'version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  s3:
    accesskey: %s
    secretkey: %s
    region: us-east-1
    regionendpoint: %s
    bucket: %s
    rootdirectory: /bench-%s
    forcepathstyle: true
    secure: false
  delete:
    enabled: true
http:
  secret: bench
' \
    "$key" "$secret" "$endpoint" "$bucket" "$RANDOM" > "$work/s3.yml"
  local lport rport fport
  lport=$(free_port); rport=$(free_port); fport=$(free_port)
  REGISTRY_HTTP_ADDR=127.0.0.1:$lport "$lade" registry serve --config "$work/s3.yml" >/dev/null 2>"$work/lade-s3.log" &
  pids+=($!); local lpid=$!
  REGISTRY_HTTP_ADDR=127.0.0.1:$rport env -u AWS_CA_BUNDLE docker-registry serve "$work/s3.yml" >/dev/null 2>&1 &
  pids+=($!); local rpid=$!
  "$lade" registry serve --addr "127.0.0.1:$fport" --root "$work/lade-fs-registry" >/dev/null 2>&1 &
  pids+=($!)
  sleep 2
  local pusher=$work/store-push-s3 n=$RANDOM
  LADE_ROOT=$pusher "$lade" load -q -i "$work/big.tar" >/dev/null
  # The push compresses the stored layer once and keeps the result: an untimed push to a throwaway registry first,
  # so that neither timed push pays for it (before, the first one, lade's, did).
  local wport wpid; wport=$(free_port)
  "$lade" registry serve --addr "127.0.0.1:$wport" --root "$work/warm-registry" >/dev/null 2>&1 &
  wpid=$!; sleep 1
  LADE_ROOT=$pusher "$lade" tag bench:big "127.0.0.1:$wport/warm/big:1"
  LADE_ROOT=$pusher "$lade" push -q "127.0.0.1:$wport/warm/big:1" >/dev/null
  kill "$wpid"; wait "$wpid" 2>/dev/null || true; rm -rf "$work/warm-registry"
  local l lr r peer="registry:2 on the same S3"
  LADE_ROOT=$pusher "$lade" tag bench:big "127.0.0.1:$lport/s3-$n/big:1"
  read -r l lr < <(measure env LADE_ROOT="$pusher" "$lade" push -q "127.0.0.1:$lport/s3-$n/big:1")
  LADE_ROOT=$pusher "$lade" tag bench:big "127.0.0.1:$rport/s3r-$n/big:1"
  if ! read -r r _ < <(measure env LADE_ROOT="$pusher" "$lade" push -q "127.0.0.1:$rport/s3r-$n/big:1"); then
    peer="lade on the filesystem (registry:2 cannot push to s3s-fs)"
    LADE_ROOT=$pusher "$lade" tag bench:big "127.0.0.1:$fport/fs-$n/big:1"
    read -r r _ < <(measure env LADE_ROOT="$pusher" "$lade" push -q "127.0.0.1:$fport/fs-$n/big:1")
  fi
  row "push ${size_mib} MiB random image, lade registry on S3" "$l" "$lr" "$peer" "$r"
  # Both read the image lade's replica wrote: the same bucket, the same client.
  read -r l lr < <(measure env LADE_ROOT="$work/store-pull-s3a" "$lade" pull -q "127.0.0.1:$lport/s3-$n/big:1")
  read -r r _ < <(measure env LADE_ROOT="$work/store-pull-s3b" "$lade" pull -q "127.0.0.1:$rport/s3-$n/big:1")
  row "pull ${size_mib} MiB random image, lade registry on S3" "$l" "$lr" "registry:2 on the same S3" "$r"
  rm -rf "$pusher" "$work"/store-pull-s3?
  echo "S3 registry peak RSS: lade $(awk '/VmHWM/{print $2/1024" MiB"}' /proc/$lpid/status), registry:2 $(awk '/VmHWM/{print $2/1024" MiB"}' /proc/$rpid/status)" | tee -a "$work/notes"
  bench_s3_replicas "$lport" "$lpid" "s3-fleet-$n"
}

# 8 concurrent pulls of a BENCH_FLEET_MIB (256) image through 3 lade replicas on one bucket behind nginx, against the
# same pulls through one of them behind the same nginx: the aggregate throughput the replicas add.
bench_s3_replicas() {
  local first=$1 first_pid=$2 repo=$3 mib=${BENCH_FLEET_MIB:-256}
  local second third both one
  second=$(free_port); third=$(free_port); both=$(free_port); one=$(free_port)
  REGISTRY_HTTP_ADDR=127.0.0.1:$second "$lade" registry serve --config "$work/s3.yml" >/dev/null 2>&1 &
  pids+=($!); local second_pid=$!
  REGISTRY_HTTP_ADDR=127.0.0.1:$third "$lade" registry serve --config "$work/s3.yml" >/dev/null 2>&1 &
  pids+=($!); local third_pid=$!
  mkdir -p "$work/nginx-tmp"
  local proxy='proxy_http_version 1.1; proxy_set_header Host $http_host; proxy_set_header Connection "";'
  printf '%s\n' \
    "worker_processes 2; pid $work/nginx.pid; error_log $work/nginx-error.log; daemon off;" \
    "events { worker_connections 1024; }" \
    "http {" \
    "  access_log off; client_max_body_size 0; proxy_request_buffering off; proxy_buffering off;" \
    "  client_body_temp_path $work/nginx-tmp; proxy_temp_path $work/nginx-tmp;" \
    "  upstream replicas { server 127.0.0.1:$first; server 127.0.0.1:$second; server 127.0.0.1:$third; keepalive 16; }" \
    "  upstream single { server 127.0.0.1:$first; keepalive 16; }" \
    "  server { listen 127.0.0.1:$both; location / { proxy_pass http://replicas; $proxy } }" \
    "  server { listen 127.0.0.1:$one; location / { proxy_pass http://single; $proxy } }" \
    "}" > "$work/nginx.conf"
  nginx -c "$work/nginx.conf" &
  pids+=($!)
  sleep 1
  mkdir -p "$work/fleetroot"
  head -c "$((mib << 20))" /dev/urandom > "$work/fleetroot/data"
  tar -C "$work/fleetroot" -cf "$work/fleet.tar" .
  local pusher=$work/store-push-fleet
  LADE_ROOT=$pusher "$lade" import "$work/fleet.tar" "127.0.0.1:$first/$repo/img:1" >/dev/null
  LADE_ROOT=$pusher "$lade" push -q "127.0.0.1:$first/$repo/img:1" >/dev/null
  local through_one through_three rss
  through_one=$(pull8 "127.0.0.1:$one/$repo/img:1")
  through_three=$(pull8 "127.0.0.1:$both/$repo/img:1")
  rm -rf "$work"/store-p8-* "$pusher" "$work/fleetroot" "$work/fleet.tar"
  rss=$(cat "/proc/$first_pid/status" "/proc/$second_pid/status" "/proc/$third_pid/status" |
    awk '/VmHWM/ { if ($2 > m) m = $2 } END { print m }')
  row "8 pulls of ${mib} MiB, 3 replicas behind nginx" "$through_three" "$rss" "1 replica behind nginx" "$through_one"
  echo "replica pulls: $((8 * mib)) MiB in ${through_three} s through 3 replicas, ${through_one} s through 1 (RSS column: the largest replica)" | tee -a "$work/notes"
}

# The wall seconds of 8 concurrent `lade pull`s of an image into fresh stores.
pull8() {
  local image=$1 start end i pulls=()
  rm -rf "$work"/store-p8-*
  start=$(date +%s.%N)
  for i in 1 2 3 4 5 6 7 8; do
    LADE_ROOT=$work/store-p8-$i "$lade" pull -q "$image" >/dev/null &
    pulls+=($!)
  done
  for i in "${pulls[@]}"; do wait "$i"; done
  end=$(date +%s.%N)
  python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$end"
}

# Rootless: cold and no-op builds of the node-style fixture by lade as an unprivileged user (made here, with a
# subordinate id range), against lade as root and buildah rootless (apt buildah) in the same run.
bench_rootless() {
  local user=lade-bench home=$work/home-rootless
  command -v buildah >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >&2
  id -u "$user" >/dev/null 2>&1 || useradd --create-home --user-group "$user"
  grep -q "^$user:" /etc/subuid || usermod --add-subuids 400000-465535 --add-subgids 400000-465535 "$user"
  chmod 755 "$work" && mkdir -p "$home" && chown "$user:" "$home"
  cp "$lade" "$work/lade-rootless" && chmod 755 "$work/lade-rootless"
  chmod a+r "$work/base/busybox-docker-save.tar" && chmod 755 "$work/base"
  local as_user=(runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" XDG_DATA_HOME="$home")
  "${as_user[@]}" "$work/lade-rootless" load -q -i "$work/base/busybox-docker-save.tar" >/dev/null
  "${as_user[@]}" buildah pull -q "docker-archive:$work/base/busybox-docker-save.tar" >/dev/null
  "${as_user[@]}" buildah tag "$("${as_user[@]}" buildah images -q | head -n1)" busybox:local
  for builder in root user buildah; do
    rm -rf "$work/ctx-rl-$builder" && cp -a fixtures/nodeapp "$work/ctx-rl-$builder" && chmod -R a+rX "$work/ctx-rl-$builder"
  done
  build() { # builder [--no-cache]
    case $1 in
      root) measure "$lade" build -q ${2:-} -t nodeapp-rl "$work/ctx-rl-root" ;;
      user) measure "${as_user[@]}" "$work/lade-rootless" build -q ${2:-} -t nodeapp-rl "$work/ctx-rl-user" ;;
      buildah) measure "${as_user[@]}" buildah bud --network=none --layers -q ${2:-} -t nodeapp-rl "$work/ctx-rl-buildah" ;;
    esac
  }
  local -A cold noop rss
  for builder in root user buildah; do
    read -r cold[$builder] rss[$builder] < <(build $builder --no-cache)
    read -r noop[$builder] _ < <(build $builder)
  done
  for peer in root buildah; do
    local name="lade as root"; [ $peer = buildah ] && name="buildah rootless"
    row "rootless build node-style app, cold" "${cold[user]}" "${rss[user]}" "$name" "${cold[$peer]}"
    row "rootless build node-style app, no-op" "${noop[user]}" "${rss[user]}" "$name" "${noop[$peer]}"
  done
}

# 64 keep-alive connections of mixed push/pull/manifest/tag-list traffic for SOAK_SECONDS (default 600) against
# each registry in turn: every answer checked, server RSS sampled each second (bench/soak.py)
bench_soak() {
  start_registries
  local seconds=${SOAK_SECONDS:-600}
  python3 bench/soak.py "$lade_reg" "$lade_reg_pid" --seconds "$seconds" --label "lade registry" | tee "$work/soak-lade.json"
  python3 bench/soak.py "$reg2" "$reg2_pid" --seconds "$seconds" --label "registry:2" | tee "$work/soak-reg2.json"
  python3 - "$work/soak-lade.json" "$work/soak-reg2.json" <<'PY' | tee -a "$work/notes"
import json, sys
l, r = (json.load(open(p)) for p in sys.argv[1:])
for s in (l, r):
    print(f"soak {s['label']}: {s['connections']} connections, {s['seconds']:.0f} s, {s['ops']} ops ({s['ops_per_s']}/s), "
          f"{s['errors']} errors, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, peak RSS {s['peak_rss_mib']} MiB, final {s['final_rss_mib']} MiB")
print(f"soak: lade does {l['ops_per_s'] / max(r['ops_per_s'], 0.001):.2f}x registry:2's operations per second")
PY
}

for group in $groups; do "bench_$group"; done
echo
printf '%-44s %10s %10s %8s %12s\n' "benchmark (registry ports in names)" "lade" "peer" "ratio" "lade RSS"
printf '%s\n' "${rows[@]}"
if [ -f "$work/notes" ]; then cat "$work/notes"; fi
