"""Batch-get on a target (reference §7): assemble one archive from entries across the cluster.

The proxy picks a designated target (DT) and redirects the client's request to it. The DT
groups the entries by owner (HRW) and opens one *source* per owner: this target's own disks,
and one streaming intra-cluster request per peer (`POST /v1/ml/moss/send`). Every source first
answers a manifest (size or error of each of its entries, in request order), then streams the
entries' bytes back to back. So, before the first byte goes out, the DT knows every entry's
size (tar headers need it) and every failure (without `coer`, the request fails with the first
one's status and nothing partial is sent).

Memory stays bounded whatever the batch size: each source reads ahead at most
`get_batch.window_bytes` (disk reads into a bounded buffer; a peer's stream is held back by TCP
once the DT stops reading it), and the DT writes members out in request order as their bytes
arrive. A peer that dies or stalls mid-batch cuts the response (the client sees a truncated
stream, never a hang: peer reads have a per-read timeout).

Admission: more than `get_batch.max_pending` batches assembling here (fewer when memory is
High), or critical load, answers 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

import aiohttp
import msgpack
from aiohttp import web

from ais import apc, names
from ais.cmap import Node
from ais.errors import AisError, BadMessage, ServiceUnavailable, TooManyRequests
from ais.intra import PeerError, peer_message
from ais.moss import MAX_BODY_BYTES, BatchEntry, BatchRequest, RangeError, read_request
from ais.web import STREAMING, read_body
from target import remote
from target.archive.write import ArchiveWriter
from target.context import CTX, TargetContext
from target.fs import meta as fsmeta
from target.jobs import JOBS, JobRegistry
from target.jobs.base import Job
from target.load import Grade

log = logging.getLogger(__name__)

SEND_PATH = "/v1/ml/moss/send"
_SMALL_ENTRY = 256 << 10       # entries up to this size are read several to a pool hop
_MANIFEST_LEN = 4              # bytes of the big-endian manifest length that starts a peer's stream


# --- the get-batch job: one long-lived, idle-between-uses job per target --------------------

class GetBatchJob(Job):
    """Counts what this target served as a designated target; idle when no batch assembles."""

    kind = "get-batch"

    def __init__(self, ctx: TargetContext, job_id: str) -> None:
        super().__init__(ctx, job_id, None, None, {})
        self.active = 0

    async def run(self) -> None:
        await asyncio.Event().wait()   # lives until the target stops

    def snap(self) -> dict[str, Any]:
        s = super().snap()
        s["is_idle"] = self.active == 0
        return s


def _job(registry: JobRegistry, ctx: TargetContext) -> GetBatchJob:
    for job in registry.jobs.values():
        if isinstance(job, GetBatchJob) and not job.end_ns:
            return job
    job = GetBatchJob(ctx, f"gb-{secrets.token_hex(5)}")
    registry.start(job)
    return job


# --- resolving entries on their owner: the manifest -----------------------------------------

@dataclass(slots=True)
class Resolved:
    """One entry on its owner: what it will send (size) or why not (status, error)."""
    size: int = 0
    mtime_s: float = 0.0
    status: int = 0                # 0 = ok; else the HTTP status of the failure
    error: str = ""
    mp: str = ""
    path: str = ""
    object_size: int = 0           # the whole object's size when resolved (a changed file is an error later)
    offset: int = 0
    archived: BatchEntry | None = None   # set for a file inside a shard (reopened when read)

    def wire(self) -> list[Any]:
        return [self.size, self.mtime_s, self.status, self.error]


def _failed(exc: AisError) -> Resolved:
    return Resolved(status=exc.status, error=exc.message)


def _stat_many(paths: Sequence[str]) -> list[fsmeta.ObjectMeta | None]:
    return [fsmeta.stat_object(p) for p in paths]


async def resolve(ctx: TargetContext, entries: Sequence[BatchEntry]) -> list[Resolved]:
    """Stat every entry (one pool hop per 256 entries of a mountpath), fetch remote ones that
    are not here yet (bounded), open archived files; failures become per-entry errors."""
    out: list[Resolved] = [Resolved() for _ in entries]
    by_mp: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        mp, path = ctx.mountpaths.object_path(e.bck, e.obj)
        out[i].mp, out[i].path = mp, path
        by_mp.setdefault(mp, []).append(i)

    async def stat_group(mp: str, idxs: list[int]) -> None:
        for k in range(0, len(idxs), 256):
            part = idxs[k:k + 256]
            metas = await ctx.mountpaths.run(mp, _stat_many, [out[i].path for i in part])
            for i, meta in zip(part, metas):
                _settle_meta(ctx, entries[i], out[i], meta)
    await asyncio.gather(*(stat_group(mp, idxs) for mp, idxs in by_mp.items()))

    # remote entries not here: cold GET them into the cluster first (single flight per object)
    cold = [i for i, r in enumerate(out) if r.status == 404 and not entries[i].bck.is_ais]
    if cold:
        sem = asyncio.Semaphore(max(ctx.cfg.get_batch.cold_workers, 1))

        async def fetch(i: int) -> None:
            e = entries[i]
            async with sem:
                try:
                    remote.admit_cold(ctx, e.bck, e.obj)
                    await remote.fetch_object(ctx, e.bck, e.obj, ctx.bucket_props(e.bck))
                    meta = await ctx.mountpaths.run(out[i].mp, fsmeta.stat_object, out[i].path)
                except AisError as exc:
                    out[i] = _failed(exc)
                    return
                _settle_meta(ctx, e, out[i], meta)
        await asyncio.gather(*(fetch(i) for i in cold))

    # files inside shards
    archived = [i for i, e in enumerate(entries) if e.archpath and out[i].status == 0]
    if archived:
        sem = asyncio.Semaphore(16)

        async def size_archived(i: int) -> None:
            async with sem:
                await _open_archived(ctx, entries[i], out[i])
        await asyncio.gather(*(size_archived(i) for i in archived))
    return out


def _settle_meta(ctx: TargetContext, e: BatchEntry, r: Resolved, meta: fsmeta.ObjectMeta | None) -> None:
    bid = int(str((ctx.bmd.get(e.bck) or {}).get("bid", "0")))
    if meta is None or (meta.bid and bid and meta.bid != bid):
        r.status, r.error = 404, f"{e.bck.object_cname(e.obj)} does not exist"
        return
    r.object_size, r.mtime_s, r.status, r.error = meta.size, meta.mtime_ns / 1e9, 0, ""
    if e.archpath:
        return   # sized once the archived file is opened
    try:
        r.offset, r.size = e.resolve_range(meta.size)
    except RangeError as exc:
        r.status, r.error = exc.status, exc.message


async def _open_archived(ctx: TargetContext, e: BatchEntry, r: Resolved) -> None:
    """Size a file inside a shard. It is closed again at once (a batch may name thousands) and
    reopened when its turn to be read comes: a tar's index makes that a seek."""
    from target import shards   # the shard reader; imported here to keep batch-get's import light
    try:
        member = await shards.open_member(ctx, e.bck, e.obj, e.archpath)
    except AisError as exc:
        r.status, r.error = exc.status, exc.message
        return
    await member.close()
    r.archived, r.object_size, r.mtime_s = e, member.size, member.mtime_s or r.mtime_s
    try:
        r.offset, r.size = e.resolve_range(member.size)
    except RangeError as exc:
        r.status, r.error = exc.status, exc.message


