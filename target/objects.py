"""Object handlers of a target: GET, HEAD, PUT (plain, append, multipart part, copy), DELETE,
POST actions (rename, check-lock, multipart) and PATCH (custom metadata).

Each handler reads as numbered steps: 1. resolve bucket and name, 2. check ownership
(redirect to the owner otherwise), 3. do the I/O in the mountpath pool, 4. answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import replace
from typing import Any, AsyncIterator, Callable, Mapping, Protocol, Sequence

from urllib.parse import quote

import xxhash
from aiohttp import web

from ais import apc, names
from ais.cmap import bucket_id
from ais.errors import (AisError, InsufficientStorage, BadMessage, BadRequest, Conflict, NotFound,
                        ObjectNotFound, RangeNotSatisfiable, UnknownAction)
from ais.httpdate import http_date
from ais.names import Bucket
from ais.web import STREAMING, body_chunks, read_action
from target import ec, mirror, remote
from target.archive import formats, index as ar_index
from target.backends.base import RemoteAttrs
from target.context import CTX, TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.fs.sendfile import send_file

log = logging.getLogger(__name__)

SMALL_OBJECT_BYTES = 64 << 10
_HANDLE_RE = re.compile(r"app\.[0-9a-f]{16}\.[0-9]+")
_UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")   # fullmatch only
_TARGET_REDIRECT = "trd"  # query marker: already redirected once by a target


# --- 1. resolve -----------------------------------------------------------------------------

async def resolve(request: web.Request) -> tuple[TargetContext, Bucket, str, Mapping[str, Any]]:
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    obj = names.check_object_name(request.match_info["obj"])
    props = ctx.bmd.get(bck)
    if props is None:
        props = await ctx.require_bucket(bck, redirected=apc.Q_PID in q or _TARGET_REDIRECT in q)
    return ctx, bck, obj, props


# --- 2. ownership ---------------------------------------------------------------------------

def routed_map_version(request: web.Request) -> int:
    """The cluster map version a proxy routed this request by (0: not routed by a proxy)."""
    v = request.query.get(apc.Q_SMAP_VER) or request.headers.get(apc.HDR_SMAP_VER) or ""
    return int(v) if v.isdigit() and len(v) < 16 else 0


def redirect_if_not_owner(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str) -> web.Response | None:
    """Requests sent straight to a target (the SDK's direct=True, our client) may hit a non-owner.
    One a proxy routed here by a newer cluster map than ours is ours: that map is on its way."""
    owner = ctx.smap.owner(bck.object_uname(obj))
    if owner is None or owner.id == ctx.me.id or _TARGET_REDIRECT in request.query \
            or routed_map_version(request) > ctx.smap.version:
        return None
    path, _, raw_query = request.raw_path.partition("?")  # keep the query percent-encoded
    query = raw_query + ("&" if raw_query else "") + f"{_TARGET_REDIRECT}={ctx.me.id}"
    location = f"{owner.public_url}{path}?{query}"
    if ctx.gate is not None:   # the client drops its token on the way: the owner trusts our signature
        location = ctx.gate.sign_location(request, location)
    status = 301 if request.method == "GET" else 307
    return web.Response(status=status, headers={"Location": location})


# --- response headers -----------------------------------------------------------------------

def etag_of(meta: ObjectMeta) -> str:
    """Unquoted ETag: explicit (multipart) > backend's > MD5 > synthetic from the checksum (reference §4)."""
    if meta.etag:
        return meta.etag
    if "ETag" in meta.custom:
        return meta.custom["ETag"]
    if meta.md5:
        return meta.md5
    if meta.cksum_type == "md5" and meta.cksum_value:
        return meta.cksum_value
    if meta.cksum_value:
        return f"v1-{meta.cksum_value}-{names.base36(meta.mtime_ns)}"
    return ""




def custom_md_header(custom: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(custom.items()))


def object_headers(ctx: TargetContext, bck: Bucket, obj: str, mp: str, meta: ObjectMeta,
                   props: set[str] | None = None) -> dict[str, str]:
    """Object props as response headers (reference §1.2). `props=None` means all (legacy)."""
    def want(prop: str) -> bool:
        return props is None or prop in props
    h: dict[str, str] = {apc.HDR_PRESENT: "true"}
    if want("checksum") and meta.cksum_type != "none":
        h[apc.HDR_CHECKSUM_TYPE] = meta.cksum_type
        h[apc.HDR_CHECKSUM_VALUE] = meta.cksum_value
    if want("atime"):
        h[apc.HDR_ATIME] = str(meta.atime_ns)
    if want("version") and meta.version:
        h[apc.HDR_VERSION] = meta.version
    if want("custom") and meta.custom:
        h[apc.HDR_CUSTOM_MD] = custom_md_header(meta.custom)
    if want("etag"):
        etag = etag_of(meta)
        if etag:
            h["ETag"] = f'"{etag}"'
    if want("last-modified"):
        h["Last-Modified"] = http_date(meta.mtime_ns)
    if want("location"):
        h[apc.HDR_LOCATION] = f"{ctx.me.display}:{mp}"
    if want("copies"):
        h[apc.HDR_MIRROR_COPIES] = "1"
        h[apc.HDR_MIRROR_PATHS] = mp
    if want("name"):
        h[apc.HDR_OBJ_NAME] = obj
    if props is None:
        h[apc.HDR_BCK_NAME] = bck.name
        h[apc.HDR_BCK_PROVIDER] = bck.provider
    return h


# --- GET ------------------------------------------------------------------------------------

_BYTE_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", re.IGNORECASE)


def parse_range(header: str, size: int) -> tuple[int, int]:
    """One `bytes=` range -> (offset, count); RangeNotSatisfiable for anything else.

    ASCII digits only (`int()` would also take `1_0`, ` 7` and other scripts' digits); an end
    past the object, however many digits it has, is clipped to the last byte.
    """
    unsat = RangeNotSatisfiable(f"invalid or unsatisfiable range {header!r:.200} for an object of {size} bytes",
                                headers={"Content-Range": f"bytes */{size}"})
    m = _BYTE_RANGE.fullmatch(header)
    if m is None:
        raise unsat
    first, last = m[1], m[2]
    if first == "":
        if last.strip("0") == "":   # "bytes=-", "bytes=-0": no suffix
            raise unsat
        start = max(size - int(last), 0) if len(last) <= 19 else 0
        end = size - 1
    else:
        if len(first) > 19:
            raise unsat   # beyond any object
        start = int(first)
        end = size - 1 if last == "" or len(last) > 19 else min(int(last), size - 1)
    if start >= size or end < start:
        raise unsat
    return start, end - start + 1


async def get_object(request: web.Request) -> web.StreamResponse:
    # 1. resolve, 2. ownership
    ctx, bck, obj, props = await resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, obj)) is not None:
        return r
    if request.query.get("etl_name"):
        from target.etl import inline  # the ETL package imports this module
        return await inline.get_transformed(request, ctx, bck, obj)
    if request.query.get(apc.Q_ARCHPATH) or request.query.get(apc.Q_ARCHREGX):
        from target import shards  # shards imports this module
        return await shards.get_archived(request, ctx, bck, obj)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    rng = request.headers.get("Range")
    if not bck.is_ais:
        ctx.atimes[bck.object_uname(obj)] = time.time_ns()   # for LRU
        if names.parse_bool(request.headers.get(apc.HDR_BLOB_DOWNLOAD), apc.HDR_BLOB_DOWNLOAD) \
                and await ctx.mountpaths.run(mp, fsmeta.stat_object, path) is None:
            # large objects: parallel range reads into the cluster first, then served as usual
            workers = request.headers.get(apc.HDR_BLOB_WORKERS) or "0"
            if not workers.isdigit():
                raise BadRequest(f"invalid {apc.HDR_BLOB_WORKERS} {workers!r}: expected a whole number")
            await remote.blob_download(ctx, bck, obj, props, names.parse_size(request.headers.get(apc.HDR_BLOB_CHUNK)),
                                       int(workers))
        if bck.object_uname(obj) in ctx.cold or remote.validate_warm(props, request.query):
            if (cold := await _remote_get(request, ctx, bck, obj, props, path, rng)) is not None:
                return cold

    # 3. serve the stored object: checked first with validate_warm_get (bit rot is repaired from a
    #    mirror copy); a failing disk's read is served by a mirror copy; a miss looks on the other
    #    mountpaths (a mountpath change, a mirror copy) before the neighbors and the backend
    try:
        if mirror.validates_reads(props):
            await mirror.verify_main(ctx, bck, obj, props)
        resp = await _serve_stored(request, ctx, bck, obj, mp, path, rng)
    except OSError as exc:
        if not mirror.disk_error(exc) or request.get(STREAMING):
            raise
        resp = await _serve_stored(request, ctx, bck, obj, *await mirror.readable_copy(ctx, bck, obj, mp, exc), rng)
    if resp is None and await mirror.restore(ctx, bck, obj, props):
        resp = await _serve_stored(request, ctx, bck, obj, *ctx.mountpaths.object_path(bck, obj), rng)
    return resp if resp is not None else await _get_missing(request, ctx, bck, obj, props, rng)


