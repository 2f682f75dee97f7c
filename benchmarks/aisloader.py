#!/usr/bin/env python3
"""aisloader: a load generator for this cluster and its peers, in the spirit of AIStore's aisloader.

A closed-loop generator (asyncio + uvloop, a minimal HTTP/1.1 keep-alive client, several
processes) that drives any of these *targets* with the same bytes under the same names:

  ais         the native API through the proxy, as an SDK does: GET -> 301 -> GET at the owning
              target; PUT -> proxy leg without body -> 307 -> PUT with the body at the target
              (the proxy never reads object bodies; see "PUT legs" below)
  ais-direct  the native API straight to the owning target (owner resolved once per key from the
              proxy's redirect, before the measurement)
  s3          any S3 endpoint, path-style, AWS SigV4 header auth (this cluster's `/s3`, Swift's
              s3api, ...); the payload hash is the real SHA-256 of the body (computed once per
              buffer) unless `unsigned=1` (UNSIGNED-PAYLOAD); no `ak` = anonymous
  plain       plain HTTP (nginx, aiohttp_floor.py): GET /<bucket>/<key>, PUT /put/<bucket>/<key>
              (nginx's WebDAV location in nginx_peer.sh)
  batch       batch-get through the proxy: GET /v1/ml/moss/<bucket> with a JSON body naming
              `batch` objects (a streamed tar), 307 to the designated target, the body re-sent
  dd          not HTTP: `dd if=/dev/zero bs=<size> conv=fsync` into a directory (the raw write
              speed of a filesystem; PUT cells only)

Subcommands (JSON lines on stdout, progress on stderr):

  prepare  create the bucket and write --objects objects of each size to every target (files
           under `root=` for plain targets); reads two back from each and checks the MD5
  run      one cell: one target, --op get|put|mixed, --size, --concurrency, ...
  matrix   (alias compare) every (rep, case, concurrency, target) cell, interleaved
           rep -> case -> concurrency -> target (target order rotated each rep), appended to --out
  table    medians over repetitions of JSONL files as a markdown table, with ratios to a baseline

Targets are given as `--target NAME=KIND:URL[,option=value...]`, e.g.

  --target ais=ais:http://127.0.0.1:33080,cluster=/tmp/c
  --target ais-s3=s3:http://127.0.0.1:33080/s3,ak=KEY,sk=SECRET,cluster=/tmp/c
  --target swift=s3:http://127.0.0.1:33480,ak=test:tester,sk=testing,pids=/tmp/swift/run/*.pid
  --target nginx=plain:http://127.0.0.1:33481,root=/tmp/nginx/www,pids=/tmp/nginx/master.pid
  --target batch=batch:http://127.0.0.1:33080,batch=64
  --target dd=dd:/tmp/c,bytes=1GiB,sizes=8MiB

Options: bucket (default bench), pids (`+`-separated pids, pidfiles, globs or name=pid: whose CPU
is the server's), cluster (a local cluster's directory: its nodes' pids), ak, sk, region,
unsigned, root, put (plain PUT prefix, default /put), batch (entries per batch-get, default 32),
bytes (dd: bytes per cell, default 1GiB), ops and sizes (`+`-separated: the cells this target
takes part in). The old flags (--server ais|ais-direct|nginx|plain with --endpoint, --nginx-url,
--ais-pid, --nginx-pid, --as) still work when no --target is given.

Key layout: <bucket>/nb-<size in bytes>/<i:06d> everywhere (plain: files <root>/<bucket>/nb-...).
Keys: `--keys random` (default) picks i uniformly in [0, objects); `--keys sequential` walks
them in order, each client process from its own offset. `--mix get=80,put=20` (with
`--op mixed`) picks each operation at random with these weights; PUTs write the same bytes, so
GETs of overwritten keys still read the expected size.

Measurement (same rules as ../shared/bench/s3load.py, so figures can be put side by side):
closed loop, `--concurrency` requests in flight in total, split over `--procs` processes;
`--warmup` seconds unmeasured, then `--duration` measured; an op counts if it completes in the
window. Latency = first byte of the first leg sent -> last body byte received (GET) / final
response (PUT), so the ais figures include the redirect leg. MB = 10^6 bytes. Output per cell:
ops/s, MB/s, latency p50/p90/p99/max/mean, errors (+ HTTP status counts, samples), and for a
mixed cell the same per operation under `by_op`.
CPU: client_cores (all client processes), server_cores (the target's pids and descendants, by
node), machine_busy_cores (/proc/stat), other_cores = busy - client - server.

PUT legs: ais mode sends the first leg to the proxy with `Content-Length: 0` and the body only
to the target (what the SDK's manual-redirect path does). Sending the body to the proxy too,
as `requests` does when it follows a 307 over plain HTTP, would move every byte twice.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import glob
import hashlib
import hmac
import json
import math
import multiprocessing as mp
import os
import random
import resource
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402

UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
         "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
KINDS = ("ais", "ais-direct", "s3", "plain", "batch", "dd")
SERVERS = ("ais", "ais-direct", "nginx", "plain")   # the old --server choices
REDIRECTS = (301, 302, 303, 307, 308)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"


def parse_size(text: str) -> int:
    t = text.strip().lower()
    i = len(t)
    while i and not t[i - 1].isdigit():
        i -= 1
    num, unit = t[:i], t[i:].strip()
    if unit not in UNITS or not num:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 16KiB, 8MiB, 2GiB)")
    return int(float(num) * UNITS[unit])


human_size = bench_report.human_size


def payload_for(size: int, seed: int = 7) -> bytes:
    """The bytes of every object of this size, in every target alike."""
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def key(size: int, i: int) -> str:
    return f"nb-{size}/{i:06d}"


def parse_mix(text: str) -> list[tuple[str, int]]:
    """'get=80,put=20' -> [('get', 80), ('put', 20)]."""
    out = []
    for part in text.replace("+", ",").split(","):
        op, _, w = part.strip().partition("=")
        if op not in ("get", "put") or not w.isdigit():
            raise argparse.ArgumentTypeError(f"bad mix {text!r} (use e.g. get=80,put=20)")
        out.append((op, int(w)))
    if not out or sum(w for _, w in out) <= 0:
        raise argparse.ArgumentTypeError(f"bad mix {text!r}: weights sum to 0")
    return out


def pct(sorted_vals: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (q in [0, 1]); None for no values."""
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def lat_summary(sorted_lats: list[float]) -> dict:
    """Latency percentiles in ms of an ascending list of seconds."""
    def ms(v):
        return None if v is None else round(v * 1000, 3)
    n = len(sorted_lats)
    return {"p50": ms(pct(sorted_lats, .50)), "p90": ms(pct(sorted_lats, .90)), "p99": ms(pct(sorted_lats, .99)),
            "max": ms(sorted_lats[-1] if n else None), "mean": ms(sum(sorted_lats) / n if n else None)}


