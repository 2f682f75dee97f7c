"""Shards (archives) on a target: reading one file of a shard (`archpath`), a TAR of the files
that match (`archregx` + `archmode`), appending a file to a shard (PUT with `archpath`), the
shard contents a listing with the arch-dir flag shows, and `open_member` for batch-get.

Reads open the shard once in its mountpath's pool, with its index (target/archive/index.py),
so a .tar member is a byte range sent with sendfile straight from the shard. A shard of a
remote bucket that is not here yet is fetched first (cold GET), then read. Appends run
under the object's lock and publish a new file atomically, like any PUT.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import time
from dataclasses import replace
from typing import Any, AsyncIterator, Iterator, Mapping

from aiohttp import web

from ais import apc
from ais.cmap import bucket_id
from ais.errors import AisError, BadRequest, NotFound, ObjectNotFound
from ais.names import Bucket
from ais.web import STREAMING
from target import mirror, remote
from target.archive import formats, index
from target.archive.append import Appended, append_tar, rewrite
from target.archive.match import MODES, matcher
from target.archive.read import ArchiveError, Index, Member, ShardReader
from target.archive.write import ArchiveWriter
from target.context import TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.fs.sendfile import send_fd
from target.fs.walk import walk_sorted
from target.objects import _check_bid, object_headers, parse_range, receive_body

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_NOT_AN_ARCHIVE = "is not an archive: neither its name nor its first bytes say .tar, .tgz, .tar.gz, .tar.zst or .zip"


# --- opening a shard ------------------------------------------------------------------------

def open_blocking(path: str, bucket_dir: str, obj: str, archmime: str, what: str) -> tuple[ObjectMeta, ShardReader] | None:
    """Blocking, one hop: open the shard, read its metadata, tell its format, load its index."""
    opened = fsmeta.open_object(path)
    if opened is None:
        return None
    f, meta = opened
    try:
        fmt = formats.detect(obj, os.pread(f.fileno(), formats.MAGIC_BYTES, 0), archmime)
        if not fmt:
            raise ArchiveError(f"{what} {_NOT_AN_ARCHIVE} (archmime chooses one)")
        return meta, ShardReader(f, index.get(f, fmt, meta.cksum_value, bucket_dir, obj, what), what)
    except BaseException:
        f.close()
        raise


class _Shard:
    """One shard open on this target: its metadata and a reader (closed in the pool)."""

    def __init__(self, ctx: TargetContext, mp: str, meta: ObjectMeta, reader: ShardReader) -> None:
        self.ctx, self.mp, self.meta, self.reader = ctx, mp, meta, reader
        self._closed = False

    @property
    def index(self) -> Index:
        return self.reader.index

    async def read(self, m: Member, offset: int, n: int) -> bytes:
        return await self.ctx.mountpaths.run(self.mp, self.reader.read, m, offset, n)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.shield(self.ctx.mountpaths.run(self.mp, self.reader.close))

    def __del__(self) -> None:
        if not self._closed:   # a caller that never closed: release the descriptor at least
            self.reader.close()


async def _open_shard(ctx: TargetContext, bck: Bucket, obj: str, archmime: str) -> _Shard:
    mp, path = ctx.mountpaths.object_path(bck, obj)
    bucket_dir = ctx.mountpaths.bucket_dir(mp, bck)
    what = bck.object_cname(obj)
    if not bck.is_ais:
        ctx.atimes[bck.object_uname(obj)] = time.time_ns()   # for LRU
    opened = await ctx.mountpaths.run(mp, open_blocking, path, bucket_dir, obj, archmime, what)
    if opened is None and not bck.is_ais:
        # a shard of a remote bucket that is not here yet: bring it in (single flight), then read it
        remote.admit_cold(ctx, bck, obj)
        await remote.fetch_object(ctx, bck, obj, ctx.bucket_props(bck))
        opened = await ctx.mountpaths.run(mp, open_blocking, path, bucket_dir, obj, archmime, what)
    if opened is None and bck.is_ais:
        from target import rebalance  # rebalance imports the object handlers, which import this module
        if await rebalance.pull_moving(ctx, bck, obj):   # not moved here yet
            opened = await ctx.mountpaths.run(mp, open_blocking, path, bucket_dir, obj, archmime, what)
    if opened is None:
        raise ObjectNotFound(what)
    shard = _Shard(ctx, mp, *opened)
    try:
        _check_bid(ctx, bck, obj, shard.meta)
    except BaseException:
        await shard.close()
        raise
    return shard


def _find(idx: Index, obj: str, archpath: str) -> Member | None:
    """The member `archpath` names; the shard's own name may lead it (`shard.tar/a/b.jpg`)."""
    m = idx.find(archpath)
    if m is None and archpath.startswith(obj + "/"):
        m = idx.find(archpath[len(obj) + 1:])
    if m is None and archpath.startswith("/"):
        m = idx.find(archpath.lstrip("/"))
    return m