async def _serve_stored(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, mp: str, path: str,
                        rng: str | None) -> web.StreamResponse | None:
    """The object file at `path` as the response; None when there is none."""
    # 3a. small objects: open + metadata + content in one hop, no sendfile
    if rng is None:
        small = await ctx.mountpaths.run(mp, fsmeta.read_small, path, SMALL_OBJECT_BYTES)
        if small is None:
            return None
        meta, data = small
        if data is not None:
            _check_bid(ctx, bck, obj, meta)
            headers = object_headers(ctx, bck, obj, mp, meta)
            headers["Content-Type"] = "application/octet-stream"
            ctx.metrics.bytes_out.labels(verb="GET").inc(len(data))
            return web.Response(body=data, headers=headers)

    # 3b. larger or ranged: open + metadata in one hop, then sendfile
    opened = await ctx.mountpaths.run(mp, fsmeta.open_object, path)
    if opened is None:
        return None
    f, meta = opened
    try:
        _check_bid(ctx, bck, obj, meta)
        headers = object_headers(ctx, bck, obj, mp, meta)
        headers["Content-Type"] = "application/octet-stream"
        headers["Accept-Ranges"] = "bytes"
        status, offset, count = 200, 0, meta.size
        if rng is not None:
            offset, count = parse_range(rng, meta.size)
            status = 206
            headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{meta.size}"
        resp = await serve_file(request, ctx, mp, f, status, headers, offset, count)
        ctx.metrics.bytes_out.labels(verb="GET").inc(count)
        return resp
    finally:
        f.close()


async def _get_missing(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                       rng: str | None) -> web.StreamResponse:
    """Not here: during a rebalance, from the target that has it still; else from the backend (remote buckets)."""
    from target import rebalance  # rebalance imports this module
    if (r := await rebalance.get_from_neighbor(request, ctx, bck, obj)) is not None:
        return r
    if await ec.restore_object(ctx, bck, obj, props):   # rebuilt from its slices or replicas on other targets
        if (resp := await _serve_stored(request, ctx, bck, obj, *ctx.mountpaths.object_path(bck, obj), rng)) is not None:
            return resp
    if not bck.is_ais:
        return await _cold_get(request, ctx, bck, obj, props, rng)
    raise ObjectNotFound(bck.object_cname(obj))


