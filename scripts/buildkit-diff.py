#!/usr/bin/env python3
"""Differential probe: builds contexts with Docker's BuildKit and with lade, and prints every difference in the image
config (creation times aside), the history, the number of layers and the merged filesystem (times aside).

    scripts/buildkit-diff.py CONTEXT [-- BUILD-FLAGS...]    one context, e.g. -- --build-arg A=1 --no-cache
    scripts/buildkit-diff.py --corpus N                      the first N distinct real-world Dockerfiles of
                                                             ../shared/corpus/real, rewritten to build offline

Needs DOCKER_HOST (a dockerd from ../shared/tools/start-dockerd.sh) and `busybox:local` in both Docker and lade's
store ($LADE_ROOT); uses target/debug/lade unless $LADE is set. The corpus rewrite bases every stage on busybox:local,
turns each RUN into `exit 0; <the command>` (parsed, not run), keeps cache and tmpfs mounts, creates the context
files COPY and ADD name, and copies a small file for COPY --from; files needing heredocs, URLs or variables in
sources are skipped. A probe, not a test: exit 1 when anything differs.
"""
import difflib
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LADE = os.environ.get("LADE", os.path.join(REPO, "target", "debug", "lade"))
DOCKER = "/usr/bin/docker"


def flatten(archive):
    """The config and merged filesystem of the first image in a docker-archive."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        files = {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(layer).read())) as inner:
                for member in inner.getmembers():
                    name = member.name.rstrip("/")
                    name = name[2:] if name.startswith("./") else name
                    parent, base = os.path.split(name)
                    if base == ".wh..wh..opq":
                        files = {k: v for k, v in files.items() if not k.startswith(parent + "/")}
                        continue
                    if base.startswith(".wh."):
                        gone = os.path.join(parent, base[4:])
                        files = {k: v for k, v in files.items() if k != gone and not k.startswith(gone + "/")}
                        continue
                    digest = ""
                    if member.isfile():
                        digest = hashlib.sha256(inner.extractfile(member).read()).hexdigest()[:12]
                    files[name] = (member.type.decode(), oct(member.mode & 0o7777), member.uid, member.gid,
                                   member.linkname, digest)
    return config, files


def normalized(config):
    config = dict(config)
    for key in ("created", "container", "container_config", "docker_version", "id", "parent", "os.version"):
        config.pop(key, None)
    config["rootfs"] = len(config.get("rootfs", {}).get("diff_ids", []))
    config["history"] = [{k: v for k, v in h.items() if k != "created"} for h in config.get("history", [])]
    inner = {k: v for k, v in (config.get("config") or {}).items() if v is not None}
    for key in ("Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                "StdinOnce", "Image"):
        inner.pop(key, None)
    config["config"] = inner
    return config


def compare(context, flags):
    """Differences between the two builds of `context`, as lines; a failure of either build is one."""
    work = tempfile.mkdtemp()
    try:
        tag = "buildkit-diff:probe"
        bk = subprocess.run([DOCKER, "build", "--network=none", "-q", "-t", tag, *flags, context],
                            env={**os.environ, "DOCKER_BUILDKIT": "1"}, capture_output=True, text=True)
        ld = subprocess.run([LADE, "build", "-q", "-t", tag, *flags, context], capture_output=True, text=True)
        if bk.returncode or ld.returncode:
            if bk.returncode and ld.returncode:
                return []
            return [f"BuildKit exit {bk.returncode}, lade exit {ld.returncode}: {(bk.stderr + ld.stderr)[-600:]}"]
        subprocess.run([DOCKER, "save", "-o", f"{work}/bk.tar", tag], check=True)
        subprocess.run([LADE, "save", "-o", f"{work}/ld.tar", tag], check=True, capture_output=True)
        (bk_config, bk_files), (ld_config, ld_files) = flatten(f"{work}/bk.tar"), flatten(f"{work}/ld.tar")
        lines = []
        theirs = json.dumps(normalized(bk_config), indent=1, sort_keys=True).splitlines()
        ours = json.dumps(normalized(ld_config), indent=1, sort_keys=True).splitlines()
        lines += [l for l in difflib.unified_diff(theirs, ours, "buildkit", "lade", n=0, lineterm="")]
        for path in sorted(set(bk_files) | set(ld_files)):
            if bk_files.get(path) != ld_files.get(path):
                lines.append(f"fs {path}: buildkit {bk_files.get(path)} lade {ld_files.get(path)}")
        return lines
    finally:
        shutil.rmtree(work, ignore_errors=True)


def logical_lines(text):
    lines, current = [], ""
    for line in text.split("\n"):
        stripped = line.strip()
        if current and stripped.startswith("#"):
            continue
        if not current and (not stripped or stripped.startswith("#")):
            lines.append(line)
            continue
        current += line + "\n"
        if not line.rstrip().endswith("\\"):
            lines.append(current.rstrip("\n"))
            current = ""
    return lines + ([current] if current else [])


def offline(text, context):
    """The corpus Dockerfile `text` rewritten to build offline in `context`, or None when it cannot be."""
    if "<<" in text:
        return None
    stages, out = set(), []
    for line in logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if not re.match(r"#\s*syntax\s*=", stripped):
                out.append(line)
            continue
        word, rest = stripped.split(None, 1)[0].upper(), stripped.split(None, 1)[1] if " " in stripped else ""
        if word == "FROM":
            named = re.search(r"\s+[Aa][Ss]\s+(\S+)\s*$", rest)
            if named:
                stages.add(named.group(1).lower())
            out.append("FROM busybox:local" + (f" AS {named.group(1)}" if named else ""))
        elif word == "RUN":
            flags, body = [], rest
            while body.startswith("--"):
                flag, _, body = body.partition(" ")
                body = body.lstrip()
                if flag.startswith("--mount") and ("type=cache" in flag or "type=tmpfs" in flag) and "from=" not in flag:
                    flags.append(flag)
            out.append(" ".join(["RUN", *flags, '["true"]' if body.startswith("[") else "exit 0; " + body]))
        elif word in ("COPY", "ADD"):
            if "$" in rest or "://" in rest or rest.startswith("["):
                return None
            parts = rest.split()
            flags = [p for p in parts if p.startswith(("--chown", "--chmod"))]
            args = [p for p in parts if not p.startswith("--")]
            source = [p.split("=", 1)[1].lower() for p in parts if p.startswith("--from=")]
            if len(args) < 2:
                return None
            if source:
                origin = source[0] if source[0] in stages else "busybox:local"
                out.append(" ".join([word, *flags, f"--from={origin}", "/etc/group", args[-1]]))
                continue
            for src in args[:-1]:
                path = re.sub(r"\[[^\]]*\]|[*?]", "x", src).lstrip("/")
                full = os.path.join(context, path)
                if path in ("", ".", "./") or src.endswith("/"):
                    os.makedirs(full, exist_ok=True)
                    with open(os.path.join(full, "inner"), "w") as f:
                        f.write("inner\n")
                elif not os.path.exists(full):
                    os.makedirs(os.path.dirname(full), exist_ok=True)
                    with open(full, "w") as f:
                        f.write(path + "\n")
            out.append(" ".join([word, *flags, *args]))
        elif word == "ONBUILD":
            out.append("# " + stripped.replace("\n", " "))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def corpus(count):
    root = os.path.join(REPO, "..", "shared", "corpus", "real")
    if not os.path.isdir(root):
        sys.exit(f"no corpus at {root}")
    seen, failed, done = set(), 0, 0
    for path in sorted(glob.glob(root + "/**/Dockerfile*", recursive=True)):
        if done >= count or path.endswith(".json") or "windows" in path:
            continue
        text = open(path, errors="replace").read()
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        context = tempfile.mkdtemp()
        try:
            rewritten = offline(text, context)
            if rewritten is None:
                continue
            with open(os.path.join(context, "Dockerfile"), "w") as f:
                f.write(rewritten)
            done += 1
            lines = compare(context, ["--no-cache"])
            print(("DIFF " if lines else "same ") + os.path.relpath(path, root))
            for line in lines:
                print("  " + line)
            failed += bool(lines)
        finally:
            shutil.rmtree(context, ignore_errors=True)
    print(f"{done - failed} of {done} the same")
    return failed


def main():
    args = sys.argv[1:]
    if args[:1] == ["--corpus"]:
        sys.exit(1 if corpus(int(args[1])) else 0)
    if not args:
        sys.exit(__doc__)
    flags = args[args.index("--") + 1:] if "--" in args else []
    lines = compare(args[0], flags)
    print("\n".join(lines) if lines else "same")
    sys.exit(1 if lines else 0)


if __name__ == "__main__":
    main()
