"""Erasure coding on a target (issue 10; AIStore's `ec` bucket props, reference §1.4).

Write (`protect_object`, called by `objects.commit_object` before the write is acknowledged, and
by the `ec-encode` job): the target that stored the object reads it back, and either cuts it into
d data + p parity slices (`ec_codec`, zfec) or, below `ec.objsize_limit`, takes p full replicas;
it sends each slice or replica, with the EC metadata, to its own target over the intra listener
(`PUT /v1/ec/<bucket>/<object>`): the other active targets in HRW order for the object's name, the
next one standing in for a target that fails. Then it records the holders in its own metadata
(role "main"). Every encoding has a new generation; a holder keeps the newest it has seen, and the
holders of an older generation that are not chosen again drop theirs.

Read of a missing object (`restore_object`, from `objects._get_missing` after get-from-neighbor):
the owner asks every other target for its EC metadata, takes the newest generation, fetches any d
slices (data slices first) or one replica, decodes and checks the object's checksum, stores the
object with its metadata, and serves it. One restore per object at a time (single flight); in the
background it then encodes the object again from here when the cluster has enough targets, which
re-creates the slices the lost target had.

Delete (`forget_object`, from `objects.delete_local`): every target drops its slice and metadata.

Memory: slicing and rebuilding happen in memory, one object per request, each at most
`MAX_SLICED_BYTES` (64 MiB); a bigger object of an EC bucket is replicated instead (streamed from
disk, never held in memory). Encoding or rebuilding one costs about twice its size, and all of
them together on a target stay within `MEMORY_BUDGET_BYTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import replace
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote

import aiohttp
import xxhash
from aiohttp import web

from ais import apc, hrw, names
from ais.cmap import Node, bucket_id
from ais.ec import EcConf
from ais.errors import AisError, BadMessage, BadRequest, NotFound
from ais.names import Bucket
from target import ec_codec, ec_store
from target.context import CTX, TargetContext
from target.ec_store import ROLE_MAIN, ROLE_REPLICA, ROLE_SLICE, EcMeta, EcPaths
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.fs.mountpaths import Mountpaths
from target.fs.sendfile import send_file

log = logging.getLogger(__name__)

PATH = "/v1/ec"
HDR_META = "Ais-Ec-Meta"   # intra: JSON EC metadata of the slice in the body
HDR_EC_GENERATION = "Ais-Ec-Generation"
HDR_EC_DATA = "Ais-Ec-Data"
HDR_EC_PARITY = "Ais-Ec-Parity"
HDR_EC_REPLICATED = "Ais-Ec-Replicated"

MAX_SLICED_BYTES = 64 << 20     # larger objects are replicated: slicing and rebuilding are in memory
MEMORY_BUDGET_BYTES = 256 << 20  # bytes of objects being sliced, replicated or rebuilt at once per target
_STRIPES = 256
_CHUNK = 1 << 20


class EcRuntime:
    """A target's erasure-coding state: per-object serialization of encodings (held across the
    sends) and of slice writes (local only, so two targets encoding at once never wait on each
    other), the memory gate, and the restores in flight."""

    def __init__(self) -> None:
        self.encode_locks = [asyncio.Lock() for _ in range(_STRIPES)]
        self.slice_locks = [asyncio.Lock() for _ in range(_STRIPES)]
        self.memory = ByteBudget(MEMORY_BUDGET_BYTES)
        self.restoring: dict[str, asyncio.Task[bool]] = {}


class ByteBudget:
    """Admits work by the memory it holds: many small objects at once, few big ones, and always
    one (an object bigger than the whole budget waits until it runs alone)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.used = capacity, 0
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, n_bytes: int) -> AsyncIterator[None]:
        n = min(max(n_bytes, 1), self.capacity)
        async with self._cond:
            await self._cond.wait_for(lambda: self.used + n <= self.capacity)
            self.used += n
        try:
            yield
        finally:
            async with self._cond:
                self.used -= n
                self._cond.notify_all()


def runtime(ctx: TargetContext) -> EcRuntime:
    if ctx.ec is None:
        ctx.ec = EcRuntime()
    return ctx.ec