# --------------------------------------------------------------------------- targets
@dataclasses.dataclass
class Target:
    """One thing to measure: a name (shown in tables), a kind (KINDS) and where it is."""
    name: str
    kind: str
    url: str = ""
    bucket: str = "bench"
    pids: list[str] = dataclasses.field(default_factory=list)
    cluster: str = ""
    ak: str = ""
    sk: str = ""
    region: str = "us-east-1"
    unsigned: bool = False
    root: str = ""
    put: str = "/put"
    batch: int = 32
    bytes: int = 1 << 30
    ops: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()

    def serves(self, op: str, size: int) -> bool:
        if self.kind == "dd" and op != "put" or self.kind == "batch" and op != "get":
            return False
        if self.ops and op not in self.ops:
            return False
        return not self.sizes or size in self.sizes

    def server_pids(self) -> dict[str, int]:
        """name -> pid of every process whose CPU (with its descendants) is this server's."""
        out: dict[str, int] = {}
        if self.cluster:
            with open(os.path.join(self.cluster, "cluster.json")) as fh:
                out.update({n["name"]: int(n["pid"]) for n in json.load(fh)["nodes"]})
        out.update(parse_pids(self.pids))
        return out


def parse_target(spec: str) -> Target:
    """`NAME=KIND:URL[,opt=val...]` or `KIND:URL[,...]` -> Target."""
    head, _, rest = spec.partition(":")
    name, eq, kind = head.partition("=")
    if not eq:
        name, kind = head, head
    if kind == "nginx":
        kind = "plain"
    if kind not in KINDS:
        raise argparse.ArgumentTypeError(f"target {spec!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    url, *opts = rest.split(",")
    t = Target(name=name, kind=kind, url=url.rstrip("/") if kind != "dd" else url)
    for o in opts:
        k, _, v = o.partition("=")
        if k in ("pids", "ops"):
            setattr(t, k, [x for x in v.split("+") if x] if k == "pids" else tuple(v.split("+")))
        elif k == "sizes":
            t.sizes = tuple(parse_size(x) for x in v.split("+") if x)
        elif k in ("batch",):
            t.batch = int(v)
        elif k == "bytes":
            t.bytes = parse_size(v)
        elif k == "unsigned":
            t.unsigned = v not in ("0", "false", "no", "")
        elif k in ("bucket", "cluster", "ak", "sk", "region", "root", "put"):
            setattr(t, k, v)
        else:
            raise argparse.ArgumentTypeError(f"target {spec!r}: unknown option {k!r}")
    if not t.url:
        raise argparse.ArgumentTypeError(f"target {spec!r}: no URL (or directory for dd)")
    return t


def legacy_targets(a: argparse.Namespace, servers: list[str]) -> list[Target]:
    """Targets from the old flags: --server(s) ais|ais-direct|nginx|plain, --endpoint, --nginx-url."""
    out = []
    for s in servers:
        if s in ("ais", "ais-direct"):
            t = Target(name=s, kind=s, url=a.endpoint.rstrip("/"), pids=list(a.ais_pid or []))
        else:
            t = Target(name=s, kind="plain", url=a.nginx_url.rstrip("/"), pids=list(a.nginx_pid or []),
                       root=getattr(a, "nginx_root", None) or "")
        t.bucket = a.bucket
        if getattr(a, "as_name", None) and len(servers) == 1:
            t.name = a.as_name
        out.append(t)
    return out


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
    """`name=pid`, `pid`, a pidfile or a glob of pidfiles -> {name: pid} (pidfile name without .pid)."""
    out = {}
    for it in items or []:
        name, _, val = it.rpartition("=")
        if val.isdigit():
            out[name or val] = int(val)
            continue
        for path in sorted(glob.glob(val)) or [val]:
            try:
                with open(path) as fh:
                    pid = int(fh.read().split()[0])
            except (OSError, IndexError, ValueError):
                continue   # a pidfile that is gone or empty: that process is not running
            out[name or os.path.basename(path).removesuffix(".pid")] = pid
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
        self.last_body: bytes | None = None

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
        self.last_body = data
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


# --------------------------------------------------------------------------- S3 signing
class SigV4:
    """AWS Signature V4, header auth, for the path-style requests made here.

    Signs `host`, `x-amz-content-sha256` and `x-amz-date`; the signing key is derived once per
    day (≈ 5 µs per request instead of botocore's ≈ 60). `sigv4_self_check` compares it with
    botocore's S3SigV4Auth before a run.
    """

    SIGNED = "host;x-amz-content-sha256;x-amz-date"

    def __init__(self, access_key: str, secret: str, region: str = "us-east-1") -> None:
        self.ak, self.sk, self.region = access_key, secret, region
        self._day = ""
        self._key = b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            k = ("AWS4" + self.sk).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, k
        return self._key

    def headers(self, method: str, host: str, path: str, payload_hash: str, amz_date: str | None = None,
                query: str = "") -> dict[str, str]:
        amz_date = amz_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        scope = f"{amz_date[:8]}/{self.region}/s3/aws4_request"
        creq = (f"{method}\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{payload_hash}\n"
                f"x-amz-date:{amz_date}\n\n{self.SIGNED}\n{payload_hash}")
        sts = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
        sig = hmac.new(self._signing_key(amz_date[:8]), sts.encode(), hashlib.sha256).hexdigest()
        return {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self.ak}/{scope}, "
                                 f"SignedHeaders={self.SIGNED}, Signature={sig}"}