async def _remote_get(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                      path: str, rng: str | None) -> web.StreamResponse | None:
    """A remote object with a cold GET in flight (join it) or to validate: None = serve the local copy."""
    if bck.object_uname(obj) not in ctx.cold:
        mp = ctx.mountpaths.mountpath_of(bck, obj)
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
        if meta is not None and await remote.check_warm(ctx, bck, obj, meta, remote.synchronize(props, request.query)):
            return None
    return await _cold_get(request, ctx, bck, obj, props, rng)


async def _cold_get(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                    rng: str | None) -> web.StreamResponse:
    """Fetch from the backend (single flight) and stream to this reader meanwhile."""
    def headers_of(attrs: RemoteAttrs) -> dict[str, str]:
        h = remote.remote_headers(attrs, None)
        h["Content-Type"] = "application/octet-stream"
        h["Accept-Ranges"] = "bytes"
        return h

    def range_of(attrs: RemoteAttrs, headers: dict[str, str]) -> tuple[int, int, int]:
        if rng is None:
            return 200, 0, attrs.size
        offset, count = parse_range(rng, attrs.size)
        headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{attrs.size}"
        return 206, offset, count
    remote.admit_cold(ctx, bck, obj)
    return await remote.serve_cold(request, remote.cold_fetch(ctx, bck, obj, props), headers_of, range_of)


async def serve_file(request: web.Request, ctx: TargetContext, mp: str, f: Any, status: int,
                     headers: Mapping[str, str], offset: int, count: int) -> web.StreamResponse:
    """Answer with `count` bytes of the open object `f` from `offset`, by sendfile."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = count
    await resp.prepare(request)
    request[STREAMING] = True
    await send_file(request, resp, f, offset, count, ctx.mountpaths.pool(mp), ctx.cfg.timeouts.data_read_s)
    await resp.write_eof()
    return resp


def _check_bid(ctx: TargetContext, bck: Bucket, obj: str, meta: ObjectMeta) -> None:
    """An object left from an earlier bucket of the same name is not part of this one."""
    props = ctx.bmd.get(bck) or {}
    bid = bucket_id(props)
    if meta.bid and bid and meta.bid != bid:
        raise ObjectNotFound(bck.object_cname(obj))


# --- HEAD -----------------------------------------------------------------------------------

_HEAD_PROPS = {"name", "size", "checksum", "atime", "version", "custom", "last-modified", "etag",
               "location", "copies", "ec", "chunked", "present"}


async def head_object(request: web.Request) -> web.StreamResponse:
    ctx, bck, obj, bprops = await resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, obj)) is not None:
        return r
    props: set[str] | None = None
    if apc.Q_PROPS in request.query:
        props = {p.strip() for p in request.query[apc.Q_PROPS].split(",") if p.strip()}
        unknown = props - _HEAD_PROPS
        if unknown:
            raise BadRequest(f"unknown object props {sorted(unknown)}; valid: {sorted(_HEAD_PROPS)}")
    mp, path = ctx.mountpaths.object_path(bck, obj)
    meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None and await mirror.restore(ctx, bck, obj, bprops):   # on another mountpath
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if not bck.is_ais:
        return await _head_remote(request, ctx, bck, obj, meta, props)
    if meta is None:
        from target import rebalance  # rebalance imports this module
        if (peer := await rebalance.get_from_neighbor(request, ctx, bck, obj)) is not None:
            return peer
        if not await ec.restore_object(ctx, bck, obj, bprops) or (meta := await ctx.mountpaths.run(
                mp, fsmeta.stat_object, path)) is None:   # EC: rebuilt from its slices or replicas
            raise ObjectNotFound(bck.object_cname(obj))
    _check_bid(ctx, bck, obj, meta)
    headers = object_headers(ctx, bck, obj, mp, meta, props)
    if props is None or "copies" in props:
        headers.update(await mirror.copy_headers(ctx, bck, obj))
    if props is None or "ec" in props:
        headers.update(await ec.head_headers(ctx, bck, obj, bprops))
    resp = web.Response(status=200, headers=headers)
    resp.headers["Content-Length"] = str(meta.size)
    return resp


async def _head_remote(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, meta: ObjectMeta | None,
                       props: set[str] | None) -> web.StreamResponse:
    """HEAD of a remote bucket's object: the local copy's props, else the backend's (`Ais-Present: false`).

    With `latest-ver`, a local copy that differs from the remote answers 409, one deleted remotely 410.
    """
    mp = ctx.mountpaths.mountpath_of(bck, obj)
    if meta is not None:
        if names.parse_bool(request.query.get(apc.Q_LATEST_VER), apc.Q_LATEST_VER):
            try:
                current = await remote.check_warm(ctx, bck, obj, meta, sync=False)
            except ObjectNotFound:
                raise remote.Gone(f"{bck.object_cname(obj)} was deleted from the remote bucket") from None
            if not current:
                raise Conflict(f"{bck.object_cname(obj)}: the cached copy differs from the remote object (version changed)")
        headers = object_headers(ctx, bck, obj, mp, meta, props)
        size = meta.size
    else:
        attrs = await (await ctx.backend(bck)).head_object(bck.name, obj)
        headers = remote.remote_headers(attrs, props)
        size = attrs.size
    resp = web.Response(status=200, headers=headers)
    resp.headers["Content-Length"] = str(size)
    return resp


# --- PUT ------------------------------------------------------------------------------------

class Received:
    """What streaming a body into a work file produced.

    `decode` (e.g. an aws-chunked decoder) turns received bytes into stored bytes, and each of
    `extra` (e.g. MD5 for an S3 ETag) hashes the stored bytes, all in the pool hop that writes
    them, so a front end adds no hops of its own.
    """

    __slots__ = ("size", "raw_size", "hasher", "decode", "extra")

    def __init__(self, decode: Callable[[bytes], bytes] | None = None, extra: Sequence[Hasher] = ()) -> None:
        self.size = 0          # bytes written
        self.raw_size = 0      # bytes received (differs from `size` only with `decode`)
        self.hasher = xxhash.xxh64()
        self.decode = decode
        self.extra = tuple(extra)

    def digest(self, chunks: list[bytes]) -> list[bytes]:
        """Blocking (pool): decode and hash received chunks; returns the bytes to store."""
        self.raw_size += sum(map(len, chunks))
        if self.decode is not None:
            chunks = [d for d in map(self.decode, chunks) if d]
        for c in chunks:
            self.hasher.update(c)
            for h in self.extra:
                h.update(c)
            self.size += len(c)
        return chunks


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


# A PUT body of at most this many bytes (by Content-Length) is read into memory and hashed,
# written, fsynced and published in one pool hop under the object's lock (`put_body`).
SMALL_PUT_BYTES = 256 << 10


def _open_work(path: str, append: bool = False, need_bytes: int = 0) -> int:
    """A work file's descriptor; with `need_bytes`, first check that the filesystem has room."""
    if need_bytes > 0:
        _check_space(path, need_bytes)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else os.O_TRUNC)
    return os.open(path, flags, 0o666)


