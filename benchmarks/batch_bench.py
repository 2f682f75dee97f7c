"""Batch-get against one GET per object, and the designated target's memory on a huge batch.

One run, one cluster (1 proxy, 3 targets, 2 mountpaths each, on loopback): N small objects
(default 1,000 × 16 KiB) are read (a) one GET at a time, (b) with 16 concurrent GETs, (c) in one
batch-get (a streamed tar, parsed with `tarfile` as a loader would). All through the proxy
with `requests`, as the SDK does. Rounds interleave (a, b, c) × reps so machine drift hits every
case alike; the table shows medians and the issue-5 targets: (c) >= 10x (a), >= 3x (b).

Then one batch of `--huge` entries (default 100,000: the N objects named over and over) is
streamed and discarded while the designated target's peak RSS (VmHWM) is read.

    .venv/bin/python benchmarks/batch_bench.py [--objects 1000] [--size-kib 16] [--reps 3] [--huge 100000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ais.cli import localcluster  # noqa: E402
from tests.cluster.conftest import free_base_port  # noqa: E402

BUCKET = "bench-batch"


def one_by_one(endpoint: str, names: list[str], conc: int) -> tuple[float, int]:
    sessions: dict[int, requests.Session] = {}

    def get(name: str) -> int:
        import threading
        s = sessions.setdefault(threading.get_ident(), requests.Session())
        r = s.get(f"{endpoint}/v1/objects/{BUCKET}/{name}", timeout=30)
        r.raise_for_status()
        return len(r.content)
    t0 = time.perf_counter()
    if conc == 1:
        total = sum(map(get, names))
    else:
        with ThreadPoolExecutor(conc) as pool:
            total = sum(pool.map(get, names))
    return time.perf_counter() - t0, total


def batch(endpoint: str, names: list[str]) -> tuple[float, int]:
    body = json.dumps({"in": [{"objname": n} for n in names], "mime": ".tar", "coer": False})
    t0 = time.perf_counter()
    with requests.get(f"{endpoint}/v1/ml/moss/{BUCKET}", data=body, stream=True, timeout=120,
                      headers={"Content-Type": "application/json"}) as r:
        r.raise_for_status()
        total = 0
        with tarfile.open(fileobj=r.raw, mode="r|") as t:
            for m in t:
                f = t.extractfile(m)
                total += len(f.read()) if f else 0
    return time.perf_counter() - t0, total


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def huge_batch(spec: Any, names: list[str], entries: int) -> dict[str, Any]:
    body = json.dumps({"in": [{"objname": names[i % len(names)]} for i in range(entries)]})
    t0 = time.perf_counter()
    with requests.get(f"{spec.endpoint}/v1/ml/moss/{BUCKET}", data=body, stream=True, timeout=600,
                      headers={"Content-Type": "application/json"}) as r:
        r.raise_for_status()
        port = int(r.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        dt = next(n for n in spec.nodes if n.public_port == port)
        before = vm_hwm_kib(dt.pid)
        total = sum(len(c) for c in r.iter_content(1 << 20))
    return {"case": "huge", "entries": entries, "body_mib": round(len(body) / 2**20, 1),
            "archive_mib": round(total / 2**20, 1), "seconds": round(time.perf_counter() - t0, 2),
            "dt_peak_rss_mib": round(vm_hwm_kib(dt.pid) / 1024, 1), "dt_rss_at_start_mib": round(before / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--size-kib", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--huge", type=int, default=100_000)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="batch-bench-")
    spec = localcluster.up(os.path.join(work, "cluster"), 1, 3, 2, free_base_port(8))
    rows: list[dict[str, Any]] = []
    try:
        requests.post(f"{spec.endpoint}/v1/buckets/{BUCKET}", json={"action": "create-bck"}, timeout=30).raise_for_status()
        payload = os.urandom(args.size_kib << 10)
        names = [f"sample-{i:06d}" for i in range(args.objects)]

        def put(name: str) -> None:
            requests.put(f"{spec.endpoint}/v1/objects/{BUCKET}/{name}", data=payload, timeout=30).raise_for_status()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, names))
        expected = len(payload) * len(names)
        cases = {"a: one GET at a time": lambda: one_by_one(spec.endpoint, names, 1),
                 "b: 16 concurrent GETs": lambda: one_by_one(spec.endpoint, names, 16),
                 "c: one batch-get": lambda: batch(spec.endpoint, names)}
        batch(spec.endpoint, names[:10])   # warm connections and the get-batch job
        for rep in range(args.reps):
            for case, fn in cases.items():
                secs, total = fn()
                assert total == expected, (case, total, expected)
                row = {"case": case, "rep": rep, "seconds": round(secs, 4), "objects": len(names),
                       "size_kib": args.size_kib, "objs_per_s": round(len(names) / secs, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
        if args.huge:
            row = huge_batch(spec, names, args.huge)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        localcluster.down(os.path.join(work, "cluster"))
    med = {c: statistics.median(r["seconds"] for r in rows if r["case"] == c) for c in
           ("a: one GET at a time", "b: 16 concurrent GETs", "c: one batch-get")}
    a, b, c = med.values()
    print(f"\n| case | median s | objects/s | speed-up of batch |\n|---|---|---|---|")
    for case, s in med.items():
        print(f"| {case} | {s:.3f} | {args.objects / s:.0f} | {s / c:.1f}x |")
    print(f"\ntargets: batch >= 10x one-at-a-time: {a / c:.1f}x ({'met' if a / c >= 10 else 'NOT met'}); "
          f">= 3x 16 concurrent: {b / c:.1f}x ({'met' if b / c >= 3 else 'NOT met'})")
    huge = [r for r in rows if r["case"] == "huge"]
    if huge:
        h = huge[0]
        print(f"{h['entries']}-entry batch: designated target peak RSS {h['dt_peak_rss_mib']} MiB "
              f"(target < 300: {'met' if h['dt_peak_rss_mib'] < 300 else 'NOT met'}), {h['archive_mib']} MiB in "
              f"{h['seconds']} s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