def botocore_headers(ak: str, sk: str, region: str, method: str, host: str, path: str, payload_hash: str,
                     amz_date: str) -> dict[str, str]:
    """The same request signed by botocore's S3SigV4Auth (the reference)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class _Fixed(S3SigV4Auth):
        def payload(self, request):
            return payload_hash

        def _modify_request_before_signing(self, request):
            request.context["timestamp"] = amz_date
            super()._modify_request_before_signing(request)

    req = AWSRequest(method=method, url=f"http://{host}{path}")
    _Fixed(Credentials(ak, sk), "s3", region).add_auth(req)
    return {k.lower(): v for k, v in req.headers.items()}


def sigv4_self_check(ak: str = "AKIDEXAMPLE", sk: str = "secret", region: str = "us-east-1") -> str:
    """Our signer must produce botocore's Authorization header; SystemExit if it does not."""
    try:
        import botocore  # noqa: F401
    except ImportError:
        return "botocore not importable: signer unchecked"
    mine = SigV4(ak, sk, region)
    for method, path, ph in (("GET", "/s3/bench/nb-16384/000042", EMPTY_SHA256),
                             ("PUT", "/bench/nb-16384/000042", hashlib.sha256(b"0123456789abcdef").hexdigest()),
                             ("PUT", "/bench", EMPTY_SHA256), ("PUT", "/bench/x", UNSIGNED)):
        d = "20250102T030405Z"
        ref = botocore_headers(ak, sk, region, method, "127.0.0.1:8080", path, ph, d)["authorization"]
        got = mine.headers(method, "127.0.0.1:8080", path, ph, amz_date=d)["Authorization"]
        if ref != got:
            raise SystemExit(f"SigV4 signer disagrees with botocore:\n {ref}\n {got}")
    return "signer matches botocore's S3SigV4Auth"


