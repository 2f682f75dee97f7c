#!/usr/bin/env python3
"""native_bench: GET/PUT load against the native AIStore REST API, with nginx in the same run.

A closed-loop load generator (asyncio + uvloop, a minimal HTTP/1.1 keep-alive client, several
processes) for three kinds of server, all fed the same bytes under the same names:

  ais         through the proxy, as an SDK does: GET -> 301 -> GET at the owning target;
              PUT -> proxy leg without body -> 307 -> PUT with the body at the target
              (the proxy never reads object bodies; see "PUT legs" below)
  ais-direct  straight to the owning target (owner resolved once per key from the proxy's
              redirect, before the measurement)
  nginx       plain GET of files; PUT with nginx's WebDAV module (dav_methods PUT)
  plain       the same requests as nginx to any other plain HTTP server at --nginx-url
              (e.g. aiohttp_floor.py, the cost of aiohttp itself)

Subcommands (each prints JSON lines on stdout, progress on stderr):

  prepare  create the bucket, PUT --objects objects of --size to the cluster and write the
           very same bytes as files under --nginx-root (GET cells read these); verifies
           that a sample reads back identically from both servers
  run      one cell: --server ais|ais-direct|nginx --op get|put --size --concurrency ...
  matrix   every (rep, case, concurrency, server) cell, interleaved, appended to --out
  table    medians over repetitions of JSONL files as a markdown table, with ais/nginx ratios

Key layout: cluster  <bucket>/nb-<size in bytes>/<i:06d>
            nginx    GET  /<bucket>/nb-<size>/<i:06d>      (root = --nginx-root)
                     PUT  /put/<bucket>/nb-<size>/<i:06d>  (WebDAV location)

Measurement (same rules as ../shared/bench/s3load.py, so figures can be put side by side):
closed loop, `--concurrency` requests in flight in total, split over `--procs` processes;
`--warmup` seconds unmeasured, then `--duration` measured; an op counts if it completes in the
window. Latency = first byte of the first leg sent -> last body byte received (GET) / final
response (PUT), so the ais figures include the redirect leg. MB = 10^6 bytes.
CPU: client_cores (all client processes), server_cores (the given pids and descendants, by
node), machine_busy_cores (/proc/stat), other_cores = busy - client - server.

PUT legs: ais mode sends the first leg to the proxy with `Content-Length: 0` and the body only
to the target (what the SDK's manual-redirect path does). Sending the body to the proxy too,
as `requests` does when it follows a 307 over plain HTTP, would move every byte twice.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import time
import urllib.parse

UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
         "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
SERVERS = ("ais", "ais-direct", "nginx", "plain")
REDIRECTS = (301, 302, 303, 307, 308)


def parse_size(text: str) -> int:
    t = text.strip().lower()
    i = len(t)
    while i and not t[i - 1].isdigit():
        i -= 1
    num, unit = t[:i], t[i:].strip()
    if unit not in UNITS or not num:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 16KiB, 8MiB, 2GiB)")
    return int(float(num) * UNITS[unit])


def human_size(n: int) -> str:
    for unit, f in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= f and n % f == 0:
            return f"{n // f}{unit}"
    return f"{n}B"


def payload_for(size: int, seed: int = 7) -> bytes:
    """The bytes of every object of this size, in the cluster and in nginx's files alike."""
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def key(size: int, i: int) -> str:
    return f"nb-{size}/{i:06d}"