def enabled(bck: Bucket, props: Mapping[str, Any]) -> bool:
    return bck.is_ais and EcConf.from_props(props).enabled


def ec_paths(ctx: TargetContext, bck: Bucket, obj: str) -> EcPaths:
    mp, _ = ctx.mountpaths.object_path(bck, obj)   # validates the name
    base = f"{mp}/{Mountpaths.bucket_rel(bck)}"
    ec_root, mt_root = f"{base}/{ec_store.EC_DIR}", f"{base}/{ec_store.META_DIR}"
    return EcPaths(mp, f"{ec_root}/{obj}", f"{mt_root}/{obj}", ec_root, mt_root)


def holder_order(ctx: TargetContext, bck: Bucket, obj: str) -> list[Node]:
    """The other active targets, in HRW order for the object's name."""
    d = hrw.digest(bck.object_uname(obj))
    others = [t for t in ctx.smap.active_targets() if t.id != ctx.me.id]
    return sorted(others, key=lambda t: hrw.mix64(t.id_digest ^ d), reverse=True)


def _url(node: Node, bck: Bucket, obj: str) -> tuple[str, dict[str, str]]:
    params = {apc.Q_PROVIDER: bck.provider}
    if not bck.namespace.is_global:
        params[apc.Q_NAMESPACE] = bck.namespace.uname
    return f"{node.intra_url}{PATH}/{bck.name}/{quote(obj)}", params


# --- write: slices or replicas on other targets -----------------------------------------------

async def protect_object(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any],
                         stale: Iterable[str] = ()) -> bool:
    """Encode the object stored here and send its slices or replicas to other targets; record
    them. False when it could not be fully protected (too few targets; logged). `stale`: targets
    that may hold an older generation (besides those the previous metadata names)."""
    conf = EcConf.from_props(props)
    rt = runtime(ctx)
    paths = ec_paths(ctx, bck, obj)
    _, path = ctx.mountpaths.object_path(bck, obj)
    cname = bck.object_cname(obj)
    async with rt.encode_locks[hash(bck.object_uname(obj)) % _STRIPES]:
        prev = await ctx.mountpaths.run(paths.mp, ec_store.read_meta, paths.meta)
        opened = await ctx.mountpaths.run(paths.mp, fsmeta.open_object, path)
        if opened is None:
            return False   # deleted meanwhile
        f, meta = opened
        try:
            replicated = conf.replicated(meta.size) or meta.size > MAX_SLICED_BYTES
            wanted = conf.parity_slices if replicated else conf.data_slices + conf.parity_slices
            generation = max(time.time_ns(), prev.generation + 1 if prev else 0)
            candidates = holder_order(ctx, bck, obj)
            if len(candidates) < wanted:
                # unprotected (as in AIStore, the write stands); slices of an older version must
                # not outlive it, or a restore would bring that version back
                log.warning("%s is not erasure-coded: %d %s need %d other targets, the cluster has %d", cname,
                            wanted, "replicas" if replicated else "slices", wanted, len(candidates))
                await ctx.mountpaths.run(paths.mp, ec_store.remove, paths, 0)
                await _drop_older(ctx, bck, obj, ((set(prev.nodes) if prev else set()) | set(stale)) - {ctx.me.id},
                                  generation)
                return False
            base = EcMeta(size=meta.size, data=conf.data_slices, parity=conf.parity_slices,
                          generation=generation, role=ROLE_MAIN,
                          replicated=replicated, cksum_type=meta.cksum_type, cksum_value=meta.cksum_value,
                          version=meta.version, custom=dict(meta.custom))
            if replicated:
                nodes = await _send_replicas(ctx, bck, obj, paths.mp, f, base, candidates, wanted)
            else:
                nodes = await _send_slices(ctx, bck, obj, paths.mp, f, base, candidates)
        finally:
            f.close()
        # this target's own older slice (it may have held one before it became the main) goes
        await ctx.mountpaths.run(paths.mp, fsmeta.remove_object, paths.slice, paths.slice_root)
        work = ctx.mountpaths.work_path(paths.mp, "ecmt.")
        await ctx.mountpaths.run(paths.mp, ec_store.write_meta, paths, work, replace(base, nodes=nodes),
                                 ctx.cfg.target.fsync)
        old = (set(prev.nodes) if prev else set()) | set(stale)
        await _drop_older(ctx, bck, obj, old - set(nodes) - {ctx.me.id}, base.generation)
    if len(nodes) < wanted:
        log.warning("%s is only partly protected: %d of %d %s stored", cname, len(nodes), wanted,
                    "replicas" if replicated else "slices")
        return False
    return True