# --------------------------------------------------------------------------- request plans
class Plan:
    """How one op of a cell is done against one target: `one()` returns (status, bytes, error or None)."""

    def __init__(self, t: Target, size: int, objects: int, direct_map: dict[int, str] | None = None,
                 with_payload: bool = True) -> None:
        self.t, self.size, self.objects = t, size, objects
        self.kind = t.kind
        self.payload = payload_for(size) if with_payload else b""
        self.netloc, base = split_url(t.url)
        self.base = base.rstrip("/")
        self.direct = direct_map
        q = urllib.parse.quote
        keys = [q(key(size, i)) for i in range(objects)]
        if t.kind == "plain":
            self.get_paths = [f"{self.base}/{t.bucket}/{k}" for k in keys]
            self.put_paths = [f"{self.base}{t.put}/{t.bucket}/{k}" for k in keys]
        elif t.kind == "s3":
            self.get_paths = self.put_paths = [f"{self.base}/{t.bucket}/{k}" for k in keys]
        else:
            self.get_paths = self.put_paths = [f"{self.base}/v1/objects/{t.bucket}/{k}" for k in keys]
        self.signer = SigV4(t.ak, t.sk, t.region) if t.kind == "s3" and t.ak else None
        self.put_hash = UNSIGNED if t.unsigned else (hashlib.sha256(self.payload).hexdigest() if self.signer else "")
        self.moss_path = f"{self.base}/v1/ml/moss/{t.bucket}"

    def expected(self, op: str) -> int:
        """Bytes a successful op moves (batch: at least this many)."""
        return self.size * (self.t.batch if self.kind == "batch" else 1)

    async def one(self, pool: Pool, op: str, i: int) -> tuple[int, int, str | None]:
        if self.kind == "batch":
            return await self._batch(pool, i)
        is_get = op == "get"
        method = "GET" if is_get else "PUT"
        body = b"" if is_get else self.payload
        path = self.get_paths[i] if is_get else self.put_paths[i]
        if self.kind == "plain":
            st, got, _, _ = await pool.call(method, self.netloc, path, body)
            return st, (got if is_get else len(body)), None
        if self.kind == "s3":
            hdrs = None
            if self.signer is not None:
                hdrs = self.signer.headers(method, self.netloc, path, EMPTY_SHA256 if is_get else self.put_hash)
            st, got, loc, _ = await pool.call(method, self.netloc, path, body, hdrs)
            if st in REDIRECTS:
                return st, 0, f"S3 endpoint redirected to {loc}"
            return st, (got if is_get else len(body)), None
        if self.kind == "ais-direct":
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

    def batch_body(self, i: int) -> bytes:
        names = [key(self.size, (i + j) % self.objects) for j in range(self.t.batch)]
        return json.dumps({"in": [{"objname": n} for n in names], "mime": ".tar", "coer": False,
                           "strm": True}).encode()

    async def _batch(self, pool: Pool, i: int) -> tuple[int, int, str | None]:
        body = self.batch_body(i)
        hdrs = {"Content-Type": "application/json"}
        st, _, loc, _ = await pool.call("GET", self.netloc, self.moss_path, body, hdrs)
        if st not in REDIRECTS or not loc:
            return st, 0, f"proxy answered {st} to a batch-get (expected a 307)"
        tnet, tpath = split_url(loc)
        st, got, _, _ = await pool.call("GET", tnet, tpath, body, hdrs)
        return st, got, None


async def resolve_owners(t: Target, size: int, n: int) -> dict[int, str]:
    """key index -> owning target's host:port, from the proxy's redirects (no body sent)."""
    netloc, base = split_url(t.url)
    base = base.rstrip("/")
    pool = Pool()
    out = {}
    try:
        for i in range(n):
            path = f"{base}/v1/objects/{t.bucket}/{urllib.parse.quote(key(size, i))}"
            st, _, loc, _ = await pool.call("HEAD", netloc, path)
            if st not in REDIRECTS or not loc:
                raise SystemExit(f"resolve owner of {path}: proxy answered {st}, no redirect")
            out[i] = split_url(loc)[0]
    finally:
        pool.close()
    return out


# --------------------------------------------------------------------------- worker
class KeyPicker:
    """Object indices for one client process: uniformly random, or in order from its own offset."""

    def __init__(self, mode: str, objects: int, wid: int, procs: int, step: int, rng: random.Random) -> None:
        self.mode, self.n, self.step, self.rng = mode, objects, max(1, step), rng
        self.next = (wid * objects) // max(1, procs)

    def __call__(self) -> int:
        if self.mode == "random":
            return self.rng.randrange(self.n)
        i = self.next % self.n
        self.next = (i + self.step) % self.n
        return i


class OpPicker:
    """The operation of each request: fixed, or weighted-random for a mixed cell."""

    def __init__(self, op: str, mix: list[tuple[str, int]] | None, rng: random.Random) -> None:
        self.fixed = None if op == "mixed" else op
        self.ops = [o for o, _ in mix or []]
        self.cum = []
        total = 0
        for _, w in mix or []:
            total += w
            self.cum.append(total)
        self.total, self.rng = total, rng

    def __call__(self) -> str:
        if self.fixed is not None:
            return self.fixed
        x = self.rng.random() * self.total
        for op, c in zip(self.ops, self.cum):
            if x < c:
                return op
        return self.ops[-1]