def _check_space(path: str, need_bytes: int) -> None:
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    if free < need_bytes:
        raise InsufficientStorage(f"not enough space for {need_bytes} bytes: {free} bytes free on the mountpath")


class _WorkFile:
    """A work file written by a sequence of pool hops. Its lock makes a discard (after a failure
    or a cancel on the loop) wait for a hop still running in the pool, so a descriptor is never
    closed under a write (or closed twice, after its number was reused)."""

    __slots__ = ("path", "fd", "closed", "lock")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None
        self.closed = False
        self.lock = threading.Lock()

    def open(self, append: bool, need_bytes: int) -> None:
        """Blocking: open (with `need_bytes`, only if the filesystem has room for them)."""
        with self.lock:
            if self.fd is not None or self.closed:
                raise RuntimeError(f"work file {self.path} opened twice")
            self.fd = _open_work(self.path, append, need_bytes)

    def write(self, chunks: list[bytes], rec: Received, finish: bool, fsync: bool) -> None:
        """Blocking: one hop of a streamed write: decode + hash + writev a batch, and with
        `finish` (the last batch) fsync and close."""
        with self.lock:
            fd = self._fd()
            try:
                fsmeta.write_all(fd, rec.digest(chunks))
            except BaseException:
                self._close(fsync=False)
                raise
            if finish:
                self._close(fsync)

    def finish(self, fsync: bool) -> None:
        """Blocking: fsync and close."""
        with self.lock:
            self._fd()
            self._close(fsync)

    def discard(self) -> None:
        """Blocking: close if open and remove the file."""
        with self.lock:
            if self.fd is not None:
                self._close(fsync=False)
            fsmeta.unlink_quiet(self.path)

    def _fd(self) -> int:
        if self.fd is None:
            raise RuntimeError(f"work file {self.path} is not open")
        return self.fd

    def _close(self, fsync: bool) -> None:
        fd, self.fd, self.closed = self.fd, None, True
        if fd is not None:
            try:
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)


async def batches(chunks: AsyncIterator[bytes], size_hint: int) -> AsyncIterator[list[bytes]]:
    """Group a byte stream into ~size_hint batches so each pool hop writes a lot."""
    batch: list[bytes] = []
    pending = 0
    async for chunk in chunks:
        batch.append(chunk)
        pending += len(chunk)
        if pending >= size_hint:
            yield batch
            batch, pending = [], 0
    if batch:
        yield batch


async def write_work(ctx: TargetContext, mp: str, work: str, source: AsyncIterator[list[bytes]], rec: Received, *,
                     append: bool = False, expected_bytes: int | None = None) -> None:
    """Stream batches into `work`: checksum on the way, fsync at the end.

    `expected_bytes` is checked against the bytes received (and against the free space before
    a byte is read: 507 at once). Pool hops: open, one per batch (the one that completes
    `expected_bytes` also fsyncs and closes). On any failure (source gone, disk error,
    cancel) the work file is removed.
    """
    capacity = ctx.cfg.space.capacity_bytes
    fsync = ctx.cfg.target.fsync
    need = expected_bytes or 0
    charged = ctx.quota.charge(mp, need, capacity)
    wf = _WorkFile(work)
    try:
        await ctx.mountpaths.run(mp, wf.open, append, need)
        async for batch in source:
            n = sum(map(len, batch))
            if expected_bytes is None:   # a body of unknown length: charged as it comes
                charged += ctx.quota.charge(mp, n, capacity)
            last = expected_bytes is not None and rec.raw_size + n >= expected_bytes
            await ctx.mountpaths.run(mp, wf.write, batch, rec, last, fsync)
        if expected_bytes is not None and rec.raw_size != expected_bytes:
            raise BadRequest(f"body ended after {rec.raw_size} of {expected_bytes} bytes")
        if not wf.closed:
            await ctx.mountpaths.run(mp, wf.finish, fsync)
    except BaseException:
        ctx.quota.refund(mp, charged)
        await asyncio.shield(ctx.mountpaths.run(mp, wf.discard))
        raise


async def receive_body(request: web.Request, ctx: TargetContext, mp: str, work: str, *, append: bool = False,
                       rec: Received | None = None) -> Received:
    """Stream the request body into `work` (see `write_work`); `rec` may bring a decoder and extra hashers."""
    rec = Received() if rec is None else rec
    await write_work(ctx, mp, work, batches(body_chunks(request), ctx.cfg.target.write_buffer_bytes),
                     rec, append=append, expected_bytes=None if append else request.content_length)
    ctx.metrics.bytes_in.labels(verb="PUT").inc(rec.size)
    return rec