async def _distribute(ctx: TargetContext, cname: str, candidates: list[Node], indices: list[int],
                      send: Callable[[Node, int], Awaitable[None]]) -> dict[str, int]:
    """Send slice `indices[i]` to `candidates[i]` in parallel; a failed one goes to the next
    unused candidate. The holders that stored one: node ID -> slice number."""
    spare = list(candidates[len(indices):])
    todo = list(zip(candidates, indices))
    nodes: dict[str, int] = {}
    while todo:
        results = await asyncio.gather(*(send(n, i) for n, i in todo), return_exceptions=True)
        retry = []
        for (node, index), result in zip(todo, results):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                log.warning("EC: sending %s slice %d to %s: %s", cname, index, node.display, result)
                if spare:
                    retry.append((spare.pop(0), index))
            else:
                nodes[node.id] = index
        todo = retry
    return nodes


async def _send_slices(ctx: TargetContext, bck: Bucket, obj: str, mp: str, f: Any, base: EcMeta,
                       candidates: list[Node]) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    async with runtime(ctx).memory.hold(2 * base.size):   # the object and its slices
        data = await ctx.mountpaths.run(mp, _pread_all, f.fileno(), base.size)
        slices = await loop.run_in_executor(None, ec_codec.encode, data, base.data, base.parity)
        del data
        sums = await loop.run_in_executor(None, _digests, slices)

        async def send(node: Node, index: int) -> None:
            meta = base.as_role(ROLE_SLICE, index, sums[index - 1])
            await _put(ctx, node, bck, obj, meta, slices[index - 1], len(slices[index - 1]))
        return await _distribute(ctx, bck.object_cname(obj), candidates,
                                 list(range(1, base.data + base.parity + 1)), send)


async def _send_replicas(ctx: TargetContext, bck: Bucket, obj: str, mp: str, f: Any, base: EcMeta,
                         candidates: list[Node], copies: int) -> dict[str, int]:
    fd = f.fileno()
    if base.size <= MAX_SLICED_BYTES:   # small (the usual case): read once, send the same bytes
        async with runtime(ctx).memory.hold(base.size):
            data = await ctx.mountpaths.run(mp, _pread_all, fd, base.size)
            meta = base.as_role(ROLE_REPLICA, 0, xxhash.xxh64(data).hexdigest())

            async def send_bytes(node: Node, _: int) -> None:
                await _put(ctx, node, bck, obj, meta, data, len(data))
            return await _distribute(ctx, bck.object_cname(obj), candidates, [0] * copies, send_bytes)
    # big: each copy streamed from the open file (pread: the sends share no file position)
    digest = base.cksum_value if base.cksum_type in ("xxhash", "xxhash64") else ""
    meta = base.as_role(ROLE_REPLICA, 0, digest)

    async def send_stream(node: Node, _: int) -> None:
        await _put(ctx, node, bck, obj, meta, _pread_chunks(ctx, mp, fd, base.size), base.size)
    return await _distribute(ctx, bck.object_cname(obj), candidates, [0] * copies, send_stream)


def _pread_all(fd: int, size: int) -> bytes:
    parts = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, 8 << 20), offset)
        if not chunk:
            raise AisError("the object shrank while being encoded")
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