async def run_worker(a, t, wid, nslots, direct_map, t_measure, t_end):
    ops_in_cell = [o for o, _ in a.mix] if a.op == "mixed" else [a.op]
    plan = Plan(t, a.size, a.objects, direct_map, with_payload="put" in ops_in_cell)
    rng = random.Random(a.seed * 1000 + wid)
    pick_key = KeyPicker(a.keys, a.objects, wid, a.procs_n, t.batch if t.kind == "batch" else 1, rng)
    pick_op = OpPicker(a.op, a.mix, rng)
    per = {op: {"lats": [], "bytes": 0, "errors": 0} for op in ops_in_cell}
    status: dict[str, int] = {}
    samples: list[str] = []

    def fail(op: str, msg: str) -> None:
        per[op]["errors"] += 1
        if len(samples) < 5:
            samples.append(msg[:300])

    async def slot():
        pool = Pool()
        try:
            while time.monotonic() < t_end:
                op, i = pick_op(), pick_key()
                want = plan.expected(op)
                t0 = time.monotonic()
                try:
                    st, got, err = await asyncio.wait_for(plan.one(pool, op, i), a.timeout)
                except Exception as e:  # noqa: BLE001 - any transport failure counts
                    pool.close()
                    t1 = time.monotonic()
                    if t_measure <= t1 < t_end:
                        status["exc"] = status.get("exc", 0) + 1
                        fail(op, f"{op} {i}: {type(e).__name__}: {e}")
                    await asyncio.sleep(0.01)
                    continue
                t1 = time.monotonic()
                if not (t_measure <= t1 < t_end):
                    continue
                status[str(st)] = status.get(str(st), 0) + 1
                if err or st // 100 != 2 or got < want or (got != want and t.kind != "batch"):
                    fail(op, f"{op} {i}: HTTP {st}, {got} bytes {err or ''}")
                    continue
                per[op]["lats"].append(t1 - t0)
                per[op]["bytes"] += got
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
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"per": per, "status": status, "samples": samples, "cpu_s": cpu}


def worker_main(a, t, wid, nslots, direct_map, shared_t, ready_q, result_q):
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
        return await run_worker(a, t, wid, nslots, direct_map, t_measure, t_measure + a.duration)

    try:
        res = asyncio.run(go())
    except BaseException as e:  # report, never hang the parent
        res = {"fatal": f"{type(e).__name__}: {e}"}
    result_q.put((wid, res))


def op_figures(lats: list[float], nbytes: int, errors: int, win: float) -> dict:
    """ops/s, MB/s, latency percentiles and errors of one operation (lats ascending, seconds)."""
    ops = len(lats)
    return {"ops": ops, "ops_per_s": round(ops / win, 1), "MB_per_s": round(nbytes / win / 1e6, 2),
            "MiB_per_s": round(nbytes / win / 2**20, 2), "lat_ms": lat_summary(lats), "errors": errors}


def base_record(a: argparse.Namespace, t: Target) -> dict:
    return {"tool": "aisloader", "label": a.label,
            "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "server": t.name, "server_label": t.name, "kind": t.kind, "endpoint": t.url, "bucket": t.bucket,
            "op": a.op, "size": human_size(a.size), "size_bytes": a.size, "objects": a.objects,
            "concurrency": a.concurrency, "duration_s": a.duration, "warmup_s": a.warmup,
            "python": sys.version.split()[0]}