# --- one file of a shard (batch-get calls this too) -----------------------------------------

class ArchivedFile:
    """One file inside a shard, opened on this target. `chunks()` reads it once in the
    mountpath's pool and releases the shard when done or closed; `close()` releases it
    without reading."""

    def __init__(self, shard: _Shard, member: Member) -> None:
        self._shard, self._member = shard, member
        self.name = member.name
        self.size = member.size
        self.mtime_s = member.mtime

    @property
    def fd(self) -> int:
        return self._shard.reader.f.fileno()

    @property
    def raw_offset(self) -> int | None:
        """Where the file's bytes start in the shard file, when they lie there as they are (sendfile)."""
        return self._shard.reader.raw_offset(self._member)

    async def chunks(self, offset: int = 0, count: int = -1) -> AsyncIterator[bytes]:
        """`count` bytes (-1: to the end) from `offset`, in chunks of up to 1 MiB."""
        end = self.size if count < 0 else offset + count
        if offset < 0 or end > self.size or offset > end:
            await self.close()
            raise BadRequest(f"range {offset}+{count} is outside {self.name!r} ({self.size} bytes)")
        try:
            while offset < end:
                data = await self._shard.read(self._member, offset, min(CHUNK, end - offset))
                offset += len(data)
                yield data
        finally:
            await self.close()

    async def close(self) -> None:
        await self._shard.close()


async def open_member(ctx: TargetContext, bck: Bucket, obj: str, archpath: str, archmime: str = "") -> ArchivedFile:
    """Open file `archpath` of shard `obj` (a local shard; one of a remote bucket is fetched first).

    ObjectNotFound: no such shard; NotFound naming `prov://bucket/shard/archpath`: no such file in
    it; BadRequest: not an archive, a damaged one, or a bad `archmime`.
    """
    if not archpath:
        raise BadRequest(f"{bck.object_cname(obj)}: empty archpath")
    shard = await _open_shard(ctx, bck, obj, archmime)
    m = _find(shard.index, obj, archpath)
    if m is None:
        await shard.close()
        raise NotFound(f"{bck.object_cname(obj)}/{archpath} does not exist (no such file in the shard)")
    return ArchivedFile(shard, m)


# --- GET ------------------------------------------------------------------------------------

def wants_archive(query: Mapping[str, str]) -> bool:
    """Does a GET ask for files inside the object (the SDK sends both keys, one of them empty)?"""
    return bool(query.get(apc.Q_ARCHPATH) or query.get(apc.Q_ARCHREGX))