def _check_client_checksum(headers: Mapping[str, str], rec: Received, cname: str) -> None:
    ctype = headers.get(apc.HDR_CHECKSUM_TYPE, "")
    cval = headers.get(apc.HDR_CHECKSUM_VALUE, "")
    if not ctype or not cval or ctype == "none":
        return
    if ctype not in ("xxhash", "xxhash2"):
        return  # other types are validated by their own front ends (S3: MD5)
    if cval.lower() != rec.hasher.hexdigest():
        raise BadRequest(f"checksum mismatch for {cname}: client sent {ctype} {cval}, "
                         f"received data has {rec.hasher.hexdigest()}")


def _versioning(bck: Bucket, props: Mapping[str, Any]) -> bool:
    return bck.is_ais and bool((props.get("versioning") or {}).get("enabled", True))


async def commit_object(ctx: TargetContext, bck: Bucket, obj: str, mp: str, work: str, meta: ObjectMeta,
                        props: Mapping[str, Any], *, write_through: bool = True) -> ObjectMeta:
    """Publish a finished work file as the object, under the object's lock.

    In a remote bucket the file goes to the backend first (write-through) unless it just
    came from there, and the local copy keeps the remote version and ETag.
    """
    _, path = ctx.mountpaths.object_path(bck, obj)
    if write_through and not bck.is_ais:
        await remote.settle(ctx, bck, obj)
        try:
            attrs = await (await ctx.backend(bck)).put_file(bck.name, obj, work, meta.size,
                                                                      remote.user_metadata(meta.custom))
        except BaseException:
            await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
            raise
        fresh = remote.remote_meta(bck, attrs, meta.size, meta.cksum_value, meta.bid, custom=meta.custom)
        meta = replace(meta, version=fresh.version, custom=fresh.custom, md5=meta.md5 or fresh.md5)
    run = ctx.mountpaths.run if write_through else ctx.mountpaths.run_flush   # a fetched copy: background
    async with ctx.object_lock(bck.object_uname(obj)):
        try:
            stored = await run(mp, fsmeta.commit, work, path, meta, ctx.cfg.target.fsync, _versioning(bck, props))
        except OSError as exc:
            await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
            raise fsmeta.translate_os_error(exc, bck.object_cname(obj)) from exc
        except BaseException:
            await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
            raise
        await mirror.after_write(ctx, bck, obj, props)   # mirror copies before the write is acknowledged
    if ec.enabled(bck, props):   # EC slices or replicas on other targets, too (outside the lock: network)
        await ec.protect_object(ctx, bck, obj, props)
    return stored


MetaOf = Callable[[Received], ObjectMeta]   # validates what was received (raises) and makes its metadata


async def put_body(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                   rec: Received, meta_of: MetaOf) -> tuple[str, ObjectMeta]:
    """Receive a PUT's body and publish it as the object (the native and the S3 PutObject).

    `meta_of` runs once the whole body is hashed and before it is published. A small body of
    an `ais://` bucket is read into memory and stored in ONE pool hop under the object's lock
    (hash, validate, write, fsync, metadata, rename, fsync of the directory); any other is
    streamed into a work file (`receive_body`) and committed (`commit_object`). Either way the
    object is durable (with `target.fsync`) before this returns. Returns its mountpath and metadata.
    """
    mp, path = ctx.mountpaths.object_path(bck, obj)
    size = request.content_length
    if size is not None and size <= SMALL_PUT_BYTES and bck.is_ais:
        return mp, await _put_small(request, ctx, bck, obj, props, mp, path, size, rec, meta_of)
    work = ctx.mountpaths.work_path(mp)
    await receive_body(request, ctx, mp, work, rec=rec)
    try:
        meta = meta_of(rec)
    except BaseException:
        await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
        raise
    return mp, await commit_object(ctx, bck, obj, mp, work, meta, props)


def _store_small(data: bytes, rec: Received, meta_of: MetaOf, work: str, path: str, fsync: bool,
                 versioning: bool) -> ObjectMeta:
    """Blocking (pool, under the object's lock): hash and validate an in-memory body, then
    write and publish it (`fsmeta.store`). A body that fails validation never touches the disk."""
    chunks = rec.digest([data])
    meta = meta_of(rec)
    if data:
        _check_space(work, len(data))
    return fsmeta.store(work, path, chunks, meta, fsync, versioning)


async def _put_small(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                     mp: str, path: str, size: int, rec: Received, meta_of: MetaOf) -> ObjectMeta:
    try:
        data = await request.content.readexactly(size) if size else b""
    except asyncio.IncompleteReadError as exc:
        raise BadRequest(f"body ended after {len(exc.partial)} of {size} bytes") from exc
    return await store_small(ctx, bck, obj, props, mp, path, data, rec, meta_of)


async def store_small(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any], mp: str, path: str,
                      data: bytes, rec: Received, meta_of: MetaOf) -> ObjectMeta:
    """A whole body in memory, published as the object in one pool hop (see `put_body`)."""
    charged = ctx.quota.charge(mp, len(data), ctx.cfg.space.capacity_bytes)
    stored: ObjectMeta | None = None
    try:
        work = ctx.mountpaths.work_path(mp)
        async with ctx.object_lock(bck.object_uname(obj)):
            try:
                stored = await ctx.mountpaths.run(mp, _store_small, data, rec, meta_of, work, path,
                                                  ctx.cfg.target.fsync, _versioning(bck, props))
            except OSError as exc:
                raise fsmeta.translate_os_error(exc, bck.object_cname(obj)) from exc
            await mirror.after_write(ctx, bck, obj, props)   # mirror copies before the write is acknowledged
    except BaseException:
        if stored is None:   # nothing stored (or cancelled: refunded as a streamed write does)
            ctx.quota.refund(mp, charged)
        raise
    ctx.metrics.bytes_in.labels(verb="PUT").inc(rec.size)
    if ec.enabled(bck, props):   # EC slices or replicas on other targets, too (outside the lock: network)
        await ec.protect_object(ctx, bck, obj, props)
    return stored