async def _archived_chunks(ctx: TargetContext, r: Resolved) -> AsyncIterator[bytes]:
    from target import shards
    assert r.archived is not None
    e = r.archived
    member = await shards.open_member(ctx, e.bck, e.obj, e.archpath)
    if member.size != r.object_size:
        await member.close()
        raise ServiceUnavailable(f"{e.cname}: the shard changed while the batch was read")
    async for chunk in member.chunks(r.offset, r.size):
        yield chunk


# --- reading resolved entries, ahead of the consumer ----------------------------------------

def _read_ranges(items: Sequence[tuple[str, int, int, int]]) -> list[bytes]:
    """Blocking: read (path, offset, count, expected object size) of several small entries."""
    out = []
    for path, offset, count, expected in items:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size != expected:
                raise ServiceUnavailable(f"{path}: the object changed while the batch was read")
            out.append(fsmeta.read_fd(fd, count, offset) if count else b"")
        finally:
            os.close(fd)
        if len(out[-1]) != count:
            raise ServiceUnavailable(f"{path}: short read")
    return out


def _open_checked(path: str, expected: int) -> Any:
    f = open(path, "rb")  # noqa: SIM115 - closed by the reader
    if os.fstat(f.fileno()).st_size != expected:
        f.close()
        raise ServiceUnavailable(f"{path}: the object changed while the batch was read")
    return f


