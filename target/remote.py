"""Objects of remote buckets (s3://, gs://, az://) on a target: cold GET, warm validation,
write-through, and the intra-cluster routes for remote bucket HEAD and listing.

Cold GET (reference §5): an object the target lacks is fetched from the backend once. The
first reader starts a `ColdFetch`; every reader that asks for the same object meanwhile
shares it. The fetch writes a work file and each reader is sent that file as it grows (by
`sendfile` from a descriptor opened before anything can rename the file), so the first bytes
reach every reader while the rest is still arriving. When the whole object is on disk it is
checksummed, fsynced and published atomically with the remote version and ETag; a failed or
cut-off backend read removes the work file and fails every reader (a cut connection once the
headers are out), so no partial object is ever published.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable, Mapping

import msgpack
import xxhash
from aiohttp import web

from ais import apc, names
from ais.cmap import bucket_id
from ais.errors import AisError, BadMessage, ObjectNotFound, TooManyRequests
from ais.httpdate import http_date
from ais.names import Bucket
from ais.web import STREAMING, read_json
from target.backends.base import BackendError, RemoteAttrs
from target.context import CTX, TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.fs.sendfile import send_fd

log = logging.getLogger(__name__)


class Gone(AisError):
    status = 410
    code = "gone"


# --- metadata ---------------------------------------------------------------------------------

# custom-metadata keys the system sets on a copy of a remote object (reference §4)
REMOTE_KEYS = frozenset({"source", "version", "ETag", "md5", "crc32c", "LastModified"})


def user_metadata(custom: Mapping[str, str]) -> dict[str, str]:
    """What of an object's custom metadata is the user's: not the system's remote keys, not a
    front end's own (`s3:content-type`)."""
    return {k: v for k, v in custom.items() if k not in REMOTE_KEYS and ":" not in k}


def remote_meta(bck: Bucket, attrs: RemoteAttrs, size: int, xxh: str, bid: int,
                custom: Mapping[str, str] | None = None) -> ObjectMeta:
    """Local metadata of a copy of a remote object: the remote version and ETag kept (reference §4)."""
    md: dict[str, str] = dict(attrs.custom if custom is None else custom)
    md["source"] = bck.provider
    if attrs.version:
        md["version"] = attrs.version
    if attrs.etag:
        md["ETag"] = attrs.etag
    if attrs.md5:
        md["md5"] = attrs.md5
    if attrs.crc32c:
        md["crc32c"] = attrs.crc32c
    if attrs.mtime_ns:
        md["LastModified"] = str(attrs.mtime_ns)
    return ObjectMeta(size=size, cksum_type="xxhash", cksum_value=xxh, version=attrs.version, custom=md, bid=bid,
                      md5=attrs.md5)


def same_remote(meta: ObjectMeta, attrs: RemoteAttrs) -> bool:
    """Is the local copy the current remote object? Size must match, then version or ETag."""
    if meta.size != attrs.size:
        return False
    version, etag = meta.custom.get("version", ""), meta.custom.get("ETag", "")
    if version and attrs.version:
        return version == attrs.version
    if etag and attrs.etag:
        return etag == attrs.etag
    return False   # nothing to compare: assume it changed