async def put_object(request: web.Request) -> web.StreamResponse:
    ctx, bck, obj, props = await resolve(request)
    q = request.query
    if apc.Q_APPEND_TYPE in q:
        return await _append(request, ctx, bck, obj, props)
    if (r := redirect_if_not_owner(request, ctx, bck, obj)) is not None:
        return r
    if apc.Q_ARCHPATH in q:
        from target import shards  # shards imports this module
        return await shards.append_to_shard(request, ctx, bck, obj, props)
    if apc.Q_OBJ_TO in q:
        return await _copy_to(request, ctx, bck, obj)
    if apc.Q_UPLOAD_ID in q:
        return await _put_part(request, ctx, bck, obj)

    if apc.HDR_BACKGROUND in request.headers and ctx.cfg.load.pace_jobs and ctx.load.foreground_active():
        await asyncio.sleep(ctx.cfg.load.foreground_yield_ms / 1000)   # a job's write waits behind client reads
    # plain PUT: receive (validated against a client checksum), publish atomically
    headers, cname, bid = request.headers, bck.object_cname(obj), bucket_id(props)

    def meta_of(rec: Received) -> ObjectMeta:
        _check_client_checksum(headers, rec, cname)
        return ObjectMeta(size=rec.size, cksum_type="xxhash", cksum_value=rec.hasher.hexdigest(), bid=bid)

    mp, meta = await put_body(request, ctx, bck, obj, props, Received(), meta_of)
    return web.Response(status=200, headers=object_headers(ctx, bck, obj, mp, meta, {"checksum", "atime", "version"}))


# --- append ---------------------------------------------------------------------------------

