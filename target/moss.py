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
import collections
import errno
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

import aiohttp
import msgpack
from aiohttp import web

from ais import apc, hrw, names
from ais.cmap import Node, bucket_id
from ais.errors import AisError, BadMessage, ServiceUnavailable, TooManyRequests
from ais.intra import PeerError, peer_message
from ais.moss import MAX_BODY_BYTES, BatchEntry, BatchRequest, RangeError, read_request
from ais.moss import owners as owners_of
from ais.names import Bucket
from ais.web import STREAMING, read_body
from target import remote
from target.archive.write import ArchiveWriter, tar_length
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
    data: bytes | memoryview | None = None   # the entry's bytes when read along with the stat

    def wire(self) -> list[Any]:
        return [self.size, self.mtime_s, self.status, self.error]


def _failed(exc: AisError) -> Resolved:
    return Resolved(status=exc.status, error=exc.message)


def _stat_read_many(items: Sequence[tuple[str, bool]], budget: int) -> list[tuple[int, int, int, bytes | None] | None]:
    """Blocking, one pool hop for many entries: (size, mtime_ns, bucket id, content) of each
    (path, wants content) from one open each; None where no object is. The content of a small
    object is read while it is open, as long as `budget` bytes last (None otherwise: read later,
    ahead of the consumer, by `EntryReader`)."""
    out: list[tuple[int, int, int, bytes | None] | None] = []
    for path, want in items:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            out.append(None)
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                out.append(None)
                continue
            try:
                bid = int(msgpack.unpackb(os.getxattr(fd, fsmeta.XATTR)).get("bid", 0))
            except OSError as exc:
                if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
                    raise
                bid = 0   # a file without metadata: served with what stat knows (as fsmeta does)
            size = st.st_size
            data = None
            if want and size <= min(budget, _SMALL_ENTRY):
                data = fsmeta.read_fd(fd, size, 0)
                if len(data) != size:
                    raise ServiceUnavailable(f"{path}: short read")
                budget -= size
            out.append((size, st.st_mtime_ns, bid, data))
        finally:
            os.close(fd)
    return out


def _object_paths(ctx: TargetContext, entries: Sequence[BatchEntry]) -> list[tuple[str, str]]:
    """`ctx.mountpaths.object_path()` of every entry (the same name checks and answers), with the
    HRW choice of mountpath made for the whole batch at once."""
    mountpaths = ctx.mountpaths
    for e in entries:
        names.check_object_name(e.obj)
    chosen = hrw.choose_many([e.uname for e in entries], [(hrw.digest(mp), mp) for mp in mountpaths.paths])
    dirs: dict[tuple[str, int], str] = {}   # by id() of the Bucket, as in resolve()
    out = []
    for e, mp in zip(entries, chosen):
        d = dirs.get((mp, id(e.bck)))
        if d is None:
            d = dirs[(mp, id(e.bck))] = mountpaths.bucket_dir(mp, e.bck)
        out.append((mp, f"{d}/{e.obj}"))
    return out


