#!/usr/bin/env bash
# Seeds the tar-reading fuzz targets with small valid inputs, so that the fuzzer starts from real structure:
# layers with files, directories, links, whiteouts, long names and PAX headers; and `lade save` archives of a tiny
# image (docker-archive + OCI layout, plain and gzip). Usage: fuzz/make-seeds.sh [LADE_BINARY]
set -euo pipefail
cd "$(dirname "$0")"
lade=${1:-../target/debug/lade}
mkdir -p corpus/layer_apply corpus/archive_load
python3 - corpus/layer_apply <<'PY'
import io, sys, tarfile
out = sys.argv[1]
def layer(name, entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for kind, path, extra in entries:
            info = tarfile.TarInfo(path)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "file":
                data = extra.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, extra
                tar.addfile(info)
    open(f"{out}/{name}", "wb").write(buf.getvalue())
layer("files", [("dir", "etc", None), ("file", "etc/passwd", "root:x:0:0::/:/bin/sh\n"), ("file", "a", "hello")])
layer("links", [("file", "target", "t"), ("sym", "link", "target"), ("hard", "hard", "target"), ("sym", "up", "../../etc")])
layer("whiteouts", [("dir", "d", None), ("file", "d/.wh..wh..opq", ""), ("file", ".wh.gone", "")])
layer("long-gnu", [("file", "x" * 150 + "/" + "y" * 120, "long")], tarfile.GNU_FORMAT)
layer("pax", [("file", "p" * 300, "pax")])
PY
if [ -x "$lade" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$lade" --root "$work/store" import corpus/layer_apply/files seed:1 >/dev/null
  "$lade" --root "$work/store" save -o corpus/archive_load/dual.tar seed:1
  gzip -c corpus/archive_load/dual.tar > corpus/archive_load/dual.tar.gz
else
  echo "no lade binary at $lade: archive_load starts without seeds" >&2
fi
ls corpus/layer_apply corpus/archive_load
