#!/usr/bin/env python3
"""Global rebalance from 3 to 4 targets: throughput (MB/s) and the fraction of objects moved.

    python benchmarks/rebalance_bench.py [--count 2000] [--size 128KiB] [--fsync] [--json out.jsonl]

Starts a fresh local cluster (1 proxy, 3 targets, 2 mountpaths each) in a temp dir, PUTs
`count` objects of `size` random bytes, starts a 4th target and waits for the rebalance job
it triggers. Reports the objects and bytes the targets sent (the jobs' `out-objs`/`out-bytes`),
the fraction of objects moved (HRW's ideal: 1/4), the rebalance's wall time (earliest job
start to latest job end over the targets, which includes the wait for the slowest target),
and MB/s = bytes moved / that time (MB = 10^6 bytes). Tears the cluster down.
"""
from __future__ import annotations

import argparse
import calendar
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ais.cli import localcluster  # noqa: E402
from ais.cli.localcluster import NodeSpec  # noqa: E402
from tests.cluster.conftest import free_base_port  # noqa: E402


def parse_size(text: str) -> int:
    units = {"kib": 1 << 10, "mib": 1 << 20, "kb": 1000, "mb": 10**6, "b": 1}
    low = text.lower()
    for u, m in units.items():
        if low.endswith(u):
            return int(float(low[: -len(u)]) * m)
    return int(text)


def request(method: str, url: str, body: Any = None, data: bytes | None = None) -> bytes:
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        out: bytes = r.read()
        return out


def rfc3339_ns(text: str) -> int:
    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int((frac or "0").ljust(9, "0")[:9])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--size", default="128KiB")
    ap.add_argument("--fsync", action="store_true", help="fsync every write (the default config); off: page cache")
    ap.add_argument("--json", default="", help="append the result as one JSON line to this file")
    args = ap.parse_args()
    size = parse_size(args.size)
    root = tempfile.mkdtemp(prefix="rebalance-bench-")
    spec = localcluster.up(root, 1, 3, 2, free_base_port(8), fsync=args.fsync)
    try:
        ep = spec.endpoint
        from aistore import Client
        client = Client(ep)
        bck = client.bucket("rebench")
        bck.create()
        payload = os.urandom(size)

        def put(part: range) -> None:
            for i in part:
                bck.object(f"o/{i:06d}").get_writer().put_content(payload)
        t0 = time.monotonic()
        threads = [threading.Thread(target=put, args=(range(k, args.count, 8),)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"PUT {args.count} x {size} B in {time.monotonic() - t0:.1f}s", file=sys.stderr)

        known = {j.uuid for j in client.cluster().list_jobs_status(job_kind="rebalance")}
        port = free_base_port(2)
        node = NodeSpec("t3", "target", port, port + 1, [os.path.join(root, "t3", f"mp{j}") for j in range(2)])
        spec.nodes.append(node)
        localcluster.start_node(spec, node)
        spec.save()
        localcluster.wait_ready(spec)
        job_id = ""
        while not job_id:
            ids = {j.uuid for j in client.cluster().list_jobs_status(job_kind="rebalance")} - known
            job_id = max(ids, key=lambda i: int(i[1:])) if ids else ""
            time.sleep(0.05)
        client.job(job_id=job_id, job_kind="rebalance").wait(timeout=600)
        snaps = json.loads(request("GET", f"{ep}/v1/cluster?what=qryxstats", {"id": job_id, "kind": "rebalance"}))
        flat = [s for ss in snaps.values() for s in ss]
        moved = sum(int(s["stats"]["out-objs"]) for s in flat)
        moved_bytes = sum(int(s["stats"]["out-bytes"]) for s in flat)
        start = min(rfc3339_ns(s["start-time"]) for s in flat)
        end = max(rfc3339_ns(s["end-time"]) for s in flat)
        secs = (end - start) / 1e9
        result = {"bench": "rebalance-3to4", "count": args.count, "size": size, "fsync": args.fsync,
                  "moved_objects": moved, "moved_fraction": round(moved / args.count, 4),
                  "moved_bytes": moved_bytes, "seconds": round(secs, 2),
                  "mb_per_s": round(moved_bytes / 1e6 / secs, 1) if secs else 0.0,
                  "objects_per_s": round(moved / secs, 1) if secs else 0.0, "errors": [s["err"] for s in flat if s["err"]]}
        print(json.dumps(result))
        if args.json:
            with open(args.json, "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
    finally:
        localcluster.down(root, purge=True)


if __name__ == "__main__":
    main()