async def resolve(ctx: TargetContext, entries: Sequence[BatchEntry]) -> list[Resolved]:
    """Stat every entry (one pool hop per 256 entries of a mountpath), reading small ones in the
    same pass while `get_batch.window_bytes` lasts; fetch remote ones that are not here yet
    (bounded), open archived files; failures become per-entry errors."""
    out: list[Resolved] = []
    by_mp: dict[str, list[int]] = {}
    for i, (mp, path) in enumerate(_object_paths(ctx, entries)):
        out.append(Resolved(mp=mp, path=path))
        by_mp.setdefault(mp, []).append(i)
    bids: dict[int, int] = {}   # by id() of the Bucket: a batch's entries share a few Bucket objects
    budget = ctx.cfg.get_batch.window_bytes // max(len(by_mp), 1)

    async def stat_group(mp: str, idxs: list[int]) -> None:
        left = budget
        for k in range(0, len(idxs), 256):
            part = idxs[k:k + 256]
            found = await ctx.mountpaths.run(mp, _stat_read_many, [(out[i].path, not entries[i].archpath)
                                                                    for i in part], left)
            for i, got in zip(part, found):
                e, r = entries[i], out[i]
                bid = bids.get(id(e.bck))
                if bid is None:
                    bid = bids[id(e.bck)] = _bucket_id(ctx, e.bck)
                if got is None:
                    _settle(e, r, None, 0, 0, bid)
                    continue
                size, mtime_ns, obj_bid, data = got
                if not (e.start or e.length or e.archpath) and (not obj_bid or not bid or obj_bid == bid):
                    # a whole object (what _settle would do, inline: this runs for every entry)
                    r.size = r.object_size = size
                    r.mtime_s = mtime_ns / 1e9
                    if data is not None:
                        left -= size
                        r.data = data
                    continue
                _settle(e, r, size, mtime_ns, obj_bid, bid)
                if data is not None:
                    left -= len(data)
                    if r.status == 0:
                        r.data = data if r.size == size else memoryview(data)[r.offset:r.offset + r.size]
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
                if meta is None:
                    _settle(e, out[i], None, 0, 0, 0)
                else:
                    _settle(e, out[i], meta.size, meta.mtime_ns, meta.bid, _bucket_id(ctx, e.bck))
        await asyncio.gather(*(fetch(i) for i in cold))

    # during a rebalance, objects not moved here yet: moved now from their previous owner
    from target import rebalance  # rebalance imports the object handlers, which import this module
    unmoved = [i for i, r in enumerate(out) if r.status == 404 and entries[i].bck.is_ais]
    if unmoved and rebalance.rebalance_pending(ctx):
        sem = asyncio.Semaphore(16)

        async def pull(i: int) -> None:
            e = entries[i]
            async with sem:
                if not await rebalance.pull_moving(ctx, e.bck, e.obj):
                    return
                meta = await ctx.mountpaths.run(out[i].mp, fsmeta.stat_object, out[i].path)
            if meta is not None:
                _settle(e, out[i], meta.size, meta.mtime_ns, meta.bid, _bucket_id(ctx, e.bck))
        await asyncio.gather(*(pull(i) for i in unmoved))

    # files inside shards
    archived = [i for i, e in enumerate(entries) if e.archpath and out[i].status == 0]
    if archived:
        sem = asyncio.Semaphore(16)

        async def size_archived(i: int) -> None:
            async with sem:
                await _open_archived(ctx, entries[i], out[i])
        await asyncio.gather(*(size_archived(i) for i in archived))
    return out


def _bucket_id(ctx: TargetContext, bck: Bucket) -> int:
    return bucket_id(ctx.bmd.get(bck) or {})


