"""The global rebalance job: send away every object this target no longer owns (reference §9).

One job per rebalance metadata version (ID `g<N>`), started on every target when the primary
metasyncs a new version (the active target set changed) and again at start-up when this target
had not finished it before it stopped. Stages:

1. traverse: walk every bucket on every mountpath in pages; each object whose HRW owner under
   the current cluster map is another target goes there (`target.rebalance.send_object`), and
   so does each multipart upload in progress (`target.rebalance.send_upload`),
   throttled by `pace()` and the load-following gate. Sends that fail (an owner down or
   restarting) are retried by walking again; the walk is idempotent, as only misplaced objects
   move. Success is persisted, so a restart does not redo it.
2. wait: until every other target has finished its traverse too, so the job's end (what the
   SDK waits for) means the whole cluster is in place, and get-from-neighbor stays on meanwhile.

A newer rebalance aborts this one; its own walk covers whatever this one had not moved.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from ais.cmap import RebalanceMD
from ais.errors import AisError
from ais.names import Bucket
from target import rebalance
from target.context import TargetContext
from target.fs.walk import walk_sorted
from target.jobs.base import Job
from target.objects import mpu_uploads

if TYPE_CHECKING:
    from target.jobs import JobRegistry

log = logging.getLogger(__name__)

PAGE = 1000            # object names read per pool hop
WORKERS = 8            # objects in flight at most (fewer under load: see Job.gate)
RETRY_PAUSE_S = 1.0    # between walks that still had failed sends
GIVE_UP_S = 600.0      # stop retrying (and waiting for peers) after this long
POLL_S = 0.25          # peer progress polling


class RebalanceJob(Job):
    kind = "rebalance"

    async def run(self) -> None:
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GIVE_UP_S
        ctx.rebalancing[self.id] = "traverse"
        try:
            await self._await_map(int(self.msg.get("smap_version", 0)), deadline)
            while (failed := await self._traverse()) > 0:
                if loop.time() > deadline:
                    raise AisError(f"{failed} objects could not be moved; giving up after {GIVE_UP_S:.0f}s")
                log.warning("rebalance %s: %d objects not moved yet; walking again", self.id, failed)
                self.errors.clear()
                await asyncio.sleep(RETRY_PAUSE_S)
            await rebalance.mark_done(ctx, self.id)
            ctx.rebalancing[self.id] = "wait"
            log.info("rebalance %s: sent %d objects (%d bytes); waiting for the other targets",
                     self.id, self.objects, self.bytes)
            await self._wait_peers(deadline)
            log.info("rebalance %s: done", self.id)
        finally:
            ctx.rebalancing.pop(self.id, None)

    async def _await_map(self, version: int, deadline: float) -> None:
        """The cluster map this rebalance is for travels with it; wait if it is not here yet."""
        while self.ctx.smap.version < version and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_S)

    async def _traverse(self) -> int:
        """One walk over every local object; the number of objects that failed to move."""
        ctx = self.ctx
        gate = self.gate(WORKERS)
        failed = 0

        async def one(bck: Bucket, name: str, mp: str, owner_id: str) -> None:
            nonlocal failed
            async with gate:
                await self.pace()
                owner = ctx.smap.targets.get(owner_id)
                if owner is None:
                    return
                _, path = ctx.mountpaths.object_path(bck, name)
                try:
                    moved = await rebalance.send_object(ctx, owner, bck, name, mp, path)
                except Exception as exc:  # noqa: BLE001 - retried by the next walk
                    failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(str(exc))
                    return
                if moved is not None:
                    self.objects += 1
                    self.bytes += moved.size

        for bck in list(ctx.bmd.buckets):
            for mp in ctx.mountpaths.paths:
                root = ctx.mountpaths.bucket_dir(mp, bck)
                after = ""
                while True:
                    page = await ctx.mountpaths.run(mp, _page, root, after)
                    if not page:
                        break
                    after = page[-1]
                    smap = ctx.smap
                    async with asyncio.TaskGroup() as tg:
                        for name in page:
                            owner = smap.owner(bck.object_uname(name))
                            if owner is not None and owner.id != ctx.me.id:
                                tg.create_task(one(bck, name, mp, owner.id))
        return failed + await self._move_uploads()

    async def _move_uploads(self) -> int:
        """Move the multipart uploads in progress whose object has another owner now (one at a
        time: few exist); the number that failed to move."""
        ctx = self.ctx
        failed = 0
        for mp in ctx.mountpaths.paths:
            for upload_id, doc in await ctx.mountpaths.run(mp, mpu_uploads, ctx.mountpaths.mpu_dir(mp, "")):
                uname = doc["uname"]
                owner = ctx.smap.owner(uname)
                if owner is None or owner.id == ctx.me.id:
                    continue
                try:
                    await rebalance.send_upload(ctx, owner, mp, upload_id, uname)
                except Exception as exc:  # noqa: BLE001 - retried by the next walk
                    failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(str(exc))
        return failed

    async def _wait_peers(self, deadline: float) -> None:
        ctx = self.ctx
        pending = {t.id for t in ctx.smap.targets.values() if t.id != ctx.me.id}
        while pending:
            for tid in list(pending):
                node = ctx.smap.targets.get(tid)
                if node is None:
                    pending.discard(tid)
                    continue
                try:
                    answer = await ctx.http.call_json("GET", f"{node.intra_url}{rebalance.PATH}", params={"id": self.id})
                except AisError:
                    continue   # down or restarting: it resumes this rebalance when it is back
                if answer.get("stage") in ("wait", "done"):
                    pending.discard(tid)
            if not pending:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AisError(f"targets {sorted(pending)} did not finish rebalance {self.id} in {GIVE_UP_S:.0f}s")
            await asyncio.sleep(POLL_S)


def _page(root: str, after: str) -> list[str]:
    """Blocking: up to PAGE object names under `root` after `after`, in order."""
    return [name for name, _ in itertools.islice(walk_sorted(root, "", after), PAGE)]


def follow(ctx: TargetContext, registry: "JobRegistry") -> None:
    """Run the rebalance of every new rebalance metadata version; at start-up, resume one that
    this target had not finished."""
    async def changed(rmd: RebalanceMD) -> None:
        start(ctx, registry, rmd)
    ctx.store.subscribe_doc("rmd", changed)


def start(ctx: TargetContext, registry: "JobRegistry", rmd: RebalanceMD | None) -> None:
    """Start rebalance `rmd.job_id` here unless done or running; abort older ones."""
    if rmd is None or ctx.rebalanced == rmd.job_id:
        return
    for job in list(registry.jobs.values()):
        if job.kind == RebalanceJob.kind and not job.end_ns and job.id != rmd.job_id:
            log.info("rebalance %s supersedes %s", rmd.job_id, job.id)
            job.abort()
    current = registry.jobs.get(rmd.job_id)
    if current is not None:
        if not current.end_ns:
            return
        del registry.jobs[rmd.job_id]   # finished with an error before: run it again
    log.info("starting rebalance %s (cluster map v%d)", rmd.job_id, rmd.smap_version)
    registry.start(RebalanceJob(ctx, rmd.job_id, None, None, {"smap_version": rmd.smap_version}))