def validate_warm(props: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    return (names.parse_bool(query.get(apc.Q_LATEST_VER), apc.Q_LATEST_VER)
            or bool((props.get("versioning") or {}).get("validate_warm_get", False)))


def synchronize(props: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    return (names.parse_bool(query.get(apc.Q_SYNCHRONIZE), apc.Q_SYNCHRONIZE)
            or bool((props.get("versioning") or {}).get("synchronize", False)))


async def check_warm(ctx: TargetContext, bck: Bucket, obj: str, meta: ObjectMeta, sync: bool) -> bool:
    """True when the local copy is current. ObjectNotFound when the remote object is gone
    (the local copy is removed first when `sync`)."""
    from target.objects import delete_local  # objects imports this module
    try:
        attrs = await (await ctx.backend(bck)).head_object(bck.name, obj)
    except ObjectNotFound:
        if sync:
            await delete_local(ctx, bck, obj)
        raise
    return same_remote(meta, attrs)


# --- cold GET ---------------------------------------------------------------------------------

class ColdFetch:
    """One backend GET of one object, shared by every reader that wants it meanwhile."""

    def __init__(self, ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> None:
        self.ctx, self.bck, self.obj, self.props = ctx, bck, obj, props
        self.mp, _ = ctx.mountpaths.object_path(bck, obj)
        self.work = ctx.mountpaths.work_path(self.mp, "cold.")
        self.ready: asyncio.Future[RemoteAttrs] = asyncio.get_running_loop().create_future()
        self.changed = asyncio.Condition()
        self.written = 0
        self.done = False
        self.error: BaseException | None = None
        self.rfd = -1           # read descriptor of the work file, shared by readers (pread)
        self.users = 1          # the fetch itself plus each reader; the last one closes rfd

    async def run(self) -> None:
        ctx = self.ctx
        try:
            await self._fetch()
        except BaseException as exc:
            self.error = exc if not isinstance(exc, asyncio.CancelledError) else BackendError("cold GET cancelled")
            if not self.ready.done():
                self.ready.set_exception(self.error)
                self.ready.exception()  # retrieved: readers may all be gone
            await asyncio.shield(ctx.mountpaths.run(self.mp, fsmeta.unlink_quiet, self.work))
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not isinstance(exc, AisError):
                log.exception("cold GET of %s failed", self.bck.object_cname(self.obj))
        finally:
            self.done = True
            ctx.cold.pop(self.bck.object_uname(self.obj), None)
            async with self.changed:
                self.changed.notify_all()
            await self.release()

    async def _fetch(self) -> None:
        from target.objects import commit_object  # objects imports this module
        ctx, mp = self.ctx, self.mp
        reader = await (await ctx.backend(self.bck)).open_reader(self.bck.name, self.obj)
        try:
            f, self.rfd = await ctx.mountpaths.run(mp, _open_work_pair, self.work)
            self.ready.set_result(reader.attrs)
            hasher = xxhash.xxh64()
            try:
                while chunk := await reader.read():
                    await ctx.mountpaths.run(mp, _append, f, chunk, hasher)
                    self.written += len(chunk)
                    async with self.changed:
                        self.changed.notify_all()
                if self.written != reader.attrs.size:
                    raise BackendError(f"{self.bck.object_cname(self.obj)}: backend stream ended after "
                                       f"{self.written} of {reader.attrs.size} bytes")
                await ctx.mountpaths.run_flush(mp, fsmeta.finish_work, f, ctx.cfg.target.fsync)
            except BaseException:
                f.close()
                raise
        finally:
            await reader.close()
        meta = remote_meta(self.bck, reader.attrs, self.written, hasher.hexdigest(), bucket_id(self.props))
        await commit_object(ctx, self.bck, self.obj, mp, self.work, meta, self.props, write_through=False)
        ctx.metrics.cold_get(self.bck.provider, self.written)

    async def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.rfd >= 0:
            fd, self.rfd = self.rfd, -1
            await self.ctx.mountpaths.run(self.mp, os.close, fd)

    async def finished(self) -> None:
        """Until the fetch has ended (published or failed)."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.done)

    async def wait_for(self, pos: int) -> None:
        """Until more than `pos` bytes are written, or the fetch ended (raises its error)."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.written > pos or self.done)
        if self.error is not None:
            raise self.error
        if self.written <= pos:
            raise BackendError(f"{self.bck.object_cname(self.obj)}: cold GET ended early")


async def settle(ctx: TargetContext, bck: Bucket, obj: str) -> None:
    """Wait for a cold GET of this object in flight to end, so that a later write or delete is
    not undone by the fetch publishing its (older) copy afterwards."""
    fetch = ctx.cold.get(bck.object_uname(obj))
    if fetch is not None:
        await fetch.finished()


async def fetch_object(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> int:
    """Bring a remote object into the cluster (prefetch): join or start its cold GET, wait
    for it to be published; returns its size."""
    fetch = cold_fetch(ctx, bck, obj, props)
    try:
        await fetch.finished()
        if fetch.error is not None:
            raise fetch.error
        return fetch.written
    finally:
        await fetch.release()


def admit_cold(ctx: TargetContext, bck: Bucket, obj: str) -> None:
    """Refuse a new cold GET while the target is critically loaded (429 native, 503 SlowDown in
    S3); reads of what is here, and joining a fetch already in flight, go on."""
    if bck.object_uname(obj) not in ctx.cold and ctx.load.critical():
        retry = ctx.load.retry_after_s()
        raise TooManyRequests(f"{bck.object_cname(obj)}: target {ctx.me.display} is overloaded; "
                              f"retry in {retry}s", headers={"Retry-After": str(retry)})


def cold_fetch(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> ColdFetch:
    """The fetch in flight for this object, or a new one (single flight). No await inside."""
    uname = bck.object_uname(obj)
    fetch = ctx.cold.get(uname)
    if fetch is None:
        fetch = ColdFetch(ctx, bck, obj, props)
        ctx.cold[uname] = fetch
        ctx.spawn(fetch.run(), name=f"cold-{uname}")
    fetch.users += 1
    return fetch


async def serve_cold(request: web.Request, fetch: ColdFetch, headers_of: Callable[[RemoteAttrs], dict[str, str]],
                     range_of: Callable[[RemoteAttrs, dict[str, str]], tuple[int, int, int]]) -> web.StreamResponse:
    """Stream the object to this reader while the fetch writes it.

    `headers_of(attrs)` builds the response headers, `range_of(attrs, headers)` returns
    (status, offset, count) — the front end's own header and range rules.
    """
    ctx = fetch.ctx
    try:
        attrs = await asyncio.shield(fetch.ready)
        headers = headers_of(attrs)
        status, offset, count = range_of(attrs, headers)
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = count
        await resp.prepare(request)
        request[STREAMING] = True
        pos, end = offset, offset + count
        # a read to the object's end holds back its last byte until the fetch has published the
        # object: once a reader has it all, the object is in the cluster (listed as cached, and
        # the next GET is warm), not still being fsynced and committed behind the reader's back
        hold = 1 if count and end == attrs.size else 0
        pool, stall_s = ctx.mountpaths.pool(fetch.mp), ctx.cfg.timeouts.data_read_s
        while pos < end:
            if fetch.written <= pos:
                await fetch.wait_for(pos)
            n = min(end, fetch.written) - pos   # what is on disk now, sent zero-copy
            if hold and pos + n == end and not fetch.done:
                if n > hold:
                    await send_fd(request, resp, fetch.rfd, pos, n - hold, pool, stall_s)
                    pos += n - hold
                await fetch.finished()   # published, or failed: the bytes read are right either way
                continue
            await send_fd(request, resp, fetch.rfd, pos, n, pool, stall_s)
            pos += n
        await resp.write_eof()
        ctx.metrics.bytes_out.labels(verb="GET").inc(count)
        return resp
    finally:
        await fetch.release()


def _open_work_pair(path: str) -> tuple[Any, int]:
    f = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by the fetch
    try:
        return f, os.open(path, os.O_RDONLY)
    except BaseException:
        f.close()
        raise


def _append(f: Any, chunk: bytes, hasher: Any) -> None:
    hasher.update(chunk)
    view = memoryview(chunk)
    while view:
        view = view[f.write(view):]


# --- blob download: one large object in parallel ranges -----------------------------------------

BLOB_CHUNK_BYTES = 4 << 20
BLOB_WORKERS = 4


async def blob_download(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                        chunk_bytes: int = 0, workers: int = 0) -> int:
    """Fetch a large remote object as `workers` parallel range reads of `chunk_bytes` each, into
    one preallocated work file, then publish it like a cold GET. Returns its size.

    Every range must come from the same remote version (its ETag is checked against the HEAD),
    so an object overwritten mid-download fails instead of being stitched from two versions.
    """
    from target.objects import commit_object  # objects imports this module
    chunk_bytes = max(chunk_bytes or BLOB_CHUNK_BYTES, 1 << 20)
    workers = max(1, min(workers or BLOB_WORKERS, 32))
    backend = await ctx.backend(bck)
    attrs = await backend.head_object(bck.name, obj)
    mp, _ = ctx.mountpaths.object_path(bck, obj)
    work = ctx.mountpaths.work_path(mp, "blob.")
    fd = await ctx.mountpaths.run(mp, _create_sized, work, attrs.size)
    ranges = asyncio.Queue[tuple[int, int]]()
    for off in range(0, attrs.size, chunk_bytes):
        ranges.put_nowait((off, min(chunk_bytes, attrs.size - off)))

    async def worker() -> None:
        while not ranges.empty():
            off, length = ranges.get_nowait()
            reader = await backend.open_reader(bck.name, obj, off, length)
            try:
                if attrs.etag and reader.attrs.etag and reader.attrs.etag != attrs.etag:
                    raise BackendError(f"{bck.object_cname(obj)} changed during the download")
                pos = off
                while chunk := await reader.read():
                    await ctx.mountpaths.run(mp, os.pwrite, fd, chunk, pos)
                    pos += len(chunk)
                if pos != off + length:
                    raise BackendError(f"{bck.object_cname(obj)}: range at {off} ended after {pos - off} of {length} bytes")
            finally:
                await reader.close()
    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(workers, ranges.qsize()) or 1):
                tg.create_task(worker())
        digest = await ctx.mountpaths.run(mp, _hash_and_sync, fd, attrs.size, ctx.cfg.target.fsync)
    except BaseException as exc:
        await asyncio.shield(ctx.mountpaths.run(mp, _close_and_unlink, fd, work))
        if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            raise exc.exceptions[0] from None
        raise
    await ctx.mountpaths.run(mp, os.close, fd)
    meta = remote_meta(bck, attrs, attrs.size, digest, bucket_id(props))
    await commit_object(ctx, bck, obj, mp, work, meta, props, write_through=False)
    ctx.metrics.cold_get(bck.provider, attrs.size)
    return attrs.size


def _create_sized(path: str, size: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _hash_and_sync(fd: int, size: int, fsync: bool) -> str:
    h = xxhash.xxh64()
    pos = 0
    while pos < size:
        data = os.pread(fd, min(8 << 20, size - pos), pos)
        if not data:
            break
        h.update(data)
        pos += len(data)
    if fsync:
        os.fsync(fd)
    return h.hexdigest()


def _close_and_unlink(fd: int, path: str) -> None:
    os.close(fd)
    fsmeta.unlink_quiet(path)


# --- HEAD of an object the cluster lacks --------------------------------------------------------

def remote_headers(attrs: RemoteAttrs, props: set[str] | None) -> dict[str, str]:
    """Object headers from the backend's answer (`Ais-Present: false`)."""
    from target.objects import custom_md_header
    def want(p: str) -> bool:
        return props is None or p in props
    h = {apc.HDR_PRESENT: "false"}
    if want("version") and attrs.version:
        h[apc.HDR_VERSION] = attrs.version
    if want("etag") and attrs.etag:
        h["ETag"] = f'"{attrs.etag}"'
    if want("last-modified") and attrs.mtime_ns:
        h["Last-Modified"] = http_date(attrs.mtime_ns)
    if want("custom") and attrs.custom:
        h[apc.HDR_CUSTOM_MD] = custom_md_header(attrs.custom)
    return h


# --- intra-cluster routes -----------------------------------------------------------------------

def _bucket(request: web.Request) -> Bucket:
    q = request.query
    return names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))


async def head_remote_bucket(request: web.Request) -> web.StreamResponse:
    """Intra `GET /v1/rbck/{bucket}?provider=`: the backend's facts about the bucket, or 404."""
    ctx = request.app[CTX]
    bck = _bucket(request)
    if bck.is_ais:
        raise BadMessage(f"{bck.cname} is not a remote bucket")
    facts = await (await ctx.backend(bck)).head_bucket(bck.name)
    return web.json_response(dict(facts))


async def list_remote_page(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/rlso/{bucket}`: one page from the backend, each entry marked cached or not.

    Body {prefix, token, limit, props, not_cached}. This target (the designated one) pages the
    backend and asks each entry's owner which of the names it holds.
    """
    ctx = request.app[CTX]
    bck = _bucket(request)
    ctx.bucket_props(bck)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadMessage("remote list request must be a JSON object")
    props = names.prop_names(body.get("props"))
    limit = body.get("limit", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1000:
        raise BadMessage(f"remote list request: 'limit' must be an integer 1..1000, got {limit!r:.40}")
    page = await (await ctx.backend(bck)).list_page(bck.name, str(body.get("prefix", "")),
                                                          str(body.get("token", "")), limit)
    names_ = [e.name for e in page.entries]
    local = await cached_entries(ctx, bck, names_, props)
    from target.listing import ENTRY_IS_CACHED
    out = []
    for e in page.entries:
        have = local.get(e.name)
        if have is not None:
            if body.get("not_cached"):
                continue
            entry = {**have, "f": ENTRY_IS_CACHED}
        else:
            entry = {"n": e.name, "f": 0}
        entry["n"] = e.name
        entry["s"] = e.attrs.size
        if "version" in props and e.attrs.version:
            entry["v"] = e.attrs.version
        if "etag" in props and e.attrs.etag:
            entry.setdefault("e", e.attrs.etag)
        out.append(entry)
    return web.Response(body=msgpack.packb({"entries": out, "token": page.next_token}), content_type=apc.MSGPACK)


async def cached_entries(ctx: TargetContext, bck: Bucket, names_: list[str], props: set[str]) -> dict[str, dict[str, Any]]:
    """{name: local listing entry} of the names some target holds, asking each owner once."""
    by_owner: dict[str, list[str]] = {}
    for n in names_:
        owner = ctx.smap.owner(bck.object_uname(n))
        if owner is not None:
            by_owner.setdefault(owner.id, []).append(n)
    params = {apc.Q_PROVIDER: bck.provider}

    async def ask(tid: str, batch: list[str]) -> dict[str, dict[str, Any]]:
        if tid == ctx.me.id:
            return await local_entries(ctx, bck, batch, props)
        node = ctx.smap.targets[tid]
        try:
            _, data, _ = await ctx.http.call("POST", f"{node.intra_url}/v1/have/{bck.name}", params=params,
                                             json_body={"names": batch, "props": sorted(props)})
        except Exception as exc:  # noqa: BLE001 - a target down: its names read as not cached
            log.warning("cannot ask %s which objects it caches: %s", node.display, exc)
            return {}
        result: dict[str, dict[str, Any]] = msgpack.unpackb(data)
        return result
    found: dict[str, dict[str, Any]] = {}
    for part in await asyncio.gather(*(ask(t, b) for t, b in by_owner.items())):
        found.update(part)
    return found


async def local_entries(ctx: TargetContext, bck: Bucket, names_: list[str], props: set[str]) -> dict[str, dict[str, Any]]:
    from target.listing import entry_of
    by_mp: dict[str, list[tuple[str, str]]] = {}
    for n in names_:
        mp, path = ctx.mountpaths.object_path(bck, n)
        by_mp.setdefault(mp, []).append((n, path))

    def stat_all(mp: str, items: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        out = {}
        for n, path in items:
            meta = fsmeta.stat_object(path)
            if meta is not None:
                out[n] = entry_of(ctx, n, mp, meta, props, "")
        return out
    found: dict[str, dict[str, Any]] = {}
    for part in await asyncio.gather(*(ctx.mountpaths.run(mp, stat_all, mp, items) for mp, items in by_mp.items())):
        found.update(part)
    return found


async def have_objects(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/have/{bucket}` {names, props}: msgpack {name: entry} of those held here."""
    ctx = request.app[CTX]
    bck = _bucket(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("names"), list):
        raise BadMessage("expected {names: [...], props: [...]}")
    names_ = [names.check_object_name(str(n)) for n in body["names"]]
    found = await local_entries(ctx, bck, names_, names.prop_names(body.get("props")))
    return web.Response(body=msgpack.packb(found), content_type=apc.MSGPACK)