# --------------------------------------------------------------------------- CPU accounting
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat_busy() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        vals = [int(x) for x in fh.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


def _proc_info(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            s = fh.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), sum(int(x) for x in rest[11:15])


def tree_cpu(roots: list[int]) -> dict[int, float]:
    """CPU seconds (user+sys, incl. reaped children) of each root pid and its descendants."""
    info = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            r = _proc_info(int(name))
            if r:
                info[int(name)] = r
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in info.items():
        kids.setdefault(ppid, []).append(pid)
    out = {}
    for root in roots:
        seen, stack, total = set(), [root], 0
        while stack:
            p = stack.pop()
            if p in seen or p not in info:
                continue
            seen.add(p)
            total += info[p][1]
            stack.extend(kids.get(p, []))
        out[root] = total / CLK_TCK
    return out


def wait_quiet(limit_s: float, max_cores: float) -> float:
    """Wait (up to limit_s) until the machine is idle: < max_cores busy over 2 s. Returns busy cores."""
    t_end = time.monotonic() + limit_s
    ncpu = os.cpu_count() or 1
    while True:
        b0, t0 = proc_stat_busy()
        time.sleep(2)
        b1, t1 = proc_stat_busy()
        cores = (b1 - b0) / max(1, t1 - t0) * ncpu
        if cores < max_cores or time.monotonic() > t_end:
            return cores


def parse_pids(items: list[str] | None) -> dict[str, int]:
    """`name=pid`, `pid`, or a pidfile -> {name: pid}."""
    out = {}
    for it in items or []:
        name, _, val = it.rpartition("=")
        if not val.isdigit():
            with open(val) as fh:
                val = fh.read().split()[0]
        out[name or val] = int(val)
    return out


# --------------------------------------------------------------------------- HTTP client
class RawConn(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection, one request at a time; bodies counted, discarded.

    Content-Length and chunked bodies; remembers `Location`; honours `Connection: close`.
    About a quarter of aiohttp's client CPU per request, which matters on 2 shared cores.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.fut: asyncio.Future | None = None
        self.closed = False
        self.keep_body = False
        self._reset()

    def _reset(self) -> None:
        self.buf = b""
        self.status: int | None = None
        self.remaining: int | None = None
        self.chunked = False
        self.got = 0
        self.keep = True
        self.location: str | None = None
        self.want_body = True
        self.cstate, self.cleft = "size", 0
        self.body: list[bytes] | None = [] if self.keep_body else None

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc):  # type: ignore[override]
        self.closed = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(exc or ConnectionError("connection closed by server"))

    def request(self, head: bytes, body: bytes, want_body: bool) -> asyncio.Future:
        self._reset()
        self.want_body = want_body
        self.fut = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        return self.fut

    def _done(self) -> None:
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_result((self.status, self.got, self.keep, self.location))

    def _take(self, data: bytes) -> None:
        self.got += len(data)
        if self.body is not None:
            self.body.append(bytes(data))

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        if self.fut is None:
            return
        if self.status is None:
            self.buf += data
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head, data = self.buf[:i].decode("latin-1"), self.buf[i + 4:]
            self.buf = b""
            lines = head.split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            clen = None
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    clen = int(v)
                elif k == "transfer-encoding" and "chunked" in v.lower():
                    self.chunked = True
                elif k == "connection" and v.strip().lower() == "close":
                    self.keep = False
                elif k == "location":
                    self.location = v.strip()
            if not self.want_body or self.status in (204, 304) or (clen == 0 and not self.chunked):
                self.remaining = 0
            elif not self.chunked:
                self.remaining = clen
                if clen is None:
                    self.keep = False
        if self.chunked:
            self._chunked(data)
            return
        if self.remaining is None:  # read to EOF
            self._take(data)
            return
        n = min(len(data), self.remaining)
        if n:
            self._take(data[:n] if n < len(data) else data)
        self.remaining -= n
        if self.remaining == 0:
            self._done()

    def eof_received(self):  # type: ignore[override]
        if self.remaining is None and self.status is not None and not self.chunked:
            self._done()
        return False

    def _chunked(self, data: bytes) -> None:
        self.buf += data
        while True:
            st = self.cstate
            if st == "data":
                n = min(len(self.buf), self.cleft)
                self._take(self.buf[:n])
                self.cleft -= n
                self.buf = self.buf[n:]
                if self.cleft:
                    return
                self.cstate = st = "crlf"
            if st == "crlf":
                if len(self.buf) < 2:
                    return
                self.buf = self.buf[2:]
                self.cstate = st = "size"
            if st == "size":
                k = self.buf.find(b"\r\n")
                if k < 0:
                    return
                size = int(self.buf[:k].split(b";")[0], 16)
                self.buf = self.buf[k + 2:]
                if size:
                    self.cleft, self.cstate = size, "data"
                    continue
                self.cstate = st = "trailer"
            if st == "trailer":
                k = self.buf.find(b"\r\n")
                if k < 0:
                    return
                if k == 0:
                    self.buf = b""
                    self._done()
                    return
                self.buf = self.buf[k + 2:]


class Pool:
    """Keep-alive connections of one in-flight slot, one per host:port."""

    def __init__(self, keep_body: bool = False) -> None:
        self.conns: dict[str, RawConn] = {}
        self.keep_body = keep_body

    async def call(self, method: str, netloc: str, path: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> tuple[int, int, str | None, bytes | None]:
        conn = self.conns.get(netloc)
        if conn is None or conn.closed:
            host, _, port = netloc.rpartition(":")
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(RawConn, host, int(port))
            conn.keep_body = self.keep_body
            self.conns[netloc] = conn
        hl = [f"{method} {path} HTTP/1.1\r\nHost: {netloc}\r\n"]
        for k, v in (headers or {}).items():
            hl.append(f"{k}: {v}\r\n")
        if body or method in ("PUT", "POST"):
            hl.append(f"Content-Length: {len(body)}\r\n")
        hl.append("\r\n")
        try:
            status, got, keep, location = await conn.request("".join(hl).encode("latin-1"), body,
                                                             method != "HEAD")
        except BaseException:
            self.drop(netloc)
            raise
        data = b"".join(conn.body) if conn.body is not None else None
        if not keep:
            self.drop(netloc)
        return status, got, location, data

    def drop(self, netloc: str) -> None:
        conn = self.conns.pop(netloc, None)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    def close(self) -> None:
        for n in list(self.conns):
            self.drop(n)


def split_url(url: str) -> tuple[str, str]:
    """'http://h:p/a/b?q' -> ('h:p', '/a/b?q')."""
    rest = url.split("://", 1)[1]
    i = rest.find("/")
    return (rest, "/") if i < 0 else (rest[:i], rest[i:])


# --------------------------------------------------------------------------- request plans
class Plan:
    """How one op of a cell is done: returns (status, body bytes, error text or None)."""

    def __init__(self, a: argparse.Namespace, direct_map: dict[int, str] | None) -> None:
        self.a = a
        self.size = a.size
        self.payload = payload_for(a.size) if a.op == "put" else b""
        self.server = a.server
        self.netloc, base = split_url(a.endpoint)
        self.base = base.rstrip("/")
        self.direct = direct_map
        q = urllib.parse.quote
        if a.server in ("nginx", "plain"):
            pre = "/put" if a.op == "put" else ""
            self.paths = [f"{self.base}{pre}/{a.bucket}/{q(key(a.size, i))}" for i in range(a.objects)]
        else:
            self.paths = [f"{self.base}/v1/objects/{a.bucket}/{q(key(a.size, i))}" for i in range(a.objects)]

    async def one(self, pool: Pool, i: int) -> tuple[int, int, str | None]:
        path = self.paths[i]
        is_get = self.a.op == "get"
        method = "GET" if is_get else "PUT"
        body = b"" if is_get else self.payload
        if self.server in ("nginx", "plain"):
            st, got, _, _ = await pool.call(method, self.netloc, path, body)
            return st, (got if is_get else len(body)), None
        if self.server == "ais-direct":
            assert self.direct is not None
            st, got, loc, _ = await pool.call(method, self.direct[i], path, body)
            if st in REDIRECTS:
                return st, 0, f"direct request was redirected to {loc}"
            return st, (got if is_get else len(body)), None
        # through the proxy: first leg without body, then the owning target
        st, _, loc, _ = await pool.call(method, self.netloc, path, b"")
        if st not in REDIRECTS or not loc:
            return st, 0, f"proxy answered {st} (expected a redirect)"
        tnet, tpath = split_url(loc)
        st, got, loc2, _ = await pool.call(method, tnet, tpath, body)
        if st in REDIRECTS:
            return st, 0, f"target redirected again to {loc2}"
        return st, (got if is_get else len(body)), None


async def resolve_owners(endpoint: str, bucket: str, size: int, n: int) -> dict[int, str]:
    """key index -> owning target's host:port, from the proxy's redirects (no body sent)."""
    netloc, base = split_url(endpoint)
    base = base.rstrip("/")
    pool = Pool()
    out = {}
    try:
        for i in range(n):
            path = f"{base}/v1/objects/{bucket}/{urllib.parse.quote(key(size, i))}"
            st, _, loc, _ = await pool.call("HEAD", netloc, path)
            if st not in REDIRECTS or not loc:
                raise SystemExit(f"resolve owner of {path}: proxy answered {st}, no redirect")
            out[i] = split_url(loc)[0]
    finally:
        pool.close()
    return out


# --------------------------------------------------------------------------- worker
def pct(sorted_vals: list[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


async def run_worker(a, wid, nslots, direct_map, t_measure, t_end):
    plan = Plan(a, direct_map)
    rng = random.Random(a.seed * 1000 + wid)
    lats: list[float] = []
    nbytes = errors = 0
    status: dict[str, int] = {}
    samples: list[str] = []
    want = a.size

    async def slot():
        nonlocal nbytes, errors
        pool = Pool()
        try:
            while time.monotonic() < t_end:
                i = rng.randrange(a.objects)
                t0 = time.monotonic()
                try:
                    st, got, err = await asyncio.wait_for(plan.one(pool, i), a.timeout)
                except Exception as e:  # noqa: BLE001 - any transport failure counts
                    pool.close()
                    t1 = time.monotonic()
                    if t_measure <= t1 < t_end:
                        errors += 1
                        status["exc"] = status.get("exc", 0) + 1
                        if len(samples) < 5:
                            samples.append(f"{a.op} {i}: {type(e).__name__}: {e}"[:300])
                    await asyncio.sleep(0.01)
                    continue
                t1 = time.monotonic()
                if not (t_measure <= t1 < t_end):
                    continue
                status[str(st)] = status.get(str(st), 0) + 1
                if err or st // 100 != 2 or got != want:
                    errors += 1
                    if len(samples) < 5:
                        samples.append(f"{a.op} {i}: HTTP {st}, {got} bytes {err or ''}"[:300])
                    continue
                lats.append(t1 - t0)
                nbytes += got
        finally:
            pool.close()

    await asyncio.sleep(max(0.0, t_measure - a.warmup - time.monotonic()))
    ru0 = None

    async def cpu_mark():
        nonlocal ru0
        await asyncio.sleep(max(0.0, t_measure - time.monotonic()))
        ru0 = resource.getrusage(resource.RUSAGE_SELF)

    marker = asyncio.ensure_future(cpu_mark())
    tasks = [asyncio.ensure_future(slot()) for _ in range(nslots)]
    await asyncio.wait(tasks, timeout=max(0.0, t_end - time.monotonic()) + 0.05)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    await marker
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"lats": lats, "bytes": nbytes, "errors": errors, "status": status,
            "samples": samples, "cpu_s": cpu}


def worker_main(a, wid, nslots, direct_map, shared_t, ready_q, result_q):
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def go():
        ready_q.put(wid)
        while shared_t.value == 0.0:
            await asyncio.sleep(0.005)
        t_measure = shared_t.value
        return await run_worker(a, wid, nslots, direct_map, t_measure, t_measure + a.duration)

    try:
        res = asyncio.run(go())
    except BaseException as e:  # report, never hang the parent
        res = {"fatal": f"{type(e).__name__}: {e}"}
    result_q.put((wid, res))


def run_cell(a: argparse.Namespace) -> dict:
    direct_map = None
    if a.server == "ais-direct":
        direct_map = asyncio.run(resolve_owners(a.endpoint, a.bucket, a.size, a.objects))
    server_pids = parse_pids(a.server_pid)
    procs_n = max(1, min(a.procs, a.concurrency))
    ctx = mp.get_context("spawn")
    shared_t = ctx.Value("d", 0.0)
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    slots = [a.concurrency // procs_n + (1 if i < a.concurrency % procs_n else 0) for i in range(procs_n)]
    procs = [ctx.Process(target=worker_main, args=(a, i, slots[i], direct_map, shared_t, ready_q, result_q),
                         daemon=True) for i in range(procs_n)]
    for pr in procs:
        pr.start()
    for _ in procs:
        ready_q.get(timeout=60)
    t_measure = time.monotonic() + 0.3 + a.warmup
    t_end = t_measure + a.duration
    shared_t.value = t_measure
    print(f"== {a.label or ''} {a.server} {a.op} {human_size(a.size)} c={a.concurrency} procs={procs_n} "
          f"warmup {a.warmup}s + {a.duration}s", file=sys.stderr)
    time.sleep(max(0.0, t_measure - time.monotonic()))
    sys0, srv0, w0 = proc_stat_busy(), tree_cpu(list(server_pids.values())), time.monotonic()
    time.sleep(max(0.0, t_end - time.monotonic()))
    sys1, srv1, w1 = proc_stat_busy(), tree_cpu(list(server_pids.values())), time.monotonic()
    results = {}
    for _ in procs:
        wid, res = result_q.get(timeout=a.duration + a.timeout + 60)
        results[wid] = res
    for pr in procs:
        pr.join(timeout=10)
    fatal = [r["fatal"] for r in results.values() if "fatal" in r]
    if fatal:
        raise SystemExit(f"worker failed: {fatal}")
    lats = sorted(x for r in results.values() for x in r["lats"])
    nbytes = sum(r["bytes"] for r in results.values())
    errors = sum(r["errors"] for r in results.values())
    status: dict[str, int] = {}
    for r in results.values():
        for k, v in r["status"].items():
            status[k] = status.get(k, 0) + v
    cpu = sum(r["cpu_s"] for r in results.values())
    ncpu = os.cpu_count() or 1
    win = a.duration
    busy = (sys1[0] - sys0[0]) / max(1, sys1[1] - sys0[1]) * ncpu
    by_node = {name: round((srv1[pid] - srv0[pid]) / (w1 - w0), 3) for name, pid in server_pids.items()}
    server_cores = round(sum(by_node.values()), 3) if server_pids else None

    def ms(v):
        return None if v is None else round(v * 1000, 3)

    ops = len(lats)
    return {
        "tool": "native_bench", "label": a.label,
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "server": a.server, "server_label": getattr(a, "as_name", None) or a.server, "endpoint": a.endpoint, "bucket": a.bucket,
        "op": a.op, "size": human_size(a.size), "size_bytes": a.size, "objects": a.objects,
        "concurrency": a.concurrency, "procs": procs_n, "duration_s": win, "warmup_s": a.warmup,
        "ops": ops, "ops_per_s": round(ops / win, 1),
        "MB_per_s": round(nbytes / win / 1e6, 2), "MiB_per_s": round(nbytes / win / 2**20, 2),
        "lat_ms": {"p50": ms(pct(lats, .50)), "p90": ms(pct(lats, .90)), "p99": ms(pct(lats, .99)),
                   "max": ms(lats[-1] if lats else None), "mean": ms(sum(lats) / ops if ops else None)},
        "errors": errors, "status": status,
        "error_samples": [s for r in results.values() for s in r["samples"]][:5],
        "client_cores": round(cpu / win, 3), "machine_busy_cores": round(busy, 3), "ncpu": ncpu,
        "server_cores": server_cores, "server_cores_by_node": by_node or None,
        "other_cores": round(busy - cpu / win - server_cores, 3) if server_cores is not None else None,
        "python": sys.version.split()[0],
    }


# --------------------------------------------------------------------------- prepare
async def _prepare(a: argparse.Namespace) -> dict:
    netloc, base = split_url(a.endpoint)
    base = base.rstrip("/")
    pool = Pool()
    st, _, _, _ = await pool.call("POST", netloc, f"{base}/v1/buckets/{a.bucket}",
                                  json.dumps({"action": "create-bck"}).encode(),
                                  {"Content-Type": "application/json"})
    if st // 100 != 2 and st != 409:
        raise SystemExit(f"create bucket {a.bucket}: HTTP {st}")
    pool.close()
    out = {"op": "prepare", "bucket": a.bucket, "bucket_status": st, "sizes": {}}
    for size in a.sizes:
        payload = payload_for(size)
        digest = hashlib.md5(payload).hexdigest()
        t0 = time.monotonic()
        sem = asyncio.Semaphore(8)
        sub = argparse.Namespace(**{**vars(a), "op": "put", "size": size, "server": "ais"})
        plan = Plan(sub, None)

        async def put(i):
            async with sem:
                p = Pool()
                try:
                    for _ in range(3):
                        st, _, err = await plan.one(p, i)
                        if st // 100 == 2 and not err:
                            return
                        await asyncio.sleep(0.2)
                    raise SystemExit(f"prepare PUT {key(size, i)}: HTTP {st} {err or ''}")
                finally:
                    p.close()
        await asyncio.gather(*(put(i) for i in range(a.objects_for[size])))
        t_put = time.monotonic() - t0
        if a.nginx_root:
            d = os.path.join(a.nginx_root, a.bucket, f"nb-{size}")
            os.makedirs(d, exist_ok=True)
            for i in range(a.objects_for[size]):
                fp = os.path.join(d, f"{i:06d}")
                if os.path.exists(fp) and os.path.getsize(fp) == size:
                    with open(fp, "rb") as fh:
                        if hashlib.md5(fh.read()).hexdigest() == digest:
                            continue
                with open(fp, "wb") as fw:
                    fw.write(payload)
        # read a few back from both servers: the bytes must be the same
        checked = []
        for i in sorted({0, a.objects_for[size] - 1}):
            p = Pool(keep_body=True)
            path = f"{base}/v1/objects/{a.bucket}/{urllib.parse.quote(key(size, i))}"
            st, _, loc, _ = await p.call("GET", netloc, path)
            if st not in REDIRECTS or not loc:
                raise SystemExit(f"prepare: GET {path} at the proxy answered {st}, no redirect")
            tnet, tpath = split_url(loc)
            st, got, _, body = await p.call("GET", tnet, tpath)
            ok = st == 200 and body is not None and hashlib.md5(body).hexdigest() == digest
            if a.nginx_url and a.nginx_root:
                nnet, nbase = split_url(a.nginx_url)
                st2, _, _, body2 = await p.call("GET", nnet, f"{nbase.rstrip('/')}/{a.bucket}/{key(size, i)}")
                ok = ok and st2 == 200 and body2 is not None and hashlib.md5(body2).hexdigest() == digest
            p.close()
            if not ok:
                raise SystemExit(f"prepare: {key(size, i)} does not read back identically")
            checked.append(i)
        out["sizes"][human_size(size)] = {"objects": a.objects_for[size], "md5": digest,
                                          "put_s": round(t_put, 2), "verified": checked}
    return out


# --------------------------------------------------------------------------- table
def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float) and nd == 0:
        return f"{v:.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def table(paths: list[str]) -> str:
    rows = []
    for p in paths:
        with open(p) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    if r.get("tool") == "native_bench":
                        rows.append(r)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["op"], r["size_bytes"], r["concurrency"], r.get("server_label") or r["server"]),
                          []).append(r)

    def med(rs, f):
        vals = [f(r) for r in rs if f(r) is not None]
        return statistics.median(vals) if vals else None

    summary = {}
    for k, rs in groups.items():
        summary[k] = {
            "n": len(rs), "ops": med(rs, lambda r: r["ops_per_s"]), "mb": med(rs, lambda r: r["MB_per_s"]),
            "p50": med(rs, lambda r: r["lat_ms"]["p50"]), "p99": med(rs, lambda r: r["lat_ms"]["p99"]),
            "err": sum(r["errors"] for r in rs), "cli": med(rs, lambda r: r["client_cores"]),
            "srv": med(rs, lambda r: r["server_cores"]), "oth": med(rs, lambda r: r["other_cores"]),
            "us": med(rs, lambda r: (r["server_cores"] / r["ops_per_s"] * 1e6)
                      if r["server_cores"] is not None and r["ops_per_s"] else None),
            "min_mb": min(r["MB_per_s"] for r in rs), "max_mb": max(r["MB_per_s"] for r in rs),
        }
    order = {s: i for i, s in enumerate(SERVERS)}
    keys = sorted(summary, key=lambda k: (k[1], k[0] != "get", k[2], order.get(k[3], 9)))
    out = ["| op | size | conc | server | n | ops/s | MB/s (min–max) | p50 ms | p99 ms | errors | "
           "client cores | server cores | server CPU µs/op | other cores | × nginx (MB/s) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in keys:
        s = summary[k]
        ng = summary.get((k[0], k[1], k[2], "nginx"))
        ratio = f"{s['mb'] / ng['mb']:.2f}" if ng and ng["mb"] and k[3] != "nginx" else ""
        out.append(f"| {k[0].upper()} | {human_size(k[1])} | {k[2]} | {k[3]} | {s['n']} | {fmt(s['ops'], 0)} | "
                   f"{fmt(s['mb'])} ({fmt(s['min_mb'])}–{fmt(s['max_mb'])}) | {fmt(s['p50'], 2)} | "
                   f"{fmt(s['p99'], 2)} | {s['err']} | {fmt(s['cli'], 2)} | {fmt(s['srv'], 2)} | "
                   f"{fmt(s['us'], 0)} | {fmt(s['oth'], 2)} | {ratio} |")
    return "\n".join(out)


# --------------------------------------------------------------------------- CLI
def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default=os.environ.get("AIS_ENDPOINT", "http://127.0.0.1:8080"),
                   help="the proxy (AIS_ENDPOINT)")
    p.add_argument("--nginx-url", default=os.environ.get("NGINX_URL", "http://127.0.0.1:8581"))
    p.add_argument("--bucket", default="bench")
    p.add_argument("--objects", "-n", type=int, default=100)
    p.add_argument("--concurrency", "-c", type=int, default=16)
    p.add_argument("--procs", "-p", type=int, default=2, help="client processes")
    p.add_argument("--duration", "-d", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--timeout", type=float, default=60.0, help="per-op limit, s")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--label", default="")
    p.add_argument("--as", dest="as_name", default=None, help="name of the server in tables (default: --server)")
    p.add_argument("--ais-pid", action="append", help="name=pid of a cluster node (repeatable)")
    p.add_argument("--nginx-pid", action="append", help="nginx (or plain server) pid or pidfile")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each cell wait up to this many s for the machine to be idle (other tenants)")
    p.add_argument("--quiet-cores", type=float, default=0.3, help="'idle' = fewer busy cores than this")
    p.add_argument("--max-other", type=float, default=None,
                   help="re-run a cell (up to --retries) whose other_cores exceeded this")
    p.add_argument("--retries", type=int, default=2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    pp = sub.add_parser("prepare", help="bucket + objects in the cluster, same bytes as nginx files")
    common(pp)
    pp.add_argument("--case", action="append", default=[], metavar="SIZE:N",
                    help="objects to write, e.g. 16KiB:100 (repeatable)")
    pp.add_argument("--nginx-root", help="nginx's document root: the same bytes are written there")

    pr = sub.add_parser("run", help="one cell")
    common(pr)
    pr.add_argument("--server", choices=SERVERS, default="ais")
    pr.add_argument("--op", choices=("get", "put"), default="get")
    pr.add_argument("--size", type=parse_size, default=parse_size("16KiB"))
    pr.add_argument("--out", help="also append the JSON line to this file")

    pm = sub.add_parser("matrix", help="all cells, interleaved: rep -> case -> conc -> server")
    common(pm)
    pm.add_argument("--cases", default="get:16KiB:100 put:16KiB:1000 get:8MiB:32 put:8MiB:128",
                    help="op:size:objects words")
    pm.add_argument("--concs", default="16")
    pm.add_argument("--servers", default="ais ais-direct nginx")
    pm.add_argument("--reps", type=int, default=3)
    pm.add_argument("--out", required=True)

    pt = sub.add_parser("table", help="markdown table of JSONL results")
    pt.add_argument("files", nargs="+")

    a = ap.parse_args(argv)
    if a.cmd == "table":
        print(table(a.files))
        return 0
    if a.cmd == "prepare":
        a.objects_for = {}
        for c in a.case or [f"16KiB:{a.objects}"]:
            s, _, n = c.partition(":")
            a.objects_for[parse_size(s)] = int(n or a.objects)
        a.sizes = list(a.objects_for)
        a.size = a.sizes[0]
        a.server = "ais"
        print(json.dumps(asyncio.run(_prepare(a))), flush=True)
        return 0

    def cell(server: str, op: str, size: int, objects: int, conc: int, label: str) -> dict:
        c = argparse.Namespace(**vars(a))
        c.server, c.op, c.size, c.objects, c.concurrency, c.label = server, op, size, objects, conc, label
        plain = server in ("nginx", "plain")
        c.endpoint = a.nginx_url if plain else a.endpoint
        c.server_pid = (a.nginx_pid if plain else a.ais_pid) or []
        for attempt in range(a.retries + 1):
            busy_before = wait_quiet(a.quiet_wait, a.quiet_cores) if a.quiet_wait > 0 else None
            r = run_cell(c)
            r["busy_before_cores"] = None if busy_before is None else round(busy_before, 3)
            r["attempt"] = attempt
            if a.max_other is None or r["other_cores"] is None or r["other_cores"] <= a.max_other:
                break
            print(f"   other tenants used {r['other_cores']} cores: again", file=sys.stderr)
        line = json.dumps(r)
        print(line, flush=True)
        if a.out:
            with open(a.out, "a") as fh:
                fh.write(line + "\n")
        print(f"   {r['ops_per_s']:.0f} ops/s {r['MB_per_s']:.1f} MB/s p50 {r['lat_ms']['p50']} ms "
              f"p99 {r['lat_ms']['p99']} ms errors {r['errors']} client {r['client_cores']} "
              f"server {r['server_cores']} other {r['other_cores']}", file=sys.stderr)
        return r

    if a.cmd == "run":
        r = cell(a.server, a.op, a.size, a.objects, a.concurrency, a.label)
        return 0 if r["ops"] and not r["errors"] else 1
    # matrix
    for rep in range(1, a.reps + 1):
        for c in a.cases.split():
            op, size, n = c.split(":")
            for conc in a.concs.split():
                for server in a.servers.split():
                    cell(server, op, parse_size(size), int(n), int(conc), f"rep{rep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