def _pread(f: Any, count: int, offset: int) -> bytes:
    data: bytes = os.pread(f.fileno(), count, offset)
    if len(data) != count:
        raise ServiceUnavailable("short read of an object in a batch")
    return data


class EntryReader:
    """Reads the bytes of resolved entries in order, at most `window` bytes ahead of `take()`."""

    def __init__(self, ctx: TargetContext, items: Sequence[Resolved], window: int, chunk: int) -> None:
        self.ctx, self.items, self.window, self.chunk = ctx, items, window, chunk
        self._q: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        self._buffered = 0
        self._room = asyncio.Event()
        self._task = asyncio.create_task(self._produce(), name="moss-read")

    async def _put(self, data: bytes) -> None:
        while self._buffered and self._buffered + len(data) > self.window:
            self._room.clear()
            await self._room.wait()
        self._buffered += len(data)
        self._q.put_nowait(data)

    async def _produce(self) -> None:
        try:
            items = [r for r in self.items if r.status == 0 and r.size > 0]
            i = 0
            while i < len(items):
                r = items[i]
                if r.archived is None and r.size <= _SMALL_ENTRY:
                    group: list[Resolved] = []
                    total = 0
                    while (i < len(items) and items[i].archived is None and items[i].size <= _SMALL_ENTRY
                           and total < self.chunk * 4 and len(group) < 64 and items[i].mp == r.mp):
                        group.append(items[i])
                        total += items[i].size
                        i += 1
                    datas = await self.ctx.mountpaths.run(
                        r.mp, _read_ranges, [(g.path, g.offset, g.size, g.object_size) for g in group])
                    for d in datas:
                        await self._put(d)
                    continue
                if r.archived is not None:
                    async for c in _archived_chunks(self.ctx, r):
                        await self._put(c)
                else:
                    f = await self.ctx.mountpaths.run(r.mp, _open_checked, r.path, r.object_size)
                    try:
                        pos, end = r.offset, r.offset + r.size
                        while pos < end:
                            n = min(self.chunk, end - pos)
                            await self._put(await self.ctx.mountpaths.run(r.mp, _pread, f, n, pos))
                            pos += n
                    finally:
                        f.close()
                i += 1
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who fails the batch
            self._q.put_nowait(exc)

    async def take(self, size: int) -> AsyncIterator[bytes]:
        """The next entry's bytes (exactly `size`), as the producer read them."""
        left = size
        while left > 0:
            item = await self._q.get()
            if isinstance(item, BaseException):
                raise item
            self._buffered -= len(item)
            self._room.set()
            left -= len(item)
            yield item

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass


# --- sources on the designated target -------------------------------------------------------

class LocalSource:
    """This target's own entries."""

    def __init__(self, ctx: TargetContext, entries: list[BatchEntry]) -> None:
        self.ctx, self.entries = ctx, entries
        self.manifest: list[Resolved] = []
        self._reader: EntryReader | None = None

    async def open(self) -> None:
        self.manifest = await resolve(self.ctx, self.entries)
        cfg = self.ctx.cfg.get_batch
        self._reader = EntryReader(self.ctx, self.manifest, cfg.window_bytes, cfg.chunk_bytes)

    def take(self, size: int) -> AsyncIterator[bytes]:
        assert self._reader is not None
        return self._reader.take(size)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()


