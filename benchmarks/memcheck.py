#!/usr/bin/env python3
"""memcheck: one big PUT and GET through the cluster while sampling every node's memory.

    python benchmarks/memcheck.py --dir /tmp/native-bench/memcluster --size 2GiB

PUT: the body is generated on the fly (a 1 MiB random block repeated, never held whole) and
streamed with a Content-Length; first a body-less leg to the proxy for its 307, then the body
to the owning target (the SDK's manual-redirect path). GET: through the proxy, following its
301, streamed into nothing. Both sides hash what they send/receive (xxh64) and the object's
stored checksum must match.

Every --interval s the script reads VmRSS and VmHWM from /proc/<pid>/status of each node
(pids from DIR/cluster.json, or --pid name=pid) and of itself. With --reset-hwm (default, needs
to own the processes or be root) it first writes 5 to /proc/<pid>/clear_refs, which resets
VmHWM to the current RSS, so the peak reported is this test's peak, not start-up's or an
earlier benchmark's. Prints one JSON line; exit 1 if a node's peak exceeded --limit-mib.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time

import aiohttp
import xxhash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aisloader import human_size, parse_size  # noqa: E402

BLOCK = 1 << 20


def mem_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KiB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            txt = fh.read()
    except OSError:
        return None
    vals = {}
    for line in txt.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


class Sampler(threading.Thread):
    def __init__(self, pids: dict[str, int], interval: float) -> None:
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.phase = "idle"
        self.peak: dict[str, dict[str, int]] = {}   # phase -> name -> max VmRSS KiB
        self.stop_ev = threading.Event()
        self.samples = 0

    def run(self) -> None:
        while not self.stop_ev.is_set():
            ph = self.phase
            d = self.peak.setdefault(ph, {})
            for name, pid in self.pids.items():
                m = mem_kib(pid)
                if m:
                    d[name] = max(d.get(name, 0), m[0])
            self.samples += 1
            self.stop_ev.wait(self.interval)


def node_pids(args: argparse.Namespace) -> dict[str, int]:
    pids = {}
    if args.dir:
        with open(os.path.join(args.dir, "cluster.json")) as fh:
            for n in json.load(fh)["nodes"]:
                pids[n["name"]] = int(n["pid"])
    for it in args.pid or []:
        name, _, pid = it.partition("=")
        pids[name] = int(pid)
    return pids


async def big_put(args, sess: aiohttp.ClientSession, url: str, block: bytes, nblocks: int, tail: int):
    # leg 1: the proxy's redirect, no body
    async with sess.put(url, data=b"", allow_redirects=False) as r:
        if r.status not in (301, 307) or "Location" not in r.headers:
            raise SystemExit(f"proxy PUT: HTTP {r.status}, no redirect: {await r.text()}")
        loc = r.headers["Location"]
    h = xxhash.xxh64()

    async def gen():
        for _ in range(nblocks):
            h.update(block)
            yield block
        if tail:
            h.update(block[:tail])
            yield block[:tail]

    t0 = time.monotonic()
    async with sess.put(loc, data=gen(), headers={"Content-Length": str(args.size)}) as r:
        body = await r.text()
        if r.status != 200:
            raise SystemExit(f"target PUT: HTTP {r.status}: {body[:300]}")
        stored = r.headers.get("Ais-Checksum-Value", "")
    return time.monotonic() - t0, h.hexdigest(), stored, loc.split("/v1/")[0]


async def big_get(sess: aiohttp.ClientSession, url: str):
    h = xxhash.xxh64()
    n = 0
    t0 = time.monotonic()
    async with sess.get(url) as r:  # follows the proxy's 301
        if r.status != 200:
            raise SystemExit(f"GET: HTTP {r.status}: {(await r.text())[:300]}")
        async for chunk in r.content.iter_chunked(BLOCK):
            h.update(chunk)
            n += len(chunk)
    return time.monotonic() - t0, h.hexdigest(), n


async def main_async(args, sampler: Sampler) -> dict:
    url = f"{args.endpoint.rstrip('/')}/v1/objects/{args.bucket}/{args.object}"
    block = os.urandom(BLOCK)
    nblocks, tail = divmod(args.size, BLOCK)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout, read_bufsize=1 << 20) as sess:
        async with sess.post(f"{args.endpoint.rstrip('/')}/v1/buckets/{args.bucket}",
                             json={"action": "create-bck"}) as r:
            if r.status // 100 != 2 and r.status != 409:
                raise SystemExit(f"create bucket: HTTP {r.status}: {await r.text()}")
        await asyncio.sleep(args.settle)
        sampler.phase = "put"
        put_s, put_hash, stored, owner = await big_put(args, sess, url, block, nblocks, tail)
        sampler.phase = "between"
        await asyncio.sleep(args.settle)
        if args.drop_cache:
            os.sync()
            try:
                with open("/proc/sys/vm/drop_caches", "w") as fh:
                    fh.write("1\n")
            except OSError:
                pass
        sampler.phase = "get"
        get_s, get_hash, got = await big_get(sess, url)
        sampler.phase = "after"
        await asyncio.sleep(args.settle)
        if not args.keep:
            async with sess.delete(url) as r:
                await r.read()
    ok = put_hash == get_hash == stored and got == args.size
    return {"put_s": round(put_s, 2), "put_MB_per_s": round(args.size / put_s / 1e6, 1),
            "get_s": round(get_s, 2), "get_MB_per_s": round(args.size / get_s / 1e6, 1),
            "owner": owner, "bytes_read": got, "xxh64_sent": put_hash, "xxh64_stored": stored,
            "xxh64_read": get_hash, "data_ok": ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=os.environ.get("AIS_ENDPOINT"))
    ap.add_argument("--dir", help="local cluster dir (node pids from DIR/cluster.json; endpoint too)")
    ap.add_argument("--pid", action="append", help="name=pid of a node (repeatable)")
    ap.add_argument("--size", type=parse_size, default=parse_size("2GiB"))
    ap.add_argument("--bucket", default="memcheck")
    ap.add_argument("--object", default="big-object")
    ap.add_argument("--interval", type=float, default=0.05, help="RSS sampling period, s")
    ap.add_argument("--limit-mib", type=float, default=150.0)
    ap.add_argument("--no-reset-hwm", dest="reset_hwm", action="store_false")
    ap.add_argument("--drop-cache", action="store_true", help="drop the page cache before the GET (root)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds sampled before/between/after")
    ap.add_argument("--keep", action="store_true", help="do not delete the object afterwards")
    args = ap.parse_args(argv)
    pids = node_pids(args)
    if not args.endpoint and args.dir:
        with open(os.path.join(args.dir, "cluster.json")) as fh:
            args.endpoint = f"http://127.0.0.1:{json.load(fh)['nodes'][0]['public_port']}"
    if not args.endpoint or not pids:
        ap.error("need --dir (or --endpoint and --pid name=pid ...)")
    before = {n: mem_kib(p) for n, p in pids.items()}
    if args.reset_hwm:
        for p in pids.values():
            try:
                with open(f"/proc/{p}/clear_refs", "w") as fh:
                    fh.write("5\n")
            except OSError as e:
                print(f"could not reset VmHWM of {p}: {e}", file=sys.stderr)
    pids_all = {**pids, "client": os.getpid()}
    sampler = Sampler(pids_all, args.interval)
    sampler.start()
    res = asyncio.run(main_async(args, sampler))
    sampler.stop_ev.set()
    sampler.join()
    hwm = {n: (mem_kib(p) or (0, 0))[1] for n, p in pids_all.items()}
    mib = lambda k: round(k / 1024, 1)  # noqa: E731
    nodes = {}
    for n in pids_all:
        peak_sampled = max(sampler.peak.get(ph, {}).get(n, 0) for ph in sampler.peak)
        b = before.get(n)
        nodes[n] = {
            "rss_before_MiB": mib(b[0]) if b else None,
            "hwm_before_MiB": mib(b[1]) if b else None,
            "peak_rss_put_MiB": mib(sampler.peak.get("put", {}).get(n, 0)),
            "peak_rss_get_MiB": mib(sampler.peak.get("get", {}).get(n, 0)),
            "peak_rss_sampled_MiB": mib(peak_sampled),
            "vm_hwm_after_MiB": mib(hwm[n]),
        }
    worst = max(max(v["peak_rss_sampled_MiB"], v["vm_hwm_after_MiB"] if args.reset_hwm else 0)
                for k, v in nodes.items() if k != "client")
    out = {"tool": "memcheck", "size": human_size(args.size), "size_bytes": args.size,
           "endpoint": args.endpoint, "hwm_reset": args.reset_hwm, "samples": sampler.samples,
           "interval_s": args.interval, **res, "nodes": nodes, "limit_MiB": args.limit_mib,
           "worst_node_peak_MiB": worst, "pass": bool(res["data_ok"] and worst < args.limit_mib)}
    print(json.dumps(out), flush=True)
    w = max(len(n) for n in nodes)
    print(f"{'node'.ljust(w)}  before  peak(PUT)  peak(GET)  VmHWM(after)", file=sys.stderr)
    for n, v in nodes.items():
        print(f"{n.ljust(w)}  {v['rss_before_MiB']!s:>6}  {v['peak_rss_put_MiB']:>9}  {v['peak_rss_get_MiB']:>9}"
              f"  {v['vm_hwm_after_MiB']:>12}", file=sys.stderr)
    print(f"PUT {res['put_MB_per_s']} MB/s, GET {res['get_MB_per_s']} MB/s, data ok: {res['data_ok']}, "
          f"worst node peak {worst} MiB (limit {args.limit_mib}): {'PASS' if out['pass'] else 'FAIL'}",
          file=sys.stderr)
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