def run_cell(a: argparse.Namespace, t: Target) -> dict:
    """One cell against one HTTP target: spawn the client processes, measure, merge."""
    direct_map = None
    if t.kind == "ais-direct":
        direct_map = asyncio.run(resolve_owners(t, a.size, a.objects))
    if t.kind == "s3" and t.ak:
        sigv4_self_check(t.ak, t.sk, t.region)
    server_pids = t.server_pids()
    procs_n = max(1, min(a.procs, a.concurrency))
    a.procs_n = procs_n
    ctx = mp.get_context("spawn")
    shared_t = ctx.Value("d", 0.0)
    ready_q, result_q = ctx.Queue(), ctx.Queue()
    slots = [a.concurrency // procs_n + (1 if i < a.concurrency % procs_n else 0) for i in range(procs_n)]
    procs = [ctx.Process(target=worker_main, args=(a, t, i, slots[i], direct_map, shared_t, ready_q, result_q),
                         daemon=True) for i in range(procs_n)]
    for pr in procs:
        pr.start()
    for _ in procs:
        ready_q.get(timeout=120)
    t_measure = time.monotonic() + 0.3 + a.warmup
    t_end = t_measure + a.duration
    shared_t.value = t_measure
    mix = ",".join(f"{o}={w}" for o, w in a.mix) if a.op == "mixed" else ""
    print(f"== {a.label or ''} {t.name} {a.op}{' ' + mix if mix else ''} {human_size(a.size)} "
          f"c={a.concurrency} procs={procs_n} warmup {a.warmup}s + {a.duration}s", file=sys.stderr)
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
    win = a.duration
    by_op = {}
    for op in results[0]["per"]:
        lats = sorted(x for r in results.values() for x in r["per"][op]["lats"])
        by_op[op] = op_figures(lats, sum(r["per"][op]["bytes"] for r in results.values()),
                               sum(r["per"][op]["errors"] for r in results.values()), win)
    all_lats = sorted(x for r in results.values() for p in r["per"].values() for x in p["lats"])
    total = op_figures(all_lats, sum(r["per"][op]["bytes"] for r in results.values() for op in r["per"]),
                       sum(p["errors"] for r in results.values() for p in r["per"].values()), win)
    status: dict[str, int] = {}
    for r in results.values():
        for k, v in r["status"].items():
            status[k] = status.get(k, 0) + v
    cpu = sum(r["cpu_s"] for r in results.values())
    ncpu = os.cpu_count() or 1
    busy = (sys1[0] - sys0[0]) / max(1, sys1[1] - sys0[1]) * ncpu
    by_node = {name: round((srv1[pid] - srv0[pid]) / (w1 - w0), 3) for name, pid in server_pids.items()}
    server_cores = round(sum(by_node.values()), 3) if server_pids else None
    rec = base_record(a, t)
    rec.update({"keys": a.keys, "procs": procs_n, **total, "status": status,
                "error_samples": [s for r in results.values() for s in r["samples"]][:5],
                "client_cores": round(cpu / win, 3), "machine_busy_cores": round(busy, 3), "ncpu": ncpu,
                "server_cores": server_cores, "server_cores_by_node": by_node or None,
                "other_cores": round(busy - cpu / win - server_cores, 3) if server_cores is not None else None})
    if a.op == "mixed":
        rec["mix"] = dict(a.mix)
        rec["by_op"] = by_op
    if t.kind == "batch":
        rec["batch"] = t.batch
        rec["objects_per_s"] = round(rec["ops_per_s"] * t.batch, 1)
    return rec


def run_dd(a: argparse.Namespace, t: Target) -> dict:
    """The raw write speed of the filesystem under t.url: dd of t.bytes in blocks of --size, conv=fsync."""
    count = max(1, math.ceil(t.bytes / a.size))
    os.makedirs(t.url, exist_ok=True)
    path = os.path.join(t.url, f"aisloader-dd-{os.getpid()}.bin")
    print(f"== {a.label or ''} {t.name} dd bs={human_size(a.size)} count={count} conv=fsync into {t.url}",
          file=sys.stderr)
    b0, ru0, w0 = proc_stat_busy(), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    p = subprocess.run(["dd", "if=/dev/zero", f"of={path}", f"bs={a.size}", f"count={count}", "conv=fsync"],
                       capture_output=True, text=True, check=False)
    w1, ru1, b1 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN), proc_stat_busy()
    try:
        os.unlink(path)
    except OSError:
        pass
    win = w1 - w0
    ncpu = os.cpu_count() or 1
    busy = (b1[0] - b0[0]) / max(1, b1[1] - b0[1]) * ncpu
    dd_cores = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / win
    ok = p.returncode == 0
    rec = base_record(a, t)
    rec.update({"concurrency": 1, "objects": count, "procs": 1, "duration_s": round(win, 3), "warmup_s": 0,
                "ops": count if ok else 0, "ops_per_s": round(count / win, 1) if ok else 0.0,
                "MB_per_s": round(count * a.size / win / 1e6, 2) if ok else 0.0,
                "MiB_per_s": round(count * a.size / win / 2**20, 2) if ok else 0.0,
                "lat_ms": lat_summary([]), "errors": 0 if ok else 1, "status": {},
                "error_samples": [] if ok else [p.stderr[-300:]], "client_cores": 0.0,
                "machine_busy_cores": round(busy, 3), "ncpu": ncpu, "server_cores": round(dd_cores, 3),
                "server_cores_by_node": {"dd": round(dd_cores, 3)},
                "other_cores": round(busy - dd_cores, 3), "dd": p.stderr.strip().splitlines()[-1:]})
    return rec


# --------------------------------------------------------------------------- prepare
def prepare_group(t: Target) -> str:
    """Targets that share storage are filled once: every native kind of one cluster and bucket."""
    fam = "native" if t.kind in ("ais", "ais-direct", "batch") else t.kind
    return f"{fam} {t.url} {t.bucket} {t.root}"


