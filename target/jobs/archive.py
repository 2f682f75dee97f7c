"""archive: the selected objects of a bucket into one shard (reference §8, ArchiveMsg).

The proxy starts the job on the target that owns the shard's name, which builds the shard
in a work file: its own objects read from its disks, the others streamed from their owners
over HTTP, one member at a time in name order (memory stays at a few chunks whatever the
sizes), then publishes it like any PUT (checksum, fsync, rename). With `aate` an existing
shard is appended to (a .tar keeps its bytes; other formats are rewritten with the new
members after the old ones). A missing object fails the job, naming it, unless `coer`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
from typing import Any, BinaryIO
from urllib.parse import quote

import aiohttp
import msgpack

from ais import apc, names
from ais.cmap import bucket_id
from ais.errors import AisError, BadMessage, BadRequest, ObjectNotFound, ServiceUnavailable
from ais.names import Bucket
from ais.template import parse_selection
from target import remote
from target.archive import formats
from target.archive.append import HashedFile
from target.archive.read import Member, ShardReader
from target.archive.write import ArchiveWriter, normalize_mime
from target.context import TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.jobs.base import Job
from target.objects import _TARGET_REDIRECT, batches, commit_object
from target.shards import open_blocking

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class ArchiveJob(Job):
    kind = "archive"

    def __init__(self, ctx: TargetContext, job_id: str, src: Bucket | None, dst: Bucket | None,
                 msg: dict[str, Any]) -> None:
        # a bad message is the starting request's 400: checked here, as the job is accepted
        if src is None:
            raise BadMessage("archive needs a source bucket")
        super().__init__(ctx, job_id, src, dst or src, msg)
        archname = msg.get("archname")
        if not isinstance(archname, str) or not archname:
            raise BadMessage("archive needs the shard's name in 'archname'")
        self.archname = names.check_object_name(archname)
        mime = msg.get("mime") or ""
        if not isinstance(mime, str):
            raise BadMessage(f"invalid mime {mime!r}: expected a string")
        self.fmt = formats.by_mime(normalize_mime(mime)) if mime else formats.by_name(archname)
        if not self.fmt:
            raise BadRequest(f"cannot tell the format of {archname!r} from its name: name it .tar, .tgz, .tar.gz, "
                             f".tar.zst or .zip, or set 'mime'")
        self.selection = parse_selection(msg)
        self.coer, self.aate = bool(msg.get("coer")), bool(msg.get("aate"))
        self.isbn, self.bnonly = bool(msg.get("isbn")), bool(msg.get("bnonly"))

    def snap(self) -> dict[str, Any]:
        s = super().snap()
        if self.end_ns and self.errors and not self.aborted:
            s["abort-err"] = s["err"]   # the SDK's wait() reports a failed archive by its abort error
        return s

    # --- the job --------------------------------------------------------------------------

    async def run(self) -> None:
        assert self.src is not None and self.dst is not None
        ctx, dst = self.ctx, self.dst
        objects = await self._names()
        dst_props = ctx.bucket_props(dst)
        mp, path = ctx.mountpaths.object_path(dst, self.archname)
        work = ctx.mountpaths.work_path(mp, "arch.")
        out = await ctx.mountpaths.run(mp, HashedFile, work)
        try:
            writer = await self._begin(out, mp, path)
            for name in objects:
                await self.pace()
                await self._add(out, writer, mp, name)
            await ctx.mountpaths.run(mp, _finish, out, writer, ctx.cfg.target.fsync)
        except BaseException:
            out.f.close()
            await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
            raise
        meta = ObjectMeta(size=out.size, cksum_type="xxhash", cksum_value=out.hasher.hexdigest(),
                          bid=bucket_id(dst_props))
        await commit_object(ctx, dst, self.archname, mp, work, meta, dst_props)

    async def _begin(self, out: HashedFile, mp: str, path: str) -> ArchiveWriter:
        """A writer for the new shard; with `aate`, the existing shard's members are in `out` first."""
        assert self.dst is not None
        if not self.aate:
            return ArchiveWriter(self.fmt)
        bucket_dir = self.ctx.mountpaths.bucket_dir(mp, self.dst)
        what = self.dst.object_cname(self.archname)
        opened = await self.ctx.mountpaths.run(mp, open_blocking, path, bucket_dir, self.archname, "", what)
        if opened is None:
            return ArchiveWriter(self.fmt)
        _, reader = opened
        try:
            fmt = reader.index.fmt   # appending keeps the shard's format
            writer = ArchiveWriter(fmt)
            if fmt == formats.TAR:
                await self.ctx.mountpaths.run(mp, _copy_prefix, reader, out, reader.index.end)
            else:
                for m in reader.index.members:
                    await self.ctx.mountpaths.run(mp, _begin_member, out, writer, m.name, m.size, m.mtime)
                    for pos in range(0, m.size, CHUNK):
                        await self.ctx.mountpaths.run(mp, _copy_member_chunk, reader, m, pos, out, writer)
                    await self.ctx.mountpaths.run(mp, _end_member, out, writer)
            return writer
        finally:
            await self.ctx.mountpaths.run(mp, reader.close)

    async def _add(self, out: HashedFile, writer: ArchiveWriter, mp: str, name: str) -> None:
        """One object as the next member; a missing one is skipped with `coer`, else fails the job."""
        assert self.src is not None
        owner = self.ctx.smap.owner(self.src.object_uname(name))
        if owner is None:
            raise ServiceUnavailable("the cluster has no active targets")
        if owner.id == self.ctx.me.id:
            size = await self._add_local(out, writer, mp, name)
        else:
            size = await self._add_from_peer(out, writer, mp, name, owner.public_url, owner.display)
        if size is None:
            if self.coer:
                log.info("archive %s: skipping %s (does not exist)", self.id, self.src.object_cname(name))
                return
            raise ObjectNotFound(self.src.object_cname(name))
        self.objects += 1
        self.bytes += size

    def _member_name(self, name: str) -> str:
        assert self.src is not None
        base = name.rsplit("/", 1)[-1] if self.bnonly else name
        return f"{self.src.name}/{base}" if self.isbn else base

    async def _add_local(self, out: HashedFile, writer: ArchiveWriter, mp: str, name: str) -> int | None:
        assert self.src is not None
        ctx, src = self.ctx, self.src
        smp, spath = ctx.mountpaths.object_path(src, name)
        opened = await ctx.mountpaths.run(smp, fsmeta.open_object, spath)
        if opened is None and not src.is_ais:
            try:   # a remote object the cluster lacks: fetched first
                await remote.fetch_object(ctx, src, name, ctx.bucket_props(src))
            except ObjectNotFound:
                return None
            opened = await ctx.mountpaths.run(smp, fsmeta.open_object, spath)
        if opened is None:
            return None
        f, meta = opened
        try:
            await ctx.mountpaths.run(mp, _begin_member, out, writer, self._member_name(name), meta.size,
                                     meta.mtime_ns / 1e9)
            left = meta.size
            while left > 0:
                n = await ctx.mountpaths.run(mp, _copy_file_chunk, f, out, writer, min(CHUNK, left))
                if n == 0:
                    raise AisError(f"{src.object_cname(name)} shrank while being archived")
                left -= n
            await ctx.mountpaths.run(mp, _end_member, out, writer)
        finally:
            await ctx.mountpaths.run(smp, f.close)
        return meta.size

    async def _add_from_peer(self, out: HashedFile, writer: ArchiveWriter, mp: str, name: str, url: str,
                             peer: str) -> int | None:
        assert self.src is not None
        ctx, src = self.ctx, self.src
        params = {apc.Q_PROVIDER: src.provider, _TARGET_REDIRECT: ctx.me.id}
        if not src.namespace.is_global:
            params[apc.Q_NAMESPACE] = src.namespace.uname
        try:
            async with ctx.http.session.get(f"{url}/v1/objects/{src.name}/{quote(name)}", params=params,
                                            headers=ctx.http.headers(), timeout=ctx.http.data_timeout(),
                                            allow_redirects=False) as resp:
                if resp.status == 404:
                    return None
                if resp.status >= 400:
                    raise AisError(f"reading {src.object_cname(name)} from {peer} failed: {resp.status} "
                                   f"{(await resp.text())[:300]}")
                size = resp.content_length
                if size is None:
                    raise AisError(f"reading {src.object_cname(name)} from {peer}: no Content-Length")
                await ctx.mountpaths.run(mp, _begin_member, out, writer, self._member_name(name), size,
                                         _mtime(resp.headers.get("Last-Modified", "")))
                got = 0
                async for batch in batches(resp.content.iter_chunked(256 << 10), CHUNK):
                    got += await ctx.mountpaths.run(mp, _write_batch, out, writer, batch)
                if got != size:
                    raise AisError(f"reading {src.object_cname(name)} from {peer}: got {got} of {size} bytes")
                await ctx.mountpaths.run(mp, _end_member, out, writer)
                return size
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"reading {src.object_cname(name)} from {peer}: {type(exc).__name__}: {exc}") \
                from exc

    # --- which objects ----------------------------------------------------------------------

    async def _names(self) -> list[str]:
        """The selected names, sorted, without the shard itself."""
        assert self.src is not None
        listed = self.selection.listed()
        found = set(listed) if listed is not None else set(await self._list(self.selection.prefix))
        if self.src == self.dst:
            found.discard(self.archname)
        return sorted(found)

    async def _list(self, prefix: str) -> list[str]:
        """Every object under `prefix`: at the backend for a remote bucket, else on every target."""
        assert self.src is not None
        ctx, src = self.ctx, self.src
        out: list[str] = []
        if not src.is_ais:
            backend, token = await ctx.backend(src), ""
            while True:
                remote_page = await backend.list_page(src.name, prefix, token, 1000)
                out.extend(e.name for e in remote_page.entries)
                token = remote_page.next_token
                if not token:
                    return out
        params = {apc.Q_PROVIDER: src.provider}
        if not src.namespace.is_global:
            params[apc.Q_NAMESPACE] = src.namespace.uname
        for t in ctx.smap.active_targets():
            after = ""
            while True:
                body = {"prefix": prefix, "after": after, "limit": apc.MAX_PAGE_SIZE, "props": ["name"]}
                _, data, _ = await ctx.http.call("POST", f"{t.intra_url}/v1/lso/{src.name}", json_body=body,
                                                 params=params, timeout_s=max(ctx.cfg.timeouts.control_s, 60))
                page: list[dict[str, Any]] = msgpack.unpackb(data)
                out.extend(e["n"] for e in page)
                if len(page) < apc.MAX_PAGE_SIZE:
                    break
                after = page[-1]["n"]
        return out


