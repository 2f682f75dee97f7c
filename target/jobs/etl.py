"""Offline transforms: etl-bck (a whole bucket, or its objects under a prefix) and etl-listrange
(a selection of names, a template or a prefix) into a destination bucket (reference §6.1).

The message is TCBMsg (+ TCOMsg's selection for etl-listrange): `id` (the ETL), `pipeline`,
`request_timeout` (per object), `prefix`, `prepend`, `ext` (extension mapping), `dry_run`,
`coer` (continue on error), `num-workers`. Every target transforms the source objects it
owns, `num-workers` at a time through `job.gate()` (fewer under load). A result goes to the
owner of its new name: written here, PUT to the owner, or - when the ETL supports direct put -
delivered by the transformer itself straight to the owner (`Ais-Node-Url`). Failed objects are
recorded as `obj_errors` (shown by `GET /v1/etl/<name>?uuid=<job>`).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator
from urllib.parse import quote, urlencode

from ais import apc
from ais.cmap import bucket_id
from ais.errors import AisError
from ais.etl import TransformFailed
from ais.names import Bucket, parse_duration_s
from target.context import TargetContext
from target.etl.inline import local_object, pipeline_of, source_request
from target.etl.manager import RunningEtl
from target.fs.meta import ObjectMeta
from target.jobs.base import Job
from target.jobs.copy import _list_all
from target.jobs.listrange import ListRangeJob
from target.objects import _TARGET_REDIRECT, Received, batches, commit_object, write_work

DEFAULT_WORKERS = 8


def map_name(name: str, prepend: str, ext: dict[str, str]) -> str:
    """The destination name: `ext` maps the last extension (`{"jpg": "png"}`), `prepend` prefixes."""
    if ext:
        base, dot, old = name.rpartition(".")
        if dot and base and old in ext:
            name = f"{base}.{ext[old]}"
    return prepend + name


def _bucket_query(bck: Bucket) -> dict[str, str]:
    params = {apc.Q_PROVIDER: bck.provider}
    if not bck.namespace.is_global:
        params[apc.Q_NAMESPACE] = bck.namespace.uname
    return params


async def store(ctx: TargetContext, dst: Bucket, name: str, chunks: AsyncIterator[bytes]) -> int:
    """Write a transformed object to the owner of its name (here or a peer); its size."""
    props = ctx.bucket_props(dst)
    owner = ctx.smap.owner(dst.object_uname(name))
    if owner is None:
        raise AisError("no active targets")
    if owner.id == ctx.me.id:
        mp = ctx.mountpaths.mountpath_of(dst, name)
        work = ctx.mountpaths.work_path(mp)
        rec = Received()
        await write_work(ctx, mp, work, batches(chunks, ctx.cfg.target.write_buffer_bytes), rec)
        meta = ObjectMeta(size=rec.size, cksum_type="xxhash", cksum_value=rec.hasher.hexdigest(),
                          bid=bucket_id(props))
        await commit_object(ctx, dst, name, mp, work, meta, props)
        return rec.size
    sent = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal sent
        async for c in chunks:
            sent += len(c)
            yield c
    url = f"{owner.public_url}/v1/objects/{dst.name}/{quote(name)}"
    params = {**_bucket_query(dst), _TARGET_REDIRECT: ctx.me.id}
    async with ctx.http.session.put(url, data=counted(), params=params, timeout=ctx.http.data_timeout(),
                                    headers=ctx.http.headers({apc.HDR_BACKGROUND: "true"})) as resp:
        if resp.status >= 400:
            raise AisError(f"storing {dst.object_cname(name)} on {owner.display} failed: {resp.status} "
                           f"{(await resp.text())[:300]}")
    return sent


class EtlTransform:
    """What both job kinds share: the ETL pipeline and the per-object step."""

    def __init__(self, job: Job) -> None:
        ctx, msg = job.ctx, job.msg
        assert ctx.etl is not None and job.src is not None and job.dst is not None
        self.job, self.src, self.dst = job, job.src, job.dst
        pipeline = msg.get("pipeline") or []
        self.etl, self.stages = pipeline_of(ctx.etl, str(msg.get("id") or ""), ",".join(map(str, pipeline)))
        self.prepend = str(msg.get("prepend") or "")
        self.ext = {str(k).lstrip("."): str(v).lstrip(".") for k, v in (msg.get("ext") or {}).items()}
        self.dry_run = bool(msg.get("dry_run", False))
        self.etl_args = str(msg.get("etl_args") or "")
        timeout = msg.get("request_timeout")
        try:
            self.timeout_s = parse_duration_s(str(timeout)) if timeout else 0.0
        except ValueError:
            self.timeout_s = 0.0
        self.obj_errors: list[dict[str, Any]] = []

    def _direct_url(self, owner_url: str, name: str) -> str:
        query = urlencode({**_bucket_query(self.dst), "xid": self.job.id})
        return f"{owner_url}/{self.dst.name}/{quote(name)}?{query}"

    async def one(self, name: str) -> int:
        """Transform one object; the bytes of its result."""
        ctx, etl = self.job.ctx, self.etl
        try:
            path, meta = await local_object(ctx, self.src, name)
            dst_name = map_name(name, self.prepend, self.ext)
            owner = ctx.smap.owner(self.dst.object_uname(dst_name))
            if owner is None:
                raise AisError("no active targets")
            last: RunningEtl = self.stages[-1] if self.stages else etl
            urls = [s.url for s in self.stages]
            if not self.dry_run and last.init.direct_put and owner.id != ctx.me.id:
                urls.append(self._direct_url(owner.intra_url, dst_name))
            req = await source_request(ctx, etl, self.src, name, path, meta.size, self.etl_args, urls)
            if self.timeout_s:
                req.timeout_s = self.timeout_s
            reply = await etl.call(req)
            if reply.status == 204:
                size = reply.delivered
            elif self.dry_run:
                size = len(await reply.read())
            else:
                size = await store(ctx, self.dst, dst_name, reply.chunks())
        except TransformFailed as exc:
            self.obj_errors.append({"obj_name": name, "msg": exc.message, "ecode": exc.ecode})
            etl.record(name, exc)
            raise
        except AisError as exc:
            self.obj_errors.append({"obj_name": name, "msg": exc.message, "ecode": exc.status})
            raise
        etl.objects += 1
        etl.out_bytes += size
        return size


class EtlBucketJob(Job):
    """etl-bck: every local object of src (under `prefix`) through the ETL into dst."""

    kind = "etl-bck"
    walks_local = True
    _t: EtlTransform

    @property
    def obj_errors(self) -> list[dict[str, Any]]:
        return self._t.obj_errors if hasattr(self, "_t") else []

    async def run(self) -> None:
        self._t = t = EtlTransform(self)
        prefix = str(self.msg.get("prefix") or "")
        coer = bool(self.msg.get("coer", False))
        workers = int(self.msg.get("num-workers") or 0)
        gate = self.gate(1 if workers < 0 else min(workers or DEFAULT_WORKERS, 64))
        failed: list[str] = []

        async def guarded(name: str) -> None:
            if failed and not coer:
                return
            async with gate:
                if failed and not coer:
                    return
                await self.pace()
                try:
                    self.bytes += await t.one(name)
                    self.objects += 1
                except AisError as exc:
                    failed.append(f"{name}: {exc.message}")

        assert self.src is not None
        for mp in self.ctx.mountpaths.paths:
            root = self.ctx.mountpaths.bucket_dir(mp, self.src)
            listed = await self.ctx.mountpaths.run(mp, _list_all, root, prefix)
            async with asyncio.TaskGroup() as tg:
                for name, _ in listed:
                    tg.create_task(guarded(name))
            if failed and not coer:
                break
        if failed:
            if coer:   # recorded as object errors; the job itself succeeded
                return
            raise AisError(f"{len(failed)} objects failed, first: {failed[0]}")


class EtlListJob(ListRangeJob):
    """etl-listrange: the selected objects this target owns through the ETL into `tobck`."""

    kind = "etl-listrange"
    _t: EtlTransform

    @property
    def obj_errors(self) -> list[dict[str, Any]]:
        return self._t.obj_errors if hasattr(self, "_t") else []

    async def run(self) -> None:
        self._t = EtlTransform(self)
        await super().run()

    async def one(self, name: str) -> int:
        return await self._t.one(name)