class PeerSource:
    """One peer's entries, streamed over one intra-cluster request."""

    def __init__(self, ctx: TargetContext, peer: Node, entries: list[BatchEntry]) -> None:
        self.ctx, self.peer, self.entries = ctx, peer, entries
        self.manifest: list[Resolved] = []
        self._resp: aiohttp.ClientResponse | None = None

    async def open(self) -> None:
        body = msgpack.packb({"entries": [_entry_wire(e) for e in self.entries]})
        try:
            self._resp = await self.ctx.http.session.post(
                f"{self.peer.intra_url}{SEND_PATH}", data=body, headers=self.ctx.http.headers(
                    {"Content-Type": apc.MSGPACK}), timeout=self.ctx.http.data_timeout())
            if self._resp.status != 200:
                text = await self._resp.text()
                raise PeerError(self._resp.status, peer_message(self._resp.status, text))
            n = int.from_bytes(await self._resp.content.readexactly(_MANIFEST_LEN), "big")
            wire = msgpack.unpackb(await self._resp.content.readexactly(n))
        except (aiohttp.ClientError, asyncio.IncompleteReadError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"batch: target {self.peer.display} failed: {type(exc).__name__}: {exc}") \
                from exc
        self.manifest = [Resolved(size=s, mtime_s=m, status=st, error=err) for s, m, st, err in wire]

    async def take(self, size: int) -> AsyncIterator[bytes]:
        assert self._resp is not None
        left = size
        try:
            while left > 0:
                chunk = await self._resp.content.read(min(left, self.ctx.cfg.get_batch.chunk_bytes))
                if not chunk:
                    raise ServiceUnavailable(f"batch: target {self.peer.display} ended its stream early")
                left -= len(chunk)
                yield chunk
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"batch: target {self.peer.display} failed mid-stream: "
                                     f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._resp is not None:
            self._resp.close()


def _entry_wire(e: BatchEntry) -> list[Any]:
    return [e.bck.provider, e.bck.namespace.uname, e.bck.name, e.obj, e.archpath, e.start, e.length]


_WIRE_TYPES = (str, str, str, str, str, int, int)


def _entry_from_wire(w: Any) -> BatchEntry:
    if not isinstance(w, list) or len(w) != len(_WIRE_TYPES) \
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(w, _WIRE_TYPES)):
        raise BadMessage(f"malformed batch entry {w!r:.200}: expected [provider, namespace, bucket, object, "
                         "archpath, start, length]")
    prov, ns, bname, obj, archpath, start, length = w
    if start < 0 or length < -1:
        raise BadMessage(f"malformed batch entry {w!r:.200}: negative start or length")
    return BatchEntry(names.make_bucket(bname, prov, ns), names.check_object_name(obj), archpath, start, length)


def parse_entries(body: bytes) -> list[BatchEntry]:
    """A peer's msgpack `{"entries": [[provider, ns, bucket, object, archpath, start, length], ...]}`;
    anything else is a 400 (BadMessage, or InvalidName for a bad bucket or object name)."""
    try:
        doc = msgpack.unpackb(body)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:   # ExtraData is a ValueError
        raise BadMessage(f"malformed batch entries: {exc}") from exc
    wires = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(wires, list):
        raise BadMessage("malformed batch entries: expected a map with an 'entries' list")
    return [_entry_from_wire(w) for w in wires]


# --- the peer's side: send my entries to the designated target ------------------------------

