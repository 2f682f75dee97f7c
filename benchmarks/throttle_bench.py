"""Foreground GET latency with and without a background copy job, job pacing on and off.

One run, three cases on fresh clusters (1 proxy, 3 targets): `idle` (GETs only), `copy+pacing`
(a copy-bck job running the whole time, jobs paced by the load advice: the default) and
`copy, no pacing` (`AIS_LOAD_PACE_JOBS=false`). Foreground: a closed loop of 16 KiB GETs with 8
in flight, straight to the owning targets (an aiohttp client; owners learned from the proxy's
redirects first), for --seconds. Background: copy-bck of a bucket of 256 KiB objects, restarted
into a new destination whenever it finishes.

    .venv/bin/python benchmarks/throttle_bench.py [--seconds 10] [--reps 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ais.cli import localcluster  # noqa: E402
from tests.cluster.conftest import free_base_port  # noqa: E402

EXTRA_ENV = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_ENV", "").split(",") if kv)
FG_OBJECTS, FG_SIZE = 200, 16 << 10
BG_OBJECTS, BG_SIZE = 800, 256 << 10


def prepare(endpoint: str) -> list[str]:
    for b in ("fg", "bg"):
        requests.post(f"{endpoint}/v1/buckets/{b}", json={"action": "create-bck"}, timeout=30).raise_for_status()
    fg, bg = os.urandom(FG_SIZE), os.urandom(BG_SIZE)

    def put(args: tuple[str, str, bytes]) -> str:
        bucket, name, data = args
        r = requests.put(f"{endpoint}/v1/objects/{bucket}/{name}", allow_redirects=False, timeout=30)
        r2 = requests.put(r.headers["Location"], data=data, timeout=30)
        r2.raise_for_status()
        return r.headers["Location"].split("?")[0]
    with ThreadPoolExecutor(8) as pool:
        urls = list(pool.map(put, [("fg", f"o{i:04d}", fg) for i in range(FG_OBJECTS)]))
        list(pool.map(put, [("bg", f"b{i:05d}", bg) for i in range(BG_OBJECTS)]))
    return urls   # direct target URLs of the foreground objects


async def foreground(urls: list[str], seconds: float, conc: int = 8) -> list[float]:
    lat: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with s.get(urls[i % len(urls)] + "?provider=ais") as r:
                    await r.read()
                    assert r.status == 200
                lat.append(time.perf_counter() - t0)
                i += conc
        await asyncio.gather(*(worker(k) for k in range(conc)))
    return lat


def background(endpoint: str, stop: list[bool], copies: list[int]) -> None:
    n = 0
    while not stop[0]:
        n += 1
        r = requests.post(f"{endpoint}/v1/buckets/bg", params={"bck_to": f"ais/@#/bg-copy-{n}/"},
                          json={"action": "copy-bck", "value": {}}, timeout=30)
        r.raise_for_status()
        job = r.text
        while not stop[0]:
            st = requests.get(f"{endpoint}/v1/cluster", params={"what": "status"}, json={"ID": job}, timeout=30).json()
            if st["end_time"]:
                copies[0] += 1
                break
            time.sleep(0.2)
        requests.delete(f"{endpoint}/v1/buckets/bg-copy-{n}", json={"action": "destroy-bck"}, timeout=60)


def run_case(case: str, seconds: float) -> dict[str, Any]:
    root = tempfile.mkdtemp(prefix="throttle-bench-")
    env = {"AIS_LOAD_PACE_JOBS": "false"} if case == "copy, no pacing" else dict(EXTRA_ENV)
    spec = localcluster.up(root, 1, 3, 2, free_base_port(8), env=env)
    try:
        urls = prepare(spec.endpoint)
        asyncio.run(foreground(urls, 2))   # warm-up
        stop, copies = [False], [0]
        bg = None
        if case != "idle":
            import threading
            bg = threading.Thread(target=background, args=(spec.endpoint, stop, copies))
            bg.start()
            time.sleep(1)
        lat = asyncio.run(foreground(urls, seconds))
        stop[0] = True
        if bg is not None:
            bg.join()
        lat.sort()
        return {"case": case, "ops": len(lat), "ops_s": round(len(lat) / seconds, 1),
                "p50_ms": round(1000 * lat[len(lat) // 2], 2), "p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2),
                "copies_done": copies[0]}
    finally:
        localcluster.down(root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    rows = []
    for rep in range(args.reps):
        for case in ("idle", "copy+pacing", "copy, no pacing"):
            row = {"rep": rep, **run_case(case, args.seconds)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
    print("\n| case | p50 ms | p99 ms | p99 ÷ idle p99 | GET ops/s | copy jobs done |")
    print("| --- | --- | --- | --- | --- | --- |")
    idle = statistics.median(r["p99_ms"] for r in rows if r["case"] == "idle")
    for case in ("idle", "copy+pacing", "copy, no pacing"):
        rs = [r for r in rows if r["case"] == case]
        p99 = statistics.median(r["p99_ms"] for r in rs)
        print(f"| {case} | {statistics.median(r['p50_ms'] for r in rs):.2f} | {p99:.2f} | {p99 / idle:.2f}× | "
              f"{statistics.median(r['ops_s'] for r in rs):.0f} | {sum(r['copies_done'] for r in rs)} |")


if __name__ == "__main__":
    main()