async def get_archived(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str) -> web.StreamResponse:
    """`GET ?archpath=` -> that file; `GET ?archregx=&archmode=` -> a TAR of the files that match."""
    q = request.query
    archpath, regx, archmime = q.get(apc.Q_ARCHPATH, ""), q.get(apc.Q_ARCHREGX, ""), q.get(apc.Q_ARCHMIME, "")
    if archpath and regx:
        raise BadRequest(f"{apc.Q_ARCHPATH} and {apc.Q_ARCHREGX} are mutually exclusive")
    if archmime:
        formats.by_mime(archmime)
    if regx:
        return await _get_matching(request, ctx, bck, obj, regx, q.get(apc.Q_ARCHMODE, ""), archmime)
    af = await open_member(ctx, bck, obj, archpath, archmime)
    try:
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        status, offset, count = 200, 0, af.size
        rng = request.headers.get("Range")
        if rng is not None:
            offset, count = parse_range(rng, af.size)
            status = 206
            headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{af.size}"
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = count
        await resp.prepare(request)
        request[STREAMING] = True
        raw = af.raw_offset
        if raw is not None:
            mp = ctx.mountpaths.mountpath_of(bck, obj)
            await send_fd(request, resp, af.fd, raw + offset, count, ctx.mountpaths.pool(mp),
                          ctx.cfg.timeouts.data_read_s)
        else:
            async for chunk in af.chunks(offset, count):
                await resp.write(chunk)
        await resp.write_eof()
        ctx.metrics.bytes_out.labels(verb="GET").inc(count)
        return resp
    finally:
        await af.close()


async def _get_matching(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, regx: str, mode: str,
                        archmime: str) -> web.StreamResponse:
    match = matcher(regx, mode)   # a bad mode or expression is a 400 before anything is opened
    if "Range" in request.headers:
        raise BadRequest(f"a Range is not supported with {apc.Q_ARCHREGX} (the answer is a TAR of the matches)")
    shard = await _open_shard(ctx, bck, obj, archmime)
    try:
        members = [m for m in shard.index.members if match(m.name)]
        if not members:
            raise NotFound(f"{bck.object_cname(obj)}: no file in the shard matches {regx!r} "
                           f"({apc.Q_ARCHMODE} {mode or MODES[0]})")
        writer = ArchiveWriter(formats.TAR)
        resp = web.StreamResponse(status=200, headers={"Content-Type": writer.content_type})
        await resp.prepare(request)
        request[STREAMING] = True
        sent = 0
        for m in members:
            await resp.write(writer.begin(m.name, m.size, m.mtime))
            pos = 0
            while pos < m.size:
                data = await shard.read(m, pos, CHUNK)
                pos += len(data)
                await resp.write(writer.data(data))
            await resp.write(writer.end())
            sent += m.size
        await resp.write(writer.finish())
        await resp.write_eof()
        ctx.metrics.bytes_out.labels(verb="GET").inc(sent)
        return resp
    finally:
        await shard.close()


# --- PUT: append a file ---------------------------------------------------------------------

def _check_member_name(name: str) -> None:
    if not name or "\x00" in name:
        raise BadRequest(f"invalid {apc.Q_ARCHPATH} {name!r}: empty or contains a NUL byte")
    if name.startswith("/") or ".." in name.split("/"):
        raise BadRequest(f"invalid {apc.Q_ARCHPATH} {name!r}: must be a relative path without '..'")
    if len(name.encode("utf-8", "surrogatepass")) > apc.MAX_OBJ_NAME_BYTES:
        raise BadRequest(f"invalid {apc.Q_ARCHPATH}: longer than {apc.MAX_OBJ_NAME_BYTES} bytes")


def _append_flags(raw: str) -> int:
    try:
        flags = int(raw or "0")
    except ValueError:
        raise BadRequest(f"invalid {apc.HDR_ARCH_APPEND} {raw!r}: expected {apc.ARCH_APPEND} (append) or "
                         f"{apc.ARCH_APPEND_IF_EXISTS} (append if the shard exists, else create it)") from None
    if flags not in (0, apc.ARCH_APPEND, apc.ARCH_APPEND_IF_EXISTS):
        raise BadRequest(f"invalid {apc.HDR_ARCH_APPEND} {flags}: expected {apc.ARCH_APPEND} (append) or "
                         f"{apc.ARCH_APPEND_IF_EXISTS} (append if the shard exists, else create it)")
    return flags