def _settle(e: BatchEntry, r: Resolved, size: int | None, mtime_ns: int, obj_bid: int, bck_bid: int) -> None:
    """Fill `r` from the object's stat (`size` None: no object there); an object of an older
    incarnation of the bucket (another bucket id) does not exist."""
    if size is None or (obj_bid and bck_bid and obj_bid != bck_bid):
        r.status, r.error = 404, f"{e.bck.object_cname(e.obj)} does not exist"
        return
    r.object_size, r.mtime_s, r.status, r.error = size, mtime_ns / 1e9, 0, ""
    if e.archpath:
        return   # sized once the archived file is opened
    try:
        r.offset, r.size = e.resolve_range(size)
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
    """Reads the bytes of resolved entries that the stat pass did not (`data` None) in order, at
    most `window` bytes ahead of the consumer. A small entry comes as one piece (`entry`), a
    large one in chunks (`take`)."""

    def __init__(self, ctx: TargetContext, items: Sequence[Resolved], window: int, chunk: int) -> None:
        self.ctx, self.window, self.chunk = ctx, window, chunk
        self.items = [r for r in items if r.status == 0 and r.size > 0 and r.data is None]
        self._ready: collections.deque[bytes] = collections.deque()
        self._error: BaseException | None = None
        self._buffered = 0
        self._room = asyncio.Event()
        self._more = asyncio.Event()
        self._task = asyncio.create_task(self._produce(), name="moss-read") if self.items else None

    async def _put(self, data: bytes) -> None:
        while self._buffered and self._buffered + len(data) > self.window:
            self._room.clear()
            await self._room.wait()
        self._buffered += len(data)
        self._ready.append(data)
        self._more.set()

    async def _produce(self) -> None:
        try:
            items = self.items
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
            self._error = exc
            self._more.set()

    async def _next(self) -> bytes:
        while not self._ready:
            if self._error is not None:
                raise self._error
            if self._task is None:
                raise RuntimeError("batch: read past the entries to read")
            self._more.clear()
            await self._more.wait()
        data = self._ready.popleft()
        self._buffered -= len(data)
        self._room.set()
        return data

    async def entry(self, size: int) -> bytes:
        """The next entry, a small one (read in one piece)."""
        data = await self._next()
        if len(data) != size:
            raise RuntimeError(f"batch: read {len(data)} bytes of an entry of {size}")
        return data

    async def take(self, size: int) -> AsyncIterator[bytes]:
        """The next entry's bytes (exactly `size`), as the producer read them."""
        left = size
        while left > 0:
            data = await self._next()
            left -= len(data)
            yield data

    async def close(self) -> None:
        if self._task is not None:
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

    async def entry(self, r: Resolved) -> bytes | memoryview:
        """A small entry's bytes, whole (`r` is this source's next entry to send)."""
        if r.data is not None:
            data, r.data = r.data, None
            return data
        assert self._reader is not None
        return await self._reader.entry(r.size)

    def chunks(self, r: Resolved) -> AsyncIterator[bytes | memoryview]:
        """A large entry's bytes, chunk by chunk."""
        assert self._reader is not None and r.data is None
        return self._reader.take(r.size)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()


class PeerSource:
    """One peer's entries, streamed over one intra-cluster request."""

    def __init__(self, ctx: TargetContext, peer: Node, entries: list[BatchEntry]) -> None:
        self.ctx, self.peer, self.entries = ctx, peer, entries
        self.manifest: list[Resolved] = []
        self._resp: aiohttp.ClientResponse | None = None
        self._view = memoryview(b"")   # the last piece read from the stream ...
        self._pos = 0                  # ... and how much of it was handed out

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

    async def _read(self) -> memoryview:
        assert self._resp is not None
        try:
            chunk = await self._resp.content.readany()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"batch: target {self.peer.display} failed mid-stream: "
                                     f"{type(exc).__name__}: {exc}") from exc
        if not chunk:
            raise ServiceUnavailable(f"batch: target {self.peer.display} ended its stream early")
        return memoryview(chunk)

    async def entry(self, r: Resolved) -> bytes | memoryview:
        """A small entry's bytes, whole: a view of what the stream delivered, copied only when
        the entry straddles two pieces of it."""
        view, pos, size = self._view, self._pos, r.size
        if len(view) - pos >= size:
            self._pos = pos + size
            return view[pos:pos + size]
        parts = [view[pos:]]
        need = size - (len(view) - pos)
        while True:
            view = await self._read()
            if len(view) >= need:
                break
            parts.append(view)
            need -= len(view)
        self._view, self._pos = view, need
        parts.append(view[:need])
        return b"".join(parts)

    async def chunks(self, r: Resolved) -> AsyncIterator[bytes | memoryview]:
        """A large entry's bytes, piece by piece as the stream delivers them."""
        left = r.size
        while left > 0:
            view, pos = self._view, self._pos
            if pos >= len(view):
                view, pos = await self._read(), 0
            n = min(left, len(view) - pos)
            self._view, self._pos = view, pos + n
            left -= n
            yield view[pos:pos + n]

    async def close(self) -> None:
        if self._resp is not None:
            self._resp.close()


def _entry_wire(e: BatchEntry) -> list[Any]:
    return [e.bck.provider, e.bck.namespace.uname, e.bck.name, e.obj, e.archpath, e.start, e.length]


_WIRE_TYPES = (str, str, str, str, str, int, int)