async def _pread_chunks(ctx: TargetContext, mp: str, fd: int, size: int) -> AsyncIterator[bytes]:
    offset = 0
    while offset < size:
        chunk = await ctx.mountpaths.run(mp, os.pread, fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            raise ConnectionResetError("the object shrank while being replicated")
        offset += len(chunk)
        yield chunk


def _digests(slices: list[bytes]) -> list[str]:
    return [xxhash.xxh64(s).hexdigest() for s in slices]


async def _put(ctx: TargetContext, node: Node, bck: Bucket, obj: str, meta: EcMeta, body: Any, length: int) -> None:
    url, params = _url(node, bck, obj)
    headers = ctx.http.headers({HDR_META: meta.to_json(), "Content-Length": str(length)})
    await ctx.http.put_data(url, body, params=params, headers=headers)


async def _drop_older(ctx: TargetContext, bck: Bucket, obj: str, node_ids: Iterable[str], generation: int) -> None:
    """Ask targets that held an older generation of the object to drop it (best effort)."""
    nodes = [n for n in (ctx.smap.targets.get(i) for i in node_ids) if n is not None]

    async def drop(node: Node) -> None:
        url, params = _url(node, bck, obj)
        try:
            await ctx.http.call("DELETE", url, params={**params, "below": str(generation)})
        except AisError as exc:
            log.warning("EC: %s could not drop an old slice of %s: %s", node.display, bck.object_cname(obj), exc)
    await asyncio.gather(*(drop(n) for n in nodes))


async def needs_encoding(ctx: TargetContext, bck: Bucket, obj: str, conf: EcConf, size: int) -> bool:
    """Whether the `ec-encode` job has to (re-)encode this object: no metadata here, or another scheme."""
    paths = ec_paths(ctx, bck, obj)
    meta = await ctx.mountpaths.run(paths.mp, ec_store.read_meta, paths.meta)
    if meta is None or meta.role != ROLE_MAIN:
        return True
    replicated = conf.replicated(size) or size > MAX_SLICED_BYTES
    return (meta.data, meta.parity, meta.replicated, meta.size) != (conf.data_slices, conf.parity_slices,
                                                                     replicated, size)


# --- delete ----------------------------------------------------------------------------------

async def forget_object(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> bool:
    """The object was deleted here: every target drops its slice, replica and metadata of it.
    True if any had some."""
    if not enabled(bck, props):
        return False
    paths = ec_paths(ctx, bck, obj)
    async with runtime(ctx).slice_locks[hash(bck.object_uname(obj)) % _STRIPES]:
        found = await ctx.mountpaths.run(paths.mp, ec_store.remove, paths, 0)

    async def drop(node: Node) -> bool:
        url, params = _url(node, bck, obj)
        try:
            answer = await ctx.http.call_json("DELETE", url, params=params)
        except AisError as exc:
            log.warning("EC: %s could not drop its slice of deleted %s: %s", node.display, bck.object_cname(obj), exc)
            return False
        return bool(answer and answer.get("removed"))
    others = [t for t in ctx.smap.targets.values() if t.id != ctx.me.id]
    return any(await asyncio.gather(*(drop(n) for n in others))) or found


# --- HEAD ------------------------------------------------------------------------------------

async def head_headers(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> dict[str, str]:
    """`Ais-Ec-*` headers of an object of an EC bucket (empty when it has no EC metadata here)."""
    if not enabled(bck, props):
        return {}
    paths = ec_paths(ctx, bck, obj)
    meta = await ctx.mountpaths.run(paths.mp, ec_store.read_meta, paths.meta)
    if meta is None:
        return {}
    return {HDR_EC_GENERATION: str(meta.generation), HDR_EC_DATA: str(meta.data), HDR_EC_PARITY: str(meta.parity),
            HDR_EC_REPLICATED: "true" if meta.replicated else "false"}


# --- read of a lost object: rebuild ----------------------------------------------------------

async def restore_object(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> bool:
    """Rebuild the missing object here from its slices or replicas on other targets. False when
    there is nothing to rebuild it from (the caller answers 404). Concurrent readers share one
    rebuild, which a reader going away does not cancel."""
    if not enabled(bck, props):
        return False
    rt = runtime(ctx)
    uname = bck.object_uname(obj)
    task = rt.restoring.get(uname)
    if task is None:
        task = ctx.background.spawn(_restore(ctx, bck, obj, props), name=f"ec-restore {uname}")
        rt.restoring[uname] = task
        task.add_done_callback(lambda _: rt.restoring.pop(uname, None))
    return await asyncio.shield(task)


async def _restore(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> bool:
    cname = bck.object_cname(obj)
    found = await _gather_meta(ctx, bck, obj)
    holders = {nid: m for nid, m in found.items() if m.role != ROLE_MAIN}
    if not holders:
        return False
    generation = max(m.generation for m in holders.values())
    current = {nid: m for nid, m in holders.items() if m.generation == generation}
    sample = next(iter(current.values()))
    mp, path = ctx.mountpaths.object_path(bck, obj)
    work = ctx.mountpaths.work_path(mp, "ecr.")
    try:
        if sample.replicated:
            ok = await _fetch_replica(ctx, bck, obj, mp, work, current)
        else:
            ok = await _rebuild(ctx, bck, obj, mp, work, current, sample)
        if not ok:
            await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
            return False
        meta = ObjectMeta(size=sample.size, cksum_type=sample.cksum_type, cksum_value=sample.cksum_value,
                          version=sample.version, custom=dict(sample.custom), bid=bucket_id(props))
        async with ctx.object_lock(bck.object_uname(obj)):
            restored = await ctx.mountpaths.run(mp, _commit_restored, work, path, meta, ctx.cfg.target.fsync)
    except BaseException:
        await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
        raise
    paths = ec_paths(ctx, bck, obj)
    if restored and ctx.me.id not in current:   # record the holders (a slice of our own keeps its metadata)
        main = replace(sample.as_role(ROLE_MAIN), nodes={nid: m.index for nid, m in current.items()})
        async with runtime(ctx).slice_locks[hash(bck.object_uname(obj)) % _STRIPES]:
            await ctx.mountpaths.run(paths.mp, ec_store.write_meta, paths, ctx.mountpaths.work_path(mp, "ecmt."),
                                     main, ctx.cfg.target.fsync)
    log.info("EC: restored %s (%d bytes, generation %d) from %s", cname, sample.size, generation,
             "a replica" if sample.replicated else f"{sample.data} of {sample.data + sample.parity} slices")
    if restored:
        ctx.spawn(_protect_again(ctx, bck, obj, set(found)), name=f"ec-reprotect {bck.object_uname(obj)}")
    return True


def _commit_restored(work: str, final: str, meta: ObjectMeta, fsync: bool) -> bool:
    """Blocking: publish the rebuilt object unless a copy appeared meanwhile (a client's PUT wins)."""
    if os.path.exists(final):
        fsmeta.unlink_quiet(work)
        return False
    fsmeta.commit(work, final, meta, fsync, versioning=False)
    return True


async def _protect_again(ctx: TargetContext, bck: Bucket, obj: str, stale: set[str]) -> None:
    """After a rebuild: slices again from here, replacing the lost ones, when the cluster has
    enough targets (with fewer, the surviving slices stay as they are)."""
    props = ctx.bmd.get(bck)
    if props is None or not enabled(bck, props):
        return
    conf = EcConf.from_props(props)
    if len(holder_order(ctx, bck, obj)) + 1 < conf.targets_needed:
        log.info("EC: %s keeps its surviving slices: %d targets are too few to encode it again",
                 bck.object_cname(obj), len(ctx.smap.active_targets()))
        return
    await protect_object(ctx, bck, obj, props, stale)


async def _gather_meta(ctx: TargetContext, bck: Bucket, obj: str) -> dict[str, EcMeta]:
    """EC metadata of the object on every target that has some (this one included)."""
    paths = ec_paths(ctx, bck, obj)
    found: dict[str, EcMeta] = {}
    mine = await ctx.mountpaths.run(paths.mp, ec_store.read_meta, paths.meta)
    if mine is not None:
        found[ctx.me.id] = mine

    async def ask(node: Node) -> None:
        url, params = _url(node, bck, obj)
        try:
            status, body, _ = await ctx.http.call("GET", url, params={**params, "what": "meta"})
        except AisError as exc:
            if getattr(exc, "status", 0) != 404:
                log.warning("EC: asking %s for %s: %s", node.display, bck.object_cname(obj), exc)
            return
        try:
            found[node.id] = EcMeta.from_json(body)
        except BadMessage as exc:
            log.warning("EC: %s answered bad metadata for %s: %s", node.display, bck.object_cname(obj), exc)
    await asyncio.gather(*(ask(t) for t in ctx.smap.targets.values() if t.id != ctx.me.id))
    return found


async def _fetch_slice(ctx: TargetContext, bck: Bucket, obj: str, node_id: str, want: EcMeta) -> bytes:
    """One slice (or replica) of generation `want.generation`, checked against its checksum."""
    if node_id == ctx.me.id:
        paths = ec_paths(ctx, bck, obj)
        got = await ctx.mountpaths.run(paths.mp, ec_store.read_slice, paths)
        if got is None:
            raise AisError("the local slice is gone")
        body, meta = got
    else:
        async with _from_holder(ctx, bck, obj, node_id) as (resp, meta):
            body = await resp.read()
    if (meta.generation, meta.index) != (want.generation, want.index):
        raise AisError(f"slice changed meanwhile (generation {meta.generation}, slice {meta.index})")
    if meta.slice_cksum and xxhash.xxh64(body).hexdigest() != meta.slice_cksum:
        raise AisError(f"slice {meta.index} fails its checksum")
    return body


async def _rebuild(ctx: TargetContext, bck: Bucket, obj: str, mp: str, work: str, holders: Mapping[str, EcMeta],
                   sample: EcMeta) -> bool:
    """Fetch any d slices in parallel (data slices and local ones first), decode, check, write `work`."""
    cname = bck.object_cname(obj)
    order = sorted(holders.items(), key=lambda kv: (kv[0] != ctx.me.id, kv[1].index))
    loop = asyncio.get_running_loop()
    async with runtime(ctx).memory.hold(2 * sample.size):   # the slices and the object
        slices: dict[int, bytes] = {}
        while len(slices) < sample.data and order:
            batch, order = order[:sample.data - len(slices)], order[sample.data - len(slices):]
            results = await asyncio.gather(*(_fetch_slice(ctx, bck, obj, nid, m) for nid, m in batch),
                                           return_exceptions=True)
            for (nid, m), result in zip(batch, results):
                if isinstance(result, bytes):
                    slices[m.index] = result
                elif isinstance(result, asyncio.CancelledError):
                    raise result
                else:
                    log.warning("EC: slice %d of %s from %s: %s", m.index, cname, nid, result)
        if len(slices) < sample.data:
            log.error("EC: cannot rebuild %s: %d of the %d slices it needs are readable", cname, len(slices),
                      sample.data)
            return False
        data = await loop.run_in_executor(None, ec_codec.decode, slices, sample.data, sample.parity, sample.size)
        del slices
        if not await loop.run_in_executor(None, _checksum_ok, data, sample):
            log.error("EC: rebuilt %s fails its checksum %s", cname, sample.cksum_value)
            return False
        await ctx.mountpaths.run(mp, ec_store.write_work, work, data, ctx.cfg.target.fsync)
        return True


def _checksum_ok(data: bytes, meta: EcMeta) -> bool:
    if meta.cksum_type not in ("xxhash", "xxhash64") or not meta.cksum_value:
        return True   # nothing to check against (the slices were checked one by one)
    return xxhash.xxh64(data).hexdigest() == meta.cksum_value


async def _fetch_replica(ctx: TargetContext, bck: Bucket, obj: str, mp: str, work: str,
                         holders: Mapping[str, EcMeta]) -> bool:
    """Stream one replica into `work` (a local one first), checked against its checksum."""
    for nid, meta in sorted(holders.items(), key=lambda kv: kv[0] != ctx.me.id):
        try:
            if nid == ctx.me.id:
                paths = ec_paths(ctx, bck, obj)
                digest = await ctx.mountpaths.run(mp, _copy_local, paths.slice, work, ctx.cfg.target.fsync)
            else:
                digest = await _download(ctx, bck, obj, nid, mp, work, meta)
            expected = meta.slice_cksum or (meta.cksum_value if meta.cksum_type in ("xxhash", "xxhash64") else "")
            if expected and digest != expected:
                raise AisError("the replica fails its checksum")
            return True
        except AisError as exc:
            log.warning("EC: replica of %s at %s: %s", bck.object_cname(obj), nid, exc)
            await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
    return False


def _copy_local(src: str, work: str, fsync: bool) -> str:
    h = xxhash.xxh64()
    try:
        with open(src, "rb") as fin, open(work, "wb") as out:
            while chunk := fin.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
    except FileNotFoundError as exc:
        raise AisError("the local replica is gone") from exc
    return h.hexdigest()


@contextlib.asynccontextmanager
async def _from_holder(ctx: TargetContext, bck: Bucket, obj: str,
                       node_id: str) -> AsyncIterator[tuple[aiohttp.ClientResponse, EcMeta]]:
    """A holder's answer for its slice or replica of the object, with the EC metadata it sent;
    a failure on the way (the request, or the caller's work on the body) is an AisError naming it."""
    node = ctx.smap.targets.get(node_id)
    if node is None:
        raise AisError(f"target {node_id} left the cluster")
    url, params = _url(node, bck, obj)
    try:
        async with ctx.http.session.get(url, params=params, headers=ctx.http.headers(),
                                        timeout=ctx.http.data_timeout()) as resp:
            if resp.status >= 400:
                raise AisError(f"{node.display}: {resp.status} {(await resp.text())[:200]}")
            yield resp, EcMeta.from_json(resp.headers.get(HDR_META, ""))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise AisError(f"{node.display}: {type(exc).__name__}: {exc}") from exc


async def _download(ctx: TargetContext, bck: Bucket, obj: str, node_id: str, mp: str, work: str, want: EcMeta) -> str:
    h = xxhash.xxh64()
    f = await ctx.mountpaths.run(mp, open, work, "wb")
    try:
        async with _from_holder(ctx, bck, obj, node_id) as (resp, meta):
            if meta.generation != want.generation:
                raise AisError(f"replica changed meanwhile (generation {meta.generation})")
            async for chunk in resp.content.iter_chunked(_CHUNK):
                h.update(chunk)
                await ctx.mountpaths.run(mp, f.write, chunk)
            await ctx.mountpaths.run(mp, fsmeta.finish_work, f, ctx.cfg.target.fsync)
    except BaseException:
        f.close()
        raise
    return h.hexdigest()


# --- intra routes: a holder's side -----------------------------------------------------------

def _resolve(request: web.Request) -> tuple[TargetContext, Bucket, str]:
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    return request.app[CTX], bck, names.check_object_name(request.match_info["obj"])


async def receive_slice(request: web.Request) -> web.StreamResponse:
    """Intra `PUT /v1/ec/<bucket>/<object>`: a slice or replica with its metadata (`Ais-Ec-Meta`)."""
    ctx, bck, obj = _resolve(request)
    await ctx.require_bucket(bck, redirected=True)
    meta = EcMeta.from_json(request.headers.get(HDR_META, ""))
    if meta.role == ROLE_MAIN:
        raise BadRequest("a holder receives slices and replicas, not main copies")
    expected = meta.size if meta.role == ROLE_REPLICA else ec_codec.slice_size(meta.size, meta.data)
    if request.content_length != expected:
        raise BadRequest(f"slice of {bck.object_cname(obj)}: expected {expected} bytes, "
                         f"Content-Length is {request.content_length}")
    paths = ec_paths(ctx, bck, obj)
    work = ctx.mountpaths.work_path(paths.mp, "ec.")
    charged = ctx.quota.charge(paths.mp, expected, ctx.cfg.space.capacity_bytes)
    h = xxhash.xxh64()
    size = 0
    try:
        f = await ctx.mountpaths.run(paths.mp, open, work, "wb")
        try:
            async for chunk in request.content.iter_chunked(_CHUNK):
                h.update(chunk)
                size += len(chunk)
                await ctx.mountpaths.run(paths.mp, f.write, chunk)
            await ctx.mountpaths.run(paths.mp, fsmeta.finish_work, f, ctx.cfg.target.fsync)
        except BaseException:
            f.close()
            raise
        if size != expected:
            raise BadRequest(f"slice of {bck.object_cname(obj)}: body ended after {size} of {expected} bytes")
        if meta.slice_cksum and h.hexdigest() != meta.slice_cksum:
            raise BadRequest(f"slice {meta.index} of {bck.object_cname(obj)}: checksum mismatch "
                             f"(expected {meta.slice_cksum}, received {h.hexdigest()})")
        async with runtime(ctx).slice_locks[hash(bck.object_uname(obj)) % _STRIPES]:
            stored = await ctx.mountpaths.run(paths.mp, ec_store.publish_slice, paths, work,
                                              ctx.mountpaths.work_path(paths.mp, "ecmt."), meta, ctx.cfg.target.fsync)
    except OSError as exc:
        ctx.quota.refund(paths.mp, charged)
        await asyncio.shield(ctx.mountpaths.run(paths.mp, fsmeta.unlink_quiet, work))
        raise fsmeta.translate_os_error(exc, bck.object_cname(obj)) from exc
    except BaseException:
        ctx.quota.refund(paths.mp, charged)
        await asyncio.shield(ctx.mountpaths.run(paths.mp, fsmeta.unlink_quiet, work))
        raise
    return web.json_response({"stored": stored})


async def serve_slice(request: web.Request) -> web.StreamResponse:
    """Intra `GET /v1/ec/<bucket>/<object>`: this target's slice or replica (metadata in
    `Ais-Ec-Meta`); with `what=meta`, the metadata alone (JSON). 404 when it has none."""
    ctx, bck, obj = _resolve(request)
    paths = ec_paths(ctx, bck, obj)
    if request.query.get("what") == "meta":
        meta = await ctx.mountpaths.run(paths.mp, ec_store.read_meta, paths.meta)
        if meta is None:
            raise NotFound(f"{bck.object_cname(obj)}: no EC slice or metadata here")
        return web.Response(text=meta.to_json(), content_type="application/json")
    opened = await ctx.mountpaths.run(paths.mp, _open_sized, paths)
    if opened is None:
        raise NotFound(f"{bck.object_cname(obj)}: no EC slice or metadata here")
    f, meta, size = opened
    try:
        resp = web.StreamResponse(status=200, headers={HDR_META: meta.to_json(),
                                                       "Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        await send_file(request, resp, f, 0, size, ctx.mountpaths.pool(paths.mp), ctx.cfg.timeouts.data_read_s)
        await resp.write_eof()
        return resp
    finally:
        f.close()


def _open_sized(paths: EcPaths) -> tuple[Any, EcMeta, int] | None:
    opened = ec_store.open_slice(paths)
    if opened is None:
        return None
    f, meta = opened
    return f, meta, os.fstat(f.fileno()).st_size


async def drop_slice(request: web.Request) -> web.StreamResponse:
    """Intra `DELETE /v1/ec/<bucket>/<object>[?below=<generation>]`: drop this target's slice and
    metadata (only an older generation with `below`)."""
    ctx, bck, obj = _resolve(request)
    below = request.query.get("below", "0")
    if not below.isdigit():
        raise BadRequest(f"invalid below={below!r}: expected a generation number")
    paths = ec_paths(ctx, bck, obj)
    async with runtime(ctx).slice_locks[hash(bck.object_uname(obj)) % _STRIPES]:
        removed = await ctx.mountpaths.run(paths.mp, ec_store.remove, paths, int(below))
    return web.json_response({"removed": removed})


def add_routes(app: web.Application) -> None:
    obj = PATH + "/{bucket}/{obj:.+}"
    app.router.add_put(obj, receive_slice)
    app.router.add_get(obj, serve_slice, allow_head=False)
    app.router.add_delete(obj, drop_slice)