def _append_blocking(path: str, bucket_dir: str, obj: str, archpath: str, body: str, size: int, work: str,
                     archmime: str, flags: int, fsync: bool, what: str) -> tuple[Appended, dict[str, str]]:
    """Blocking: the new shard in `work`, and the custom metadata to keep from the old one."""
    new_format = archmime or formats.by_name(obj) or formats.TAR
    opened = fsmeta.open_object(path) if flags else None   # no flags: a new shard replaces any old one
    if opened is None:
        if flags == apc.ARCH_APPEND:
            raise ObjectNotFound(what)
        return rewrite(None, new_format, work, archpath, body, size, fsync), {}
    f, meta = opened
    reader: ShardReader | None = None
    try:
        fmt = formats.detect(obj, os.pread(f.fileno(), formats.MAGIC_BYTES, 0), archmime)
        if not fmt:
            raise ArchiveError(f"{what} {_NOT_AN_ARCHIVE}: cannot append to it")
        reader = ShardReader(f, index.get(f, fmt, meta.cksum_value, bucket_dir, obj, what), what)
        if fmt == formats.TAR:
            done = append_tar(reader, work, archpath, body, size, fsync)
        else:
            done = rewrite(reader, fmt, work, archpath, body, size, fsync)
        return done, remote.user_metadata(meta.custom)
    finally:
        if reader is not None:
            reader.close()
        else:
            f.close()


async def append_to_shard(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str,
                          props: Mapping[str, Any]) -> web.StreamResponse:
    """`PUT ?archpath=<name>[&archmime=]` with `Ais-Pine` flags: add the body to the shard as `name`.

    Flags: 1 append (the shard must exist), 2 append or create; none: a new shard of this
    one file (replacing any old one). A .tar is appended to, other formats are rewritten.
    """
    # 1. request
    archpath = request.query.get(apc.Q_ARCHPATH, "")
    _check_member_name(archpath)
    flags = _append_flags(request.headers.get(apc.HDR_ARCH_APPEND, ""))
    archmime = request.query.get(apc.Q_ARCHMIME, "")
    fmt = formats.by_mime(archmime) if archmime else ""
    mp, path = ctx.mountpaths.object_path(bck, obj)
    bucket_dir = ctx.mountpaths.bucket_dir(mp, bck)
    what = bck.object_cname(obj)
    # 2. the file to add, into a work file of its own (its size must be known for a tar header)
    body = ctx.mountpaths.work_path(mp, "arch.")
    rec = await receive_body(request, ctx, mp, body)
    work = ctx.mountpaths.work_path(mp)
    try:
        if not bck.is_ais:
            await remote.settle(ctx, bck, obj)
            if flags and await ctx.mountpaths.run(mp, fsmeta.stat_object, path) is None:
                try:   # appending to a remote shard not here yet: bring it in first
                    await remote.fetch_object(ctx, bck, obj, props)
                except ObjectNotFound:
                    pass   # flag 2 creates it; flag 1 answers 404 below
        # 3. read the old shard, write the new one, publish it: all under the object's lock
        async with ctx.object_lock(bck.object_uname(obj)):
            done, custom = await ctx.mountpaths.run(mp, _append_blocking, path, bucket_dir, obj, archpath, body,
                                                    rec.size, work, fmt, flags, ctx.cfg.target.fsync, what)
            meta = ObjectMeta(size=done.size, cksum_type="xxhash", cksum_value=done.xxhash, custom=custom,
                              bid=bucket_id(props))
            meta = await _publish_locked(ctx, bck, obj, mp, work, meta, props)
        if done.index is not None:   # a .tar: its new index is known, no scan next time
            key = (meta.size, meta.mtime_ns, meta.cksum_value)
            await ctx.mountpaths.run(mp, index.save, index.sidecar_path(bucket_dir, obj), obj, key, done.index)
    except BaseException:
        await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
        raise
    finally:
        await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, body))
    return web.Response(status=200, headers=object_headers(ctx, bck, obj, mp, meta, {"checksum", "atime", "version"}))