async def ensure_bucket(t: Target, patience_s: float = 30.0) -> int:
    """Create t's bucket (409, already there, is fine); 5xx answers are retried for patience_s
    (a freshly started Swift answers 503 until its account and container servers are up)."""
    netloc, base = split_url(t.url)
    base = base.rstrip("/")
    pool = Pool()
    t_end = time.monotonic() + patience_s
    try:
        while True:
            if t.kind == "s3":
                path = f"{base}/{t.bucket}"
                hdrs = SigV4(t.ak, t.sk, t.region).headers("PUT", netloc, path, EMPTY_SHA256) if t.ak else None
                st, _, _, _ = await pool.call("PUT", netloc, path, b"", hdrs)
            else:
                st, _, _, _ = await pool.call("POST", netloc, f"{base}/v1/buckets/{t.bucket}",
                                              json.dumps({"action": "create-bck"}).encode(),
                                              {"Content-Type": "application/json"})
            if st < 500 or time.monotonic() > t_end:
                break
            await asyncio.sleep(0.5)
    finally:
        pool.close()
    if st // 100 != 2 and st != 409:
        raise SystemExit(f"{t.name}: create bucket {t.bucket}: HTTP {st}")
    return st


async def prepare_target(t: Target, objects_for: dict[int, int]) -> dict:
    """Write every object of every size to t (files for plain), then read two back and check MD5s."""
    out: dict = {"target": t.name, "kind": t.kind, "sizes": {}}
    if t.kind == "dd":
        return out
    if t.kind == "plain" and not t.root:
        raise SystemExit(f"{t.name}: a plain target needs root=DIR to be filled")
    if t.kind != "plain":
        out["bucket_status"] = await ensure_bucket(t)
    fill = t if t.kind in ("plain", "s3") else dataclasses.replace(t, kind="ais")
    for size, n in objects_for.items():
        plan = Plan(fill, size, n)
        digest = hashlib.md5(plan.payload).hexdigest()
        t0 = time.monotonic()
        if t.kind == "plain":
            d = os.path.join(t.root, t.bucket, f"nb-{size}")
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                fp = os.path.join(d, f"{i:06d}")
                if not (os.path.exists(fp) and os.path.getsize(fp) == size):
                    with open(fp, "wb") as fw:
                        fw.write(plan.payload)
        else:
            sem = asyncio.Semaphore(8)

            async def put(i: int) -> None:
                async with sem:
                    p = Pool()
                    try:
                        for _ in range(3):
                            st, _, err = await plan.one(p, "put", i)
                            if st // 100 == 2 and not err:
                                return
                            await asyncio.sleep(0.2)
                        raise SystemExit(f"{t.name}: prepare PUT {key(size, i)}: HTTP {st} {err or ''}")
                    finally:
                        p.close()
            await asyncio.gather(*(put(i) for i in range(n)))
        t_put = time.monotonic() - t0
        checked = []
        for i in sorted({0, n - 1}):
            p = Pool(keep_body=True)
            try:
                st, _, err = await plan.one(p, "get", i)
            finally:
                p.close()
            body = p.last_body
            if st != 200 or err or body is None or hashlib.md5(body).hexdigest() != digest:
                raise SystemExit(f"{t.name}: prepare: {key(size, i)} does not read back identically "
                                 f"(HTTP {st} {err or ''})")
            checked.append(i)
        out["sizes"][human_size(size)] = {"objects": n, "md5": digest, "put_s": round(t_put, 2), "verified": checked}
    return out


# --------------------------------------------------------------------------- table
def table(paths: list[str], baseline: str = "nginx") -> str:
    return bench_report.cells_table(bench_report.summarize(bench_report.load(paths)), baseline)