def _entry_from_wire(w: Any, buckets: dict[tuple[Any, ...], Bucket]) -> BatchEntry:
    if type(w) is not list or len(w) != len(_WIRE_TYPES) \
            or not all(type(v) is t or (isinstance(v, t) and not isinstance(v, bool)) for v, t in zip(w, _WIRE_TYPES)):
        raise BadMessage(f"malformed batch entry {w!r:.200}: expected [provider, namespace, bucket, object, "
                         "archpath, start, length]")
    prov, ns, bname, obj, archpath, start, length = w
    if start < 0 or length < -1:
        raise BadMessage(f"malformed batch entry {w!r:.200}: negative start or length")
    key = (prov, ns, bname)
    bck = buckets.get(key)
    if bck is None:
        bck = buckets[key] = names.make_bucket(bname, prov, ns)
    return BatchEntry(bck, names.check_object_name(obj), archpath, start, length)


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
    buckets: dict[tuple[Any, ...], Bucket] = {}   # a batch names few buckets: each checked once
    return [_entry_from_wire(w, buckets) for w in wires]


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
    out.add(len(manifest).to_bytes(_MANIFEST_LEN, "big") + manifest)
    reader = EntryReader(ctx, resolved, cfg.window_bytes, cfg.chunk_bytes)
    try:
        for r in resolved:
            if r.status or not r.size:
                continue
            if r.data is not None:
                data, r.data = r.data, None
                if out.add(data):
                    await out.flush()
                continue
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
        self.parts: list[bytes | memoryview] = []
        self.pending = 0
        self.written = 0

    def add(self, data: bytes | memoryview) -> bool:
        """Queue `data`; True when `flush()` is due."""
        if data:
            self.parts.append(data)
            self.pending += len(data)
        return self.pending >= self.size

    async def put(self, data: bytes | memoryview) -> None:
        if self.add(data):
            await self.flush()

    async def flush(self) -> None:
        if self.parts:
            data = bytes(self.parts[0]) if len(self.parts) == 1 else b"".join(self.parts)
            self.written += self.pending
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
    for e, owner in zip(req.entries, owners_of(smap, [e.uname for e in req.entries])):
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
    onob = req.onob
    for e, nid, r in zip(req.entries, owners, infos):
        if r.status:
            if out.add(writer.begin(e.missing_name(onob), 0) + writer.end()):
                await out.flush()
            continue
        out.add(writer.begin(e.member_name(onob), r.size, r.mtime_s))
        if r.size <= _SMALL_ENTRY:
            # one piece: no per-chunk awaits (the common case, thousands of entries a batch)
            data = await sources[nid].entry(r) if r.size else b""
            out.add(await loop.run_in_executor(None, writer.data, data) if compress and len(data) >= 64 << 10
                    else writer.data(data))
        else:
            async for chunk in sources[nid].chunks(r):
                if compress and len(chunk) >= 64 << 10:
                    await out.put(await loop.run_in_executor(None, writer.data, chunk))   # zlib/zstd release the GIL
                else:
                    await out.put(writer.data(chunk))
        if out.add(writer.end()):
            await out.flush()
        job.objects += 1
        job.bytes += r.size
    await out.put(writer.finish())
    await out.flush()


async def _stream(request: web.Request, ctx: TargetContext, req: BatchRequest, writer: ArchiveWriter,
                  owners: list[str], sources: Mapping[str, LocalSource | PeerSource], infos: list[Resolved],
                  job: GetBatchJob) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": writer.content_type, apc.HDR_XACTION_ID: job.id})
    length = None
    if writer.mime == ".tar":
        # every size is known: a Content-Length instead of chunked encoding (no framing, and
        # clients take the body in the pieces it arrives in)
        length = resp.content_length = tar_length(
            (e.missing_name(req.onob), 0, 0.0) if r.status else (e.member_name(req.onob), r.size, r.mtime_s)
            for e, r in zip(req.entries, infos))
    await resp.prepare(request)
    request[STREAMING] = True
    out = _Coalesced(resp.write, ctx.cfg.get_batch.chunk_bytes)
    await _write_members(req, writer, owners, sources, infos, out, job)
    if length is not None and out.written != length:
        log.error("batch %s: wrote %d bytes of a %d-byte archive", job.id, out.written, length)
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