async def _append(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> web.StreamResponse:
    """`append_type=append|flush` with an opaque handle `tid|workfile|xxhash|` (reference §1.3)."""
    kind = request.query[apc.Q_APPEND_TYPE]
    if kind not in ("append", "flush"):
        raise BadRequest(f"invalid append_type {kind!r}: expected 'append' or 'flush'")
    mp, _ = ctx.mountpaths.object_path(bck, obj)
    handle = request.query.get(apc.Q_APPEND_HANDLE, "")
    if handle:
        parts = handle.split("|")
        if len(parts) < 2 or parts[0] != ctx.me.id or not _HANDLE_RE.fullmatch(parts[1]):
            raise BadRequest(f"invalid append handle {handle!r}")
        work = f"{mp}/%wk/{parts[1]}"
        if not await ctx.mountpaths.run(mp, os.path.exists, work):
            raise NotFound(f"append handle {handle!r} is unknown or expired (appends do not survive a restart)")
    else:
        if kind == "flush":
            raise BadRequest("append_type=flush needs an append_handle")
        work = ctx.mountpaths.work_path(mp, "app.")
    if kind == "append" or request.content_length or request.body_exists:
        await receive_body(request, ctx, mp, work, append=True)
    if kind == "append":
        new_handle = f"{ctx.me.id}|{os.path.basename(work)}|xxhash|"
        return web.Response(status=200, headers={apc.HDR_APPEND_HANDLE: new_handle})
    # flush: the appended file becomes the object
    size, digest = await ctx.mountpaths.run(mp, _hash_file, work)
    meta = ObjectMeta(size=size, cksum_type="xxhash", cksum_value=digest, bid=bucket_id(props))
    meta = await commit_object(ctx, bck, obj, mp, work, meta, props)
    return web.Response(status=200, headers=object_headers(ctx, bck, obj, mp, meta, {"checksum", "atime", "version"}))


def _hash_file(path: str) -> tuple[int, str]:
    h = xxhash.xxh64()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


# --- multipart (native actions) -------------------------------------------------------------

def _mpu_dir(ctx: TargetContext, bck: Bucket, obj: str, upload_id: str) -> tuple[str, str]:
    if not _UPLOAD_ID_RE.fullmatch(upload_id):
        raise BadRequest(f"invalid upload ID {upload_id!r}")
    mp, _ = ctx.mountpaths.object_path(bck, obj)
    return mp, ctx.mountpaths.mpu_dir(mp, upload_id)


def _mpu_create(d: str, uname: str, extra: Mapping[str, Any] | None = None) -> None:
    """Blocking: the upload's directory and its `upload.json` (`extra`: front-end state, e.g. S3 metadata)."""
    os.makedirs(d)
    with open(f"{d}/upload.json", "w", encoding="utf-8") as f:
        json.dump({**(extra or {}), "uname": uname, "created_ns": time.time_ns()}, f)


def _mpu_load(d: str, uname: str) -> dict[str, Any] | None:
    """Blocking: the upload's `upload.json` when it exists and belongs to `uname`."""
    try:
        with open(f"{d}/upload.json", encoding="utf-8") as f:
            doc = json.load(f)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("uname") == uname else None


def _mpu_check(d: str, uname: str) -> bool:
    return _mpu_load(d, uname) is not None


def mpu_uploads(root: str) -> list[tuple[str, dict[str, Any]]]:
    """Blocking: (upload ID, its `upload.json`) of every upload under one mountpath's `%mp`.
    One without a readable `upload.json` is left out: being created, completed or aborted
    meanwhile, or still arriving by rebalance (its `upload.json` comes last)."""
    found: list[tuple[str, dict[str, Any]]] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return found
    for e in entries:
        if not _UPLOAD_ID_RE.fullmatch(e.name):
            continue
        try:
            with open(f"{e.path}/upload.json", encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("uname"), str):
            found.append((e.name, doc))
    return found


async def _mpu_require(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, upload_id: str) -> tuple[str, str]:
    mp, d = _mpu_dir(ctx, bck, obj, upload_id)
    if not await ctx.mountpaths.run(mp, _mpu_check, d, bck.object_uname(obj)):
        from target import rebalance  # rebalance imports this module
        await rebalance.pull_upload(request, ctx, bck, obj, upload_id)   # on its previous owner still?
        if not await ctx.mountpaths.run(mp, _mpu_check, d, bck.object_uname(obj)):
            raise NotFound(f"multipart upload {upload_id} of {bck.object_cname(obj)} does not exist")
    return mp, d


async def _put_part(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str) -> web.StreamResponse:
    upload_id = request.query[apc.Q_UPLOAD_ID]
    try:
        part = int(request.query.get(apc.Q_PART_NUMBER, ""))
    except ValueError:
        raise BadRequest("multipart part needs an integer partNumber") from None
    if not 1 <= part <= 10000:
        raise BadRequest(f"partNumber {part} out of range 1..10000")
    mp, d = await _mpu_require(request, ctx, bck, obj, upload_id)
    work = ctx.mountpaths.work_path(mp)
    rec = await receive_body(request, ctx, mp, work)
    await ctx.mountpaths.run(mp, os.replace, work, f"{d}/part.{part:05d}")
    return web.Response(status=200, headers={"ETag": f'"{rec.hasher.hexdigest()}"'})


def _mpu_assemble(d: str, work: str, parts: list[int] | None, fsync: bool) -> tuple[int, str]:
    available = sorted(int(n.split(".")[1]) for n in os.listdir(d) if n.startswith("part."))
    wanted = parts if parts else available
    missing = [p for p in wanted if p not in available]
    if missing:
        raise BadRequest(f"multipart upload is missing parts {missing}")
    if wanted != sorted(set(wanted)):
        raise BadRequest("multipart parts must be listed in ascending order without duplicates")
    h = xxhash.xxh64()
    size = 0
    with open(work, "wb") as out:
        for p in wanted:
            with open(f"{d}/part.{p:05d}", "rb") as src:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        out.flush()
        if fsync:
            os.fsync(out.fileno())
    return size, h.hexdigest()


async def _mpu_complete(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                        value: Any) -> web.StreamResponse:
    upload_id = request.query.get(apc.Q_UPLOAD_ID, "")
    mp, d = await _mpu_require(request, ctx, bck, obj, upload_id)
    parts: list[int] | None = None
    if value:
        if not isinstance(value, list):
            raise BadMessage("mpt-complete value must be a list of {part-number, etag}")
        try:
            parts = [int(p["part-number"]) for p in value]
        except (KeyError, TypeError, ValueError):
            raise BadMessage("mpt-complete value must be a list of {part-number, etag}") from None
    work = ctx.mountpaths.work_path(mp)
    try:
        size, digest = await ctx.mountpaths.run(mp, _mpu_assemble, d, work, parts, ctx.cfg.target.fsync)
    except BaseException:
        await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
        raise
    meta = ObjectMeta(size=size, cksum_type="xxhash", cksum_value=digest, bid=bucket_id(props))
    meta = await commit_object(ctx, bck, obj, mp, work, meta, props)
    await ctx.mountpaths.run(mp, shutil.rmtree, d, True)
    return web.Response(status=200, headers=object_headers(ctx, bck, obj, mp, meta, {"checksum", "version"}))


# --- copy / rename --------------------------------------------------------------------------

async def copy_object_to(ctx: TargetContext, bck: Bucket, obj: str, dst: Bucket, dst_obj: str) -> int:
    """Copy a local object to its owner under a new bucket/name (local or another target); its size."""
    dst_props = ctx.bucket_props(dst)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    opened = await ctx.mountpaths.run(mp, fsmeta.open_object, path)
    if opened is None:
        raise ObjectNotFound(bck.object_cname(obj))
    f, meta = opened
    try:
        owner = ctx.smap.owner(dst.object_uname(dst_obj))
        if owner is None:
            raise AisError("no active targets")
        if owner.id == ctx.me.id:
            dmp, _ = ctx.mountpaths.object_path(dst, dst_obj)
            work = ctx.mountpaths.work_path(dmp)
            await ctx.mountpaths.run(dmp, _copy_file, f, work, ctx.cfg.target.fsync)
            new_meta = ObjectMeta(size=meta.size, cksum_type=meta.cksum_type, cksum_value=meta.cksum_value,
                                  custom=meta.custom, bid=bucket_id(dst_props), md5=meta.md5,
                                  etag=meta.etag, s3_checksums=meta.s3_checksums)
            await commit_object(ctx, dst, dst_obj, dmp, work, new_meta, dst_props)
            return meta.size
        url = f"{owner.public_url}/v1/objects/{dst.name}/{_quote(dst_obj)}"
        params = {apc.Q_PROVIDER: dst.provider, _TARGET_REDIRECT: ctx.me.id}
        if not dst.namespace.is_global:
            params[apc.Q_NAMESPACE] = dst.namespace.uname
        headers = ctx.http.headers({apc.HDR_CHECKSUM_TYPE: meta.cksum_type, apc.HDR_CHECKSUM_VALUE: meta.cksum_value,
                                    "Content-Length": str(meta.size), apc.HDR_BACKGROUND: "true"})
        if meta.cksum_type == "none":
            headers.pop(apc.HDR_CHECKSUM_TYPE)
        async with ctx.http.session.put(url, data=file_chunks(ctx, mp, f, meta.size), params=params,
                                        headers=headers, timeout=ctx.http.data_timeout()) as resp:
            if resp.status >= 400:
                raise AisError(f"copy to {owner.display} failed: {resp.status} {await resp.text()}")
        if meta.custom:
            await ctx.http.call("PATCH", url, params={**params, apc.Q_NEW_CUSTOM: "true"},
                                json_body={"action": "", "value": meta.custom})
        return meta.size
    finally:
        f.close()


async def file_chunks(ctx: TargetContext, mp: str, f: Any, size: int) -> AsyncIterator[bytes]:
    """`size` bytes of an open object file as a request body, read in the mountpath's pool."""
    left = size
    while left > 0:
        chunk = await ctx.mountpaths.run(mp, f.read, min(1 << 20, left))
        if not chunk:
            raise ConnectionResetError("the object shrank while being sent")
        left -= len(chunk)
        yield chunk


def _quote(name: str) -> str:
    return quote(name)


def _copy_file(src: Any, work: str, fsync: bool) -> None:
    src.seek(0)
    with open(work, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        if fsync:
            os.fsync(out.fileno())


async def _copy_to(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str) -> web.StreamResponse:
    dst, dst_obj = names.parse_uname_object(request.query[apc.Q_OBJ_TO])
    await copy_object_to(ctx, bck, obj, dst, dst_obj)
    return web.Response(status=200)


async def delete_local(ctx: TargetContext, bck: Bucket, obj: str) -> bool:
    if not bck.is_ais:
        await remote.settle(ctx, bck, obj)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    bdir = ctx.mountpaths.bucket_dir(mp, bck)
    async with ctx.object_lock(bck.object_uname(obj)):
        removed = await ctx.mountpaths.run(mp, _remove_object, path, bdir, obj)
        removed = await mirror.remove_copies(ctx, bck, obj) or removed   # and its mirror copies
    return await ec.forget_object(ctx, bck, obj, ctx.bmd.get(bck) or {}) or removed   # and its EC slices everywhere


def _remove_object(path: str, bdir: str, obj: str) -> bool:
    """Blocking: the object, and the index sidecar a shard may have (target/archive/index.py)."""
    if formats.is_archive_name(obj):
        ar_index.drop(bdir, obj)
    return fsmeta.remove_object(path, bdir)


# --- DELETE / POST / PATCH ------------------------------------------------------------------

async def delete_object(request: web.Request) -> web.StreamResponse:
    ctx, bck, obj, _ = await resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, obj)) is not None:
        return r
    if apc.Q_UPLOAD_ID in request.query:  # mpt-abort
        mp, d = await _mpu_require(request, ctx, bck, obj, request.query[apc.Q_UPLOAD_ID])
        await ctx.mountpaths.run(mp, shutil.rmtree, d, True)
        return web.Response(status=200)
    from target import rebalance  # rebalance imports this module
    # copies not moved here yet first: one being sent is here once that delete returns
    at_neighbors = await rebalance.delete_at_neighbors(ctx, bck, obj, request)
    if not await delete_object_everywhere(ctx, bck, obj) and not at_neighbors:
        raise ObjectNotFound(bck.object_cname(obj))
    return web.Response(status=200)


