#!/usr/bin/env python3
"""Soak test: N keep-alive connections of mixed registry traffic for a while, then a report.

Each worker owns one HTTP/1.1 connection and loops over a random mix of: pushing a fresh blob (POST + PATCH + PUT),
pushing a manifest that references blobs it pushed and tagging it, pulling a manifest by tag, pulling a blob
(whole or a byte range), listing tags, and listing the catalog. Every answer is checked (status, digest of the
content, the tag list containing what the worker pushed); anything unexpected is an error. The server's resident
memory is sampled every second from /proc.

Usage: soak.py HOST:PORT PID [--connections 64] [--seconds 600] [--label NAME]
Prints one JSON line: ops, ops/s, errors (with the first few), p50/p99 latency, peak and final RSS of PID.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Worker:
    def __init__(self, host, index, deadline, results):
        self.host = host
        self.repo = f"soak/w{index % 16}"
        self.index = index
        self.deadline = deadline
        self.results = results
        self.connection = http.client.HTTPConnection(host, timeout=60)
        self.blobs = []  # (digest, bytes)
        self.tags = []
        self.random = random.Random(index)

    def request(self, method, path, body=None, headers=None):
        if "://" in path:  # an absolute Location: keep its path and query
            path = "/" + path.split("://", 1)[1].split("/", 1)[1]
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
                # A closed keep-alive connection is retried once on a new one; a second failure is an error.
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, timeout=60)
                if attempt == 1:
                    raise error
        raise AssertionError("unreachable")

    def expect(self, what, status, wanted, body=b""):
        if status not in wanted:
            detail = f": {body[:200].decode(errors='replace').strip()}" if body else ""
            raise AssertionError(f"{what}: status {status}, wanted {wanted}{detail}")

    def push_blob(self):
        data = os.urandom(self.random.choice([512, 4096, 65536, 1 << 20]))
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, headers, _ = self.request("POST", f"/v2/{self.repo}/blobs/uploads/", b"", {"Content-Length": "0"})
        self.expect("POST upload", status, {202})
        location = headers.get("Location") or headers.get("location")
        half = len(data) // 2
        status, headers, _ = self.request(
            "PATCH",
            location,
            data[:half],
            {"Content-Type": "application/octet-stream", "Content-Range": f"0-{half - 1}", "Content-Length": str(half)},
        )
        self.expect("PATCH chunk", status, {202})
        location = headers.get("Location") or headers.get("location")
        separator = "&" if "?" in location else "?"
        status, _, _ = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data[half:],
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data) - half)},
        )
        self.expect("PUT upload", status, {201})
        self.blobs.append((digest, len(data)))
        self.blobs = self.blobs[-8:]

    def push_manifest(self):
        if not self.blobs:
            self.push_blob()
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                             "worker": self.index, "at": time.time()}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        status, headers, _ = self.request(
            "POST", f"/v2/{self.repo}/blobs/uploads/?digest={config_digest}", config,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(config))})
        self.expect("monolithic POST", status, {201, 202})
        if status == 202:
            # registry:2 opens a session instead of taking the body (the spec lets it): finish with one PUT.
            location = headers.get("Location") or headers.get("location")
            separator = "&" if "?" in location else "?"
            status, _, answer = self.request(
                "PUT", f"{location}{separator}digest={config_digest}", config,
                {"Content-Type": "application/octet-stream", "Content-Length": str(len(config))})
            self.expect("monolithic PUT", status, {201}, answer)
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                  for d, s in self.random.sample(self.blobs, min(3, len(self.blobs)))]
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": config_digest, "size": len(config)},
                               "layers": layers}).encode()
        tag = f"w{self.index}-{self.random.randrange(4)}"
        status, headers, answer = self.request(
            "PUT", f"/v2/{self.repo}/manifests/{tag}", manifest,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        self.expect("PUT manifest", status, {201}, answer)
        digest = headers.get("Docker-Content-Digest") or headers.get("docker-content-digest")
        if digest != "sha256:" + hashlib.sha256(manifest).hexdigest():
            raise AssertionError(f"manifest digest header {digest}")
        if tag not in self.tags:
            self.tags.append(tag)

    def pull_manifest(self):
        if not self.tags:
            return self.push_manifest()
        tag = self.random.choice(self.tags)
        status, headers, body = self.request(
            "GET", f"/v2/{self.repo}/manifests/{tag}", None,
            {"Accept": "application/vnd.oci.image.manifest.v1+json"})
        self.expect("GET manifest", status, {200})
        digest = headers.get("Docker-Content-Digest") or headers.get("docker-content-digest")
        if digest != "sha256:" + hashlib.sha256(body).hexdigest():
            raise AssertionError("manifest body does not match its digest header")

    def pull_blob(self):
        if not self.blobs:
            return self.push_blob()
        digest, size = self.random.choice(self.blobs)
        if self.random.random() < 0.3 and size > 10:
            status, _, body = self.request("GET", f"/v2/{self.repo}/blobs/{digest}", None, {"Range": "bytes=0-9"})
            self.expect("GET blob range", status, {206})
            if len(body) != 10:
                raise AssertionError("short range")
            return
        status, _, body = self.request("GET", f"/v2/{self.repo}/blobs/{digest}")
        self.expect("GET blob", status, {200})
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise AssertionError(f"blob {digest} came back with other content")

    def list_tags(self):
        status, _, body = self.request("GET", f"/v2/{self.repo}/tags/list?n=1000")
        self.expect("GET tags", status, {200, 404} if not self.tags else {200})
        if self.tags:
            listed = json.loads(body).get("tags") or []
            missing = [t for t in self.tags if t not in listed]
            if missing:
                raise AssertionError(f"tags {missing} missing from the list")

    def catalog(self):
        status, _, _ = self.request("GET", "/v2/_catalog?n=100")
        self.expect("GET catalog", status, {200})

    def run(self):
        operations = [(self.push_blob, 2), (self.push_manifest, 2), (self.pull_manifest, 6), (self.pull_blob, 6),
                      (self.list_tags, 2), (self.catalog, 1)]
        choices = [op for op, weight in operations for _ in range(weight)]
        while time.time() < self.deadline:
            operation = self.random.choice(choices)
            start = time.perf_counter()
            try:
                operation()
                self.results["latencies"].append(time.perf_counter() - start)
            except Exception as error:  # every failure counts, whatever its kind
                self.results["errors"].append(f"{operation.__name__}: {error}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("pid", type=int)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--label", default="registry")
    args = parser.parse_args()
    deadline = time.time() + args.seconds
    results = {"latencies": [], "errors": []}
    workers = [Worker(args.host, i, deadline, results) for i in range(args.connections)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    peak = 0
    start = time.time()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_kib(args.pid))
        time.sleep(1)
    elapsed = time.time() - start
    latencies = sorted(results["latencies"])
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
    print(json.dumps({
        "label": args.label, "connections": args.connections, "seconds": round(elapsed, 1),
        "ops": len(latencies), "ops_per_s": round(len(latencies) / elapsed, 1),
        "errors": len(results["errors"]), "first_errors": results["errors"][:5],
        "p50_ms": round(pick(0.5), 2), "p99_ms": round(pick(0.99), 2),
        "peak_rss_mib": round(peak / 1024, 1), "final_rss_mib": round(rss_kib(args.pid) / 1024, 1),
    }))


if __name__ == "__main__":
    main()