async def send_entries(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/ml/moss/send` (msgpack {"entries": [...]}): manifest, then the bytes."""
    ctx = request.app[CTX]
    entries = parse_entries(await read_body(request, MAX_BODY_BYTES))
    resolved = await resolve(ctx, entries)
    cfg = ctx.cfg.get_batch
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    request[STREAMING] = True
    manifest = msgpack.packb([r.wire() for r in resolved])
    out = _Coalesced(resp.write, cfg.chunk_bytes)
    await out.put(len(manifest).to_bytes(_MANIFEST_LEN, "big") + manifest)
    reader = EntryReader(ctx, resolved, cfg.window_bytes, cfg.chunk_bytes)
    try:
        for r in resolved:
            if r.status == 0:
                async for chunk in reader.take(r.size):
                    await out.put(chunk)
        await out.flush()
        await resp.write_eof()
    except ConnectionResetError:
        # the designated target stopped reading: its batch failed elsewhere, or its client left
        log.debug("batch: designated target %s went away", request.headers.get(apc.HDR_CALLER_ID, "?"))
    finally:
        await reader.close()
    return resp


class _Coalesced:
    """Joins small writes into ~`size` ones (a tar of 16 KiB members is many tiny pieces)."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]], size: int) -> None:
        self.write, self.size = write, size
        self.parts: list[bytes] = []
        self.pending = 0

    async def put(self, data: bytes) -> None:
        if not data:
            return
        self.parts.append(data)
        self.pending += len(data)
        if self.pending >= self.size:
            await self.flush()

    async def flush(self) -> None:
        if self.parts:
            data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self.parts, self.pending = [], 0
            await self.write(data)


# --- the designated target ------------------------------------------------------------------

def admit(ctx: TargetContext, job: GetBatchJob) -> None:
    cfg = ctx.cfg.get_batch
    mem = ctx.load.snapshot.grades.get("memory", Grade.LOW)
    limit = cfg.max_pending_high_mem if mem >= Grade.HIGH else cfg.max_pending
    if job.active >= limit or ctx.load.critical():
        retry = ctx.load.retry_after_s()
        why = "overloaded" if ctx.load.critical() else f"{job.active} batches pending"
        raise TooManyRequests(f"batch-get: target {ctx.me.display} is {why}; retry in {retry}s",
                              headers={"Retry-After": str(retry)})


async def get_batch(request: web.Request) -> web.StreamResponse:
    """`GET /v1/ml/moss[/<bucket>]` with a JSON MossReq body (redirected here by a proxy)."""
    # 1. request
    ctx = request.app[CTX]
    req = await read_request(request)
    # 2. admission
    job = _job(request.app[JOBS], ctx)
    admit(ctx, job)
    job.active += 1
    try:
        # 3. buckets (a remote one unknown here is added through the primary)
        for bck in req.buckets:
            if ctx.bmd.get(bck) is None:
                await ctx.require_bucket(bck, redirected=True)
        return await _assemble(request, ctx, req, job)
    finally:
        job.active -= 1


async def _assemble(request: web.Request, ctx: TargetContext, req: BatchRequest, job: GetBatchJob) -> web.StreamResponse:
    # 4. one source per owner, each answers its manifest first
    smap = ctx.smap
    owners: list[str] = []
    groups: dict[str, list[BatchEntry]] = {}
    for e in req.entries:
        owner = smap.owner(e.uname)
        if owner is None:
            raise ServiceUnavailable("the cluster has no active targets")
        owners.append(owner.id)
        groups.setdefault(owner.id, []).append(e)
    sources: dict[str, LocalSource | PeerSource] = {
        nid: LocalSource(ctx, ents) if nid == ctx.me.id else PeerSource(ctx, smap.targets[nid], ents)
        for nid, ents in groups.items()}
    try:
        await _open_all(sources)
        infos = _in_request_order(req, owners, sources)
        if not req.coer:
            for r in infos:
                if r.status:
                    raise PeerError(r.status, r.error)
        # 5. members in request order, as their bytes arrive
        writer = ArchiveWriter(req.mime)
        if req.strm:
            return await _stream(request, ctx, req, writer, owners, sources, infos, job)
        return await _multipart(request, ctx, req, writer, owners, sources, infos, job)
    finally:
        await asyncio.gather(*(s.close() for s in sources.values()), return_exceptions=True)


async def _open_all(sources: Mapping[str, LocalSource | PeerSource]) -> None:
    tasks = [asyncio.ensure_future(s.open()) for s in sources.values()]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _in_request_order(req: BatchRequest, owners: list[str],
                      sources: Mapping[str, LocalSource | PeerSource]) -> list[Resolved]:
    nth: dict[str, int] = dict.fromkeys(sources, 0)
    out = []
    for nid in owners:
        out.append(sources[nid].manifest[nth[nid]])
        nth[nid] += 1
    return out


async def _write_members(req: BatchRequest, writer: ArchiveWriter, owners: list[str],
                         sources: Mapping[str, LocalSource | PeerSource], infos: list[Resolved],
                         out: _Coalesced, job: GetBatchJob) -> None:
    compress = req.mime != ".tar" and req.mime != ".zip"
    loop = asyncio.get_running_loop()
    for e, nid, r in zip(req.entries, owners, infos):
        if r.status:
            await out.put(writer.begin(e.missing_name(req.onob), 0) + writer.end())
            continue
        await out.put(writer.begin(e.member_name(req.onob), r.size, r.mtime_s))
        async for chunk in sources[nid].take(r.size):
            if compress and len(chunk) >= 64 << 10:
                await out.put(await loop.run_in_executor(None, writer.data, chunk))   # zlib/zstd release the GIL
            else:
                await out.put(writer.data(chunk))
        await out.put(writer.end())
        job.objects += 1
        job.bytes += r.size
    await out.put(writer.finish())
    await out.flush()


async def _stream(request: web.Request, ctx: TargetContext, req: BatchRequest, writer: ArchiveWriter,
                  owners: list[str], sources: Mapping[str, LocalSource | PeerSource], infos: list[Resolved],
                  job: GetBatchJob) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": writer.content_type, apc.HDR_XACTION_ID: job.id})
    await resp.prepare(request)
    request[STREAMING] = True
    await _write_members(req, writer, owners, sources, infos, _Coalesced(resp.write, ctx.cfg.get_batch.chunk_bytes),
                         job)
    await resp.write_eof()
    return resp


def _open_spool(path: str) -> Any:
    return open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by the caller


def _write_all(f: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[f.write(view):]


async def _multipart(request: web.Request, ctx: TargetContext, req: BatchRequest, writer: ArchiveWriter,
                     owners: list[str], sources: Mapping[str, LocalSource | PeerSource], infos: list[Resolved],
                     job: GetBatchJob) -> web.StreamResponse:
    """`strm: false`: the archive is spooled to a work file (memory stays bounded), then sent as
    multipart/mixed: part 1 the MossResp JSON (sizes and errors of every entry), part 2 the archive."""
    mp = ctx.mountpaths.paths[0]
    work = ctx.mountpaths.work_path(mp, "moss.")
    f = await ctx.mountpaths.run(mp, _open_spool, work)
    try:
        async def spool(data: bytes) -> None:
            await ctx.mountpaths.run(mp, _write_all, f, data)
        await _write_members(req, writer, owners, sources, infos, _Coalesced(spool, 1 << 20), job)
        size = await ctx.mountpaths.run(mp, f.tell)
        meta = json.dumps({"uuid": job.id, "out": [_out_entry(e, r) for e, r in zip(req.entries, infos)]}).encode()
        boundary = secrets.token_hex(16)
        head1 = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
                 f"Content-Type: application/json\r\n\r\n").encode()
        head2 = (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"archive\"; "
                 f"filename=\"batch{writer.mime}\"\r\nContent-Type: {writer.content_type}\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": f"multipart/mixed; boundary={boundary}", apc.HDR_XACTION_ID: job.id})
        resp.content_length = len(head1) + len(meta) + len(head2) + size + len(tail)
        await resp.prepare(request)
        request[STREAMING] = True
        await resp.write(head1 + meta + head2)
        pos, chunk = 0, ctx.cfg.get_batch.chunk_bytes
        while pos < size:
            data = await ctx.mountpaths.run(mp, os.pread, f.fileno(), min(chunk, size - pos), pos)
            await resp.write(data)
            pos += len(data)
        await resp.write(tail)
        await resp.write_eof()
        return resp
    finally:
        f.close()
        await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))


def _out_entry(e: BatchEntry, r: Resolved) -> dict[str, Any]:
    d: dict[str, Any] = {"objname": e.obj, "bucket": e.bck.name, "provider": e.bck.provider, "size": r.size}
    if e.archpath:
        d["archpath"] = e.archpath
    if e.opaque:
        d["opaque"] = e.opaque
    if r.status:
        d["err_msg"] = r.error
    return d
