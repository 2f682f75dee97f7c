"""ETL throughput: an offline md5 transform of a bucket, and inline GETs through `echo` against
plain GETs of the same objects.

One run, one cluster (1 proxy, 3 targets, 2 mountpaths each, on loopback), N objects (default
2,000 × 64 KiB). Offline: `etl-bck` through the built-in md5 transformer (hpush, object path
passed, direct put) into a new bucket, against a plain `copy-bck` of the same bucket in the same
run; objects/s from the job's start to its end (status polled every 50 ms). Inline: all N
objects read with C concurrent GETs through the proxy (`requests`, as the SDK does), plain and
with `?etl_name=<echo>`, interleaved × reps; the issue-7 target is inline echo >= 0.5x plain.

    .venv/bin/python benchmarks/etl_bench.py [--objects 2000] [--size-kib 64] [--conc 16] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ais.cli import localcluster  # noqa: E402
from tests.cluster.conftest import free_base_port  # noqa: E402

SRC = "bench-etl-src"


def parallel(fn: Callable[[str], int], names: list[str], conc: int) -> tuple[float, int]:
    sessions: dict[int, requests.Session] = {}

    def run(name: str) -> int:
        sessions.setdefault(threading.get_ident(), requests.Session())
        return fn(name)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        total = sum(pool.map(run, names))
    return time.perf_counter() - t0, total


def get_all(endpoint: str, names: list[str], conc: int, etl: str = "") -> tuple[float, int]:
    sessions: dict[int, requests.Session] = {}
    params = {"etl_name": etl} if etl else {}

    def get(name: str) -> int:
        s = sessions.setdefault(threading.get_ident(), requests.Session())
        r = s.get(f"{endpoint}/v1/objects/{SRC}/{name}", params=params, timeout=60)
        r.raise_for_status()
        return len(r.content)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as pool:
        total = sum(pool.map(get, names))
    return time.perf_counter() - t0, total


def run_job(endpoint: str, action: str, value: dict[str, Any], dst: str) -> float:
    t0 = time.perf_counter()
    r = requests.post(f"{endpoint}/v1/buckets/{SRC}", params={"bck_to": f"ais/@#/{dst}/"},
                      json={"action": action, "value": value}, timeout=60)
    r.raise_for_status()
    job_id = r.text
    while True:
        st = requests.get(f"{endpoint}/v1/cluster", params={"what": "status"}, timeout=30,
                          json={"ID": job_id, "Kind": action}).json()
        if st.get("end_time"):
            if st.get("err") or st.get("aborted"):
                raise RuntimeError(f"{action} failed: {st}")
            return time.perf_counter() - t0
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--size-kib", type=int, default=64)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"etl-{time.strftime('%Y%m%d')}.jsonl")
    rows: list[dict[str, Any]] = []
    work = tempfile.mkdtemp(prefix="etl-bench-")
    spec = localcluster.up(os.path.join(work, "cluster"), 1, 3, 2, free_base_port(8))
    try:
        ep = spec.endpoint
        requests.post(f"{ep}/v1/buckets/{SRC}", json={"action": "create-bck"}, timeout=30).raise_for_status()
        names = [f"o/{i:05d}" for i in range(args.objects)]
        payload = os.urandom(args.size_kib << 10)
        sessions: dict[int, requests.Session] = {}

        def put(name: str) -> int:
            s = sessions.setdefault(threading.get_ident(), requests.Session())
            s.put(f"{ep}/v1/objects/{SRC}/{name}", data=payload, timeout=60).raise_for_status()
            return len(payload)
        dt, _ = parallel(put, names, 16)
        print(f"put {len(names)} x {args.size_kib} KiB in {dt:.1f}s")
        for name, image in (("bench-md5", "aistorage/transformer_md5"), ("bench-echo", "aistorage/transformer_echo")):
            r = requests.put(f"{ep}/v1/etl", timeout=120, json={
                "name": name, "communication": "hpush://", "init_timeout": "2m", "obj_timeout": "45s",
                "support_direct_put": True, "runtime": {"image": image}})
            r.raise_for_status()

        # offline: md5 transform vs plain copy, interleaved
        offline: dict[str, list[float]] = {"copy-bck": [], "etl-bck md5": []}
        for rep in range(args.reps):
            offline["copy-bck"].append(run_job(ep, "copy-bck", {}, f"bench-copy-{rep}"))
            offline["etl-bck md5"].append(run_job(ep, "etl-bck", {"id": "bench-md5"}, f"bench-md5-{rep}"))
            got = requests.get(f"{ep}/v1/objects/bench-md5-{rep}/{names[0]}", timeout=30).content
            assert len(got) == 32, got
        for case, times in offline.items():
            row = {"case": case, "objects": len(names), "size_kib": args.size_kib, "seconds": times,
                   "objects_per_s": round(len(names) / statistics.median(times), 1)}
            rows.append(row)
            print(json.dumps(row))

        # inline: plain GET vs GET through echo, interleaved
        get_all(ep, names[:200], args.conc)
        get_all(ep, names[:200], args.conc, "bench-echo")
        inline: dict[str, list[float]] = {"plain GET": [], "inline echo GET": []}
        for _ in range(args.reps):
            dt, total = get_all(ep, names, args.conc)
            assert total == len(names) * len(payload)
            inline["plain GET"].append(dt)
            dt, total = get_all(ep, names, args.conc, "bench-echo")
            assert total == len(names) * len(payload)
            inline["inline echo GET"].append(dt)
        med = {k: statistics.median(v) for k, v in inline.items()}
        for case, times in inline.items():
            row = {"case": case, "objects": len(names), "size_kib": args.size_kib, "conc": args.conc,
                   "seconds": times, "objects_per_s": round(len(names) / med[case], 1),
                   "mib_per_s": round(len(names) * args.size_kib / 1024 / med[case], 1)}
            rows.append(row)
            print(json.dumps(row))
        ratio = med["plain GET"] / med["inline echo GET"]
        rows.append({"case": "inline echo / plain (throughput ratio)", "ratio": round(ratio, 3), "target": 0.5})
        print(f"inline echo / plain GET throughput: {ratio:.2f}x (target >= 0.5x)")
    finally:
        localcluster.down(os.path.join(work, "cluster"))
    with open(out, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({**row, "when": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    print(f"results appended to {out}")


if __name__ == "__main__":
    main()