# --- blocking steps (in the shard's mountpath pool) -------------------------------------------

def _begin_member(out: HashedFile, writer: ArchiveWriter, name: str, size: int, mtime_s: float) -> None:
    out.write(writer.begin(name, size, mtime_s))


def _end_member(out: HashedFile, writer: ArchiveWriter) -> None:
    out.write(writer.end())


def _copy_file_chunk(f: BinaryIO, out: HashedFile, writer: ArchiveWriter, n: int) -> int:
    data = f.read(n)
    out.write(writer.data(data))
    return len(data)


def _copy_member_chunk(reader: ShardReader, m: Member, pos: int, out: HashedFile, writer: ArchiveWriter) -> None:
    out.write(writer.data(reader.read(m, pos, CHUNK)))


def _write_batch(out: HashedFile, writer: ArchiveWriter, batch: list[bytes]) -> int:
    for chunk in batch:
        out.write(writer.data(chunk))
    return sum(len(c) for c in batch)


def _copy_prefix(reader: ShardReader, out: HashedFile, end: int) -> None:
    """A .tar's bytes before its end-of-archive blocks (what an append keeps)."""
    fd, pos = reader.f.fileno(), 0
    while pos < end:
        data = os.pread(fd, min(CHUNK, end - pos), pos)
        if not data:
            raise AisError("shard shrank while being appended to")
        out.write(data)
        pos += len(data)


def _finish(out: HashedFile, writer: ArchiveWriter, fsync: bool) -> None:
    out.write(writer.finish())
    out.finish(fsync)


def _mtime(http_date: str) -> float:
    try:
        return email.utils.parsedate_to_datetime(http_date).timestamp() if http_date else 0.0
    except (TypeError, ValueError):
        return 0.0