async def delete_object_everywhere(ctx: TargetContext, bck: Bucket, obj: str) -> bool:
    """Delete the object (in a remote bucket: at the backend first). False when it existed nowhere."""
    remote_existed = False
    if not bck.is_ais:
        try:
            await (await ctx.backend(bck)).delete_object(bck.name, obj)
            remote_existed = True   # S3 answers 204 either way: a delete there counts as found
        except ObjectNotFound:
            pass
    return await delete_local(ctx, bck, obj) or remote_existed


async def post_object(request: web.Request) -> web.StreamResponse:
    ctx, bck, obj, props = await resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, obj)) is not None:
        return r
    msg = await read_action(request)
    assert msg is not None
    if msg.action == apc.ACT_CHECK_LOCK:
        return web.Response(status=200)
    if msg.action == apc.ACT_RENAME_OBJ:
        if not bck.is_ais:
            raise BadRequest(f"rename is supported for ais:// buckets only, not {bck.cname}")
        new = names.check_object_name(msg.name)
        if new == obj:
            raise BadRequest("rename: the new name equals the old one")
        await copy_object_to(ctx, bck, obj, bck, new)
        await delete_local(ctx, bck, obj)
        return web.Response(status=200)
    if msg.action == apc.ACT_MPT_UPLOAD:
        upload_id = os.urandom(16).hex()
        mp, d = _mpu_dir(ctx, bck, obj, upload_id)
        await ctx.mountpaths.run(mp, _mpu_create, d, bck.object_uname(obj))
        return web.Response(text=upload_id, content_type="text/plain")
    if msg.action == apc.ACT_MPT_COMPLETE:
        return await _mpu_complete(request, ctx, bck, obj, props, msg.value)
    if msg.action == apc.ACT_MPT_ABORT:
        mp, d = await _mpu_require(request, ctx, bck, obj, request.query.get(apc.Q_UPLOAD_ID, ""))
        await ctx.mountpaths.run(mp, shutil.rmtree, d, True)
        return web.Response(status=200)
    raise UnknownAction(f"unknown object action {msg.action!r}")


async def patch_object(request: web.Request) -> web.StreamResponse:
    """Set custom metadata: merge keys, or replace them all with `set-new-custom=true`."""
    ctx, bck, obj, _ = await resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, obj)) is not None:
        return r
    msg = await read_action(request)
    assert msg is not None
    if not isinstance(msg.value, dict) or not all(isinstance(k, str) for k in msg.value):
        raise BadMessage("custom metadata must be a JSON object of string keys")
    custom = {k: str(v) for k, v in msg.value.items()}
    for k, v in custom.items():
        if not k or "=" in k or "," in k:
            raise BadRequest(f"invalid custom metadata key {k!r}: must be non-empty without '=' or ','")
        names.check_header_text(k, "custom metadata key")   # both travel in the Ais-Custom-Md header
        names.check_header_text(v, f"custom metadata value of {k!r}")
    replace_all = names.parse_bool(request.query.get(apc.Q_NEW_CUSTOM), apc.Q_NEW_CUSTOM)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    async with ctx.object_lock(bck.object_uname(obj)):
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
        if meta is None:
            raise ObjectNotFound(bck.object_cname(obj))
        merged = custom if replace_all else {**meta.custom, **custom}
        await ctx.mountpaths.run(mp, fsmeta.set_meta, path, meta.with_custom(merged))
    return web.Response(status=200)