async def _publish_locked(ctx: TargetContext, bck: Bucket, obj: str, mp: str, work: str, meta: ObjectMeta,
                          props: Mapping[str, Any]) -> ObjectMeta:
    """`commit_object` for a caller that already holds the object's lock (write-through first in
    a remote bucket, then metadata and rename)."""
    _, path = ctx.mountpaths.object_path(bck, obj)
    if not bck.is_ais:
        attrs = await (await ctx.backend(bck)).put_file(bck.name, obj, work, meta.size, remote.user_metadata(meta.custom))
        fresh = remote.remote_meta(bck, attrs, meta.size, meta.cksum_value, meta.bid, custom=meta.custom)
        meta = replace(meta, version=fresh.version, custom=fresh.custom, md5=meta.md5 or fresh.md5)
    versioning = bck.is_ais and bool((props.get("versioning") or {}).get("enabled", True))
    try:
        stored = await ctx.mountpaths.run(mp, fsmeta.commit, work, path, meta, ctx.cfg.target.fsync, versioning)
    except OSError as exc:
        raise fsmeta.translate_os_error(exc, bck.object_cname(obj)) from exc
    await mirror.after_write(ctx, bck, obj, props)   # the shard's mirror copies follow
    return stored


# --- listing with the arch-dir flag (blocking; the listing's pool thread) --------------------

def archived_entries(path: str, bucket_dir: str, obj: str) -> list[tuple[str, int]] | None:
    """(name, size) of a shard's files; None when it cannot be read as an archive (listed as is)."""
    fmt = formats.by_name(obj)
    opened = fsmeta.open_object(path) if fmt else None
    if opened is None:
        return None
    f, meta = opened
    with f:
        try:
            idx = index.get(f, fmt, meta.cksum_value, bucket_dir, obj, obj)
        except AisError as exc:
            log.info("listing %s as a plain object: %s", obj, exc.message)
            return None
    return [(m.name, m.size) for m in idx.members]


def _enclosing(name: str) -> Iterator[str]:
    """Every `a`, `a/b`, ... that `name` lies inside of (`a/b/c` -> a, a/b)."""
    i = name.find("/")
    while i > 0:
        yield name[:i]
        i = name.find("/", i + 1)


def _passed(after: str) -> Iterator[str]:
    """Names at or before `after` whose `name/...` may sort after it: `after` itself and each
    leading part followed by a character up to '/' (`x.tar.idx` -> x.tar; `x.tar/b` -> x.tar)."""
    for i in range(1, len(after) + 1):
        if i == len(after) or after[i] <= "/":
            yield after[:i]


def walk_expanding(root: str, prefix: str, after: str) -> Iterator[tuple[str, os.DirEntry[str] | None, int, bool]]:
    """`walk_sorted` with each shard followed by its files, all in name order.

    Yields (name, entry, -1, is_shard) for objects and (`shard/file`, None, size, False) for
    the files in shards. A shard's files sort after it, but names like `shard.tar.idx` sort
    between the two: the files wait in a heap until the walk has passed them. A page that
    starts inside a shard (a token `shard.tar/x` or `shard.tar.idx`, or a prefix
    `shard.tar/dir/`) lists the rest of that shard too, though the walk does not pass it again.
    """
    pending: list[tuple[str, int]] = []

    def expand(shard: str) -> bool:
        found = archived_entries(f"{root}/{shard}", root, shard)
        if found is None:
            return False
        for name, size in found:
            full = f"{shard}/{name}"
            if full > after and full.startswith(prefix):
                heapq.heappush(pending, (full, size))
        return True

    for shard in sorted(set(_enclosing(prefix)) | set(_passed(after))):
        if formats.is_archive_name(shard) and not (shard > after and shard.startswith(prefix)) \
                and os.path.isfile(f"{root}/{shard}"):
            expand(shard)
    for name, entry in walk_sorted(root, prefix, after):
        while pending and pending[0][0] < name:
            member, size = heapq.heappop(pending)
            yield member, None, size, False
        is_shard = formats.is_archive_name(name) and expand(name)
        yield name, entry, -1, is_shard
    while pending:
        member, size = heapq.heappop(pending)
        yield member, None, size, False
