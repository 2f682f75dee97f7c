"""Multi-object jobs over a selection (names, template or prefix; reference §1.4 and §5):
prefetch-listrange, evict-listrange, delete-listrange, and evict-remote-bck.

Every target runs the job over the selected objects it owns (HRW), so each object is handled
by exactly one target. A template or a list is filtered by ownership; a prefix is listed
(locally for evict and delete; at the backend for prefetch).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import AsyncIterator, ClassVar

from ais.errors import AisError, NotFound
from ais.template import Selection, parse_selection
from target import rebalance, remote
from target.fs import meta as fsmeta
from target.fs.walk import walk_sorted
from target.jobs.base import Job
from target.objects import copy_object_to, delete_local, delete_object_everywhere

DEFAULT_WORKERS = 8
_BATCH = 512


class ListRangeJob(Job):
    """Runs `one(name)` over the selected objects this target owns, `workers` at a time."""

    walks_local = True
    remote_only: ClassVar[bool] = False
    moves_data: ClassVar[bool] = True        # False: metadata-only work (evict, delete), paced lighter
    list_backend: ClassVar[bool] = False   # a prefix lists the backend (else the local objects)

    async def one(self, name: str) -> int:
        """Handle one object; the bytes it moved."""
        raise NotImplementedError

    async def run(self) -> None:
        assert self.src is not None
        if self.remote_only and self.src.is_ais:
            raise AisError(f"{self.kind} needs a remote bucket, not {self.src.cname}")
        selection = parse_selection(self.msg)
        workers = int(self.msg.get("num-workers") or 0) or DEFAULT_WORKERS
        gate = self.gate(max(1, min(workers, 64)))
        coer = bool(self.msg.get("coer", False))

        async def guarded(name: str) -> None:
            async with gate:
                await self.pace(rw=self.moves_data)
                try:
                    self.bytes += await self.one(name)
                    self.objects += 1
                except NotFound as exc:
                    if not coer and selection.names:   # a template or prefix may have holes
                        self.errors.append(exc.message)
                except AisError as exc:
                    self.errors.append(f"{name}: {exc.message}")
        async for batch in self._owned(selection):
            async with asyncio.TaskGroup() as tg:
                for name in batch:
                    tg.create_task(guarded(name))
            if self.errors and not coer:   # without continue-on-error the first failed batch ends the job
                raise AisError(f"{len(self.errors)} objects failed, first: {self.errors[0]}")

    async def _owned(self, selection: Selection) -> AsyncIterator[list[str]]:
        """Batches of the selected names this target owns."""
        assert self.src is not None
        ctx, bck = self.ctx, self.src
        listed = selection.listed()
        if listed is not None:
            while batch := list(itertools.islice(listed, _BATCH)):
                yield [n for n in batch if self._mine(n)]
            return
        if self.list_backend and not bck.is_ais:
            token = ""
            while True:
                page = await (await ctx.backend(bck)).list_page(bck.name, selection.prefix, token, 1000)
                yield [e.name for e in page.entries if self._mine(e.name)]
                token = page.next_token
                if not token:
                    return
        for mp in ctx.mountpaths.paths:
            root = ctx.mountpaths.bucket_dir(mp, bck)
            names = await ctx.mountpaths.run(mp, _local_names, root, selection.prefix)
            for i in range(0, len(names), _BATCH):
                yield names[i:i + _BATCH]

    def _mine(self, name: str) -> bool:
        assert self.src is not None
        owner = self.ctx.smap.owner(self.src.object_uname(name))
        return owner is not None and owner.id == self.ctx.me.id


def _local_names(root: str, prefix: str) -> list[str]:
    return [name for name, _ in walk_sorted(root, prefix)]


class PrefetchListJob(ListRangeJob):
    """Bring remote objects into the cluster; with `latest-ver`, refresh copies that changed."""

    kind = "prefetch-listrange"
    remote_only = True
    list_backend = True

    async def one(self, name: str) -> int:
        assert self.src is not None
        ctx, bck = self.ctx, self.src
        props = ctx.bucket_props(bck)
        mp, path = ctx.mountpaths.object_path(bck, name)
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
        if meta is not None:
            if not self.msg.get("latest-ver") or await remote.check_warm(ctx, bck, name, meta, sync=False):
                return 0   # already here (and current)
        threshold = int(self.msg.get("blob-threshold") or 0)
        if threshold > 0 and (await (await ctx.backend(bck)).head_object(bck.name, name)).size >= threshold:
            return await remote.blob_download(ctx, bck, name, props, int(self.msg.get("blob-chunk-size") or 0),
                                              int(self.msg.get("blob-num-workers") or 0))
        return await remote.fetch_object(ctx, bck, name, props)


class BlobDownloadJob(Job):
    """blob-download: one large remote object in parallel range reads (on its owner)."""

    kind = "blob-download"

    async def run(self) -> None:
        assert self.src is not None
        ctx, bck, name = self.ctx, self.src, str(self.msg.get("name", ""))
        if bck.is_ais:
            raise AisError(f"blob-download needs a remote bucket, not {bck.cname}")
        props = ctx.bucket_props(bck)
        if not self.msg.get("latest-ver"):
            mp, path = ctx.mountpaths.object_path(bck, name)
            if await ctx.mountpaths.run(mp, fsmeta.stat_object, path) is not None:
                return
        self.bytes = await remote.blob_download(ctx, bck, name, props, int(self.msg.get("chunk-size") or 0),
                                                int(self.msg.get("num-workers") or 0))
        self.objects = 1


class CopyListJob(ListRangeJob):
    """copy-listrange: copy the selected objects to `tobck` (with `prepend` on their names); a
    remote source object the cluster lacks is fetched first."""

    kind = "copy-listrange"
    list_backend = True   # a prefix of a remote source lists the backend

    async def one(self, name: str) -> int:
        assert self.src is not None and self.dst is not None
        ctx, src = self.ctx, self.src
        if self.msg.get("dry_run"):
            return 0
        if not src.is_ais:
            mp, path = ctx.mountpaths.object_path(src, name)
            if await ctx.mountpaths.run(mp, fsmeta.stat_object, path) is None:
                await remote.fetch_object(ctx, src, name, ctx.bucket_props(src))
        return await copy_object_to(self.ctx, src, name, self.dst, str(self.msg.get("prepend") or "") + name)


class EvictListJob(ListRangeJob):
    """Drop the cluster's copies of remote objects (the backend keeps them)."""

    kind = "evict-listrange"
    remote_only = True
    moves_data = False

    async def one(self, name: str) -> int:
        assert self.src is not None
        if not await delete_local(self.ctx, self.src, name):
            raise NotFound(f"{self.src.object_cname(name)} is not in the cluster")
        return 0


class DeleteListJob(ListRangeJob):
    """Delete objects (in a remote bucket, at the backend too)."""

    kind = "delete-listrange"
    list_backend = False
    moves_data = False

    async def one(self, name: str) -> int:
        assert self.src is not None
        at_neighbors = await rebalance.delete_at_neighbors(self.ctx, self.src, name)   # not moved here yet
        if not await delete_object_everywhere(self.ctx, self.src, name) and not at_neighbors:
            raise NotFound(f"{self.src.object_cname(name)} does not exist")
        return 0


class EvictBucketJob(Job):
    """evict-remote-bck: drop every cached object of a remote bucket on this target."""

    kind = "evict-remote-bck"

    async def run(self) -> None:
        assert self.src is not None
        if self.src.is_ais:
            raise AisError(f"cannot evict {self.src.cname}: not a remote bucket")
        rel = self.ctx.mountpaths.bucket_rel(self.src)
        counted = 0
        for mp in self.ctx.mountpaths.paths:
            counted += len(await self.ctx.mountpaths.run(mp, _local_names, self.ctx.mountpaths.bucket_dir(mp, self.src), ""))
        await asyncio.get_running_loop().run_in_executor(None, self.ctx.mountpaths.remove_bucket_rel, rel)
        self.objects = counted