# --------------------------------------------------------------------------- CLI
def common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", "-t", action="append", type=parse_target, default=[],
                   metavar="NAME=KIND:URL[,opt=v]", help="a target (repeatable); see the module help")
    p.add_argument("--endpoint", default=os.environ.get("AIS_ENDPOINT", "http://127.0.0.1:8080"),
                   help="the proxy (AIS_ENDPOINT), for --server ais|ais-direct")
    p.add_argument("--nginx-url", default=os.environ.get("NGINX_URL", "http://127.0.0.1:8581"),
                   help="for --server nginx|plain")
    p.add_argument("--bucket", default="bench", help="for targets from --server/--endpoint")
    p.add_argument("--objects", "-n", type=int, default=100)
    p.add_argument("--concurrency", "-c", type=int, default=16)
    p.add_argument("--procs", "-p", type=int, default=2, help="client processes")
    p.add_argument("--duration", "-d", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--timeout", type=float, default=60.0, help="per-op limit, s")
    p.add_argument("--keys", choices=("random", "sequential"), default="random")
    p.add_argument("--mix", type=parse_mix, default=parse_mix("get=80,put=20"),
                   help="operation weights of --op mixed (cases mixed:SIZE:N), e.g. get=80,put=20")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--label", default="")
    p.add_argument("--as", dest="as_name", default=None, help="name of the --server in tables (default: --server)")
    p.add_argument("--ais-pid", action="append", help="name=pid of a cluster node (repeatable)")
    p.add_argument("--nginx-pid", action="append", help="nginx (or plain server) pid or pidfile")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each cell wait up to this many s for the machine to be idle (other tenants)")
    p.add_argument("--quiet-cores", type=float, default=0.3, help="'idle' = fewer busy cores than this")
    p.add_argument("--max-other", type=float, default=None,
                   help="re-run a cell (up to --retries) whose other_cores exceeded this")
    p.add_argument("--retries", type=int, default=2)


def parse_cases(text: str) -> list[tuple[str, int, int]]:
    """'get:16KiB:100 put:8MiB:128 mixed:1MiB:256' -> [(op, size, objects), ...]."""
    out = []
    for c in text.split():
        op, size, n = c.split(":")
        if op not in ("get", "put", "mixed"):
            raise SystemExit(f"bad case {c!r}: op is get, put or mixed")
        out.append((op, parse_size(size), int(n)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    pp = sub.add_parser("prepare", help="bucket + objects in every target (plain: files under root=)")
    common(pp)
    pp.add_argument("--case", action="append", default=[], metavar="SIZE:N",
                    help="objects to write, e.g. 16KiB:100 (repeatable)")
    pp.add_argument("--nginx-root", help="with the old flags: nginx's document root (files written there)")

    pr = sub.add_parser("run", help="one cell")
    common(pr)
    pr.add_argument("--server", choices=SERVERS, default="ais", help="without --target: which old-style server")
    pr.add_argument("--op", choices=("get", "put", "mixed"), default="get")
    pr.add_argument("--size", type=parse_size, default=parse_size("16KiB"))
    pr.add_argument("--out", help="also append the JSON line to this file")

    pm = sub.add_parser("matrix", aliases=["compare"], help="all cells, interleaved: rep -> case -> conc -> target")
    common(pm)
    pm.add_argument("--cases", default="get:16KiB:100 put:16KiB:1000 get:8MiB:32 put:8MiB:128",
                    help="op:size:objects words (op get, put or mixed)")
    pm.add_argument("--concs", default="16")
    pm.add_argument("--servers", default="ais ais-direct nginx", help="without --target: old-style servers")
    pm.add_argument("--reps", type=int, default=3)
    pm.add_argument("--duration-for", action="append", default=[], metavar="SIZE=SECONDS[/WARMUP]",
                    help="another window for cells of this size, e.g. 64MiB=20/5 (at c64 one 64 MiB round "
                         "trip takes seconds: a short window holds a round or two)")
    pm.add_argument("--out", required=True)

    pt = sub.add_parser("table", help="markdown table of JSONL results")
    pt.add_argument("files", nargs="+")
    pt.add_argument("--baseline", default="nginx", help="the ratio column divides by this target's MB/s")

    a = ap.parse_args(argv)
    if a.cmd == "table":
        print(table(a.files, a.baseline))
        return 0
    if a.cmd == "prepare":
        objects_for = {}
        for c in a.case or [f"16KiB:{a.objects}"]:
            s, _, n = c.partition(":")
            objects_for[parse_size(s)] = int(n or a.objects)
        targets = a.target or legacy_targets(a, ["ais"] + (["nginx"] if a.nginx_root else []))
        seen = set()
        for t in targets:
            g = prepare_group(t)
            if g in seen:
                continue
            seen.add(g)
            print(json.dumps(asyncio.run(prepare_target(t, objects_for))), flush=True)
        return 0

    windows = {}
    for spec in getattr(a, "duration_for", []):
        size, _, secs = spec.partition("=")
        d, _, w = secs.partition("/")
        windows[parse_size(size)] = (float(d), float(w) if w else None)

    def cell(t: Target, op: str, size: int, objects: int, conc: int, label: str) -> dict:
        c = argparse.Namespace(**vars(a))
        c.op, c.size, c.objects, c.concurrency, c.label = op, size, objects, conc, label
        c.target = None
        if size in windows:
            c.duration = windows[size][0]
            c.warmup = a.warmup if windows[size][1] is None else windows[size][1]
        for attempt in range(a.retries + 1):
            busy_before = wait_quiet(a.quiet_wait, a.quiet_cores) if a.quiet_wait > 0 else None
            r = run_dd(c, t) if t.kind == "dd" else run_cell(c, t)
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
        t = a.target[0] if a.target else legacy_targets(a, [a.server])[0]
        r = cell(t, a.op, a.size, a.objects, a.concurrency, a.label)
        return 0 if r["ops"] and not r["errors"] else 1
    # matrix / compare
    targets = a.target or legacy_targets(a, a.servers.split())
    cases = parse_cases(a.cases)
    concs = [int(x) for x in a.concs.replace(",", " ").split()]
    for rep in range(1, a.reps + 1):
        k = (rep - 1) % len(targets)
        order = targets[k:] + targets[:k]   # rotated: no target always runs right after another
        for op, size, n in cases:
            for ci, conc in enumerate(concs):
                for t in order:
                    if not t.serves(op, size) or (t.kind == "dd" and ci > 0):
                        continue   # dd has no concurrency: once per case
                    cell(t, op, size, n, conc, f"rep{rep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
