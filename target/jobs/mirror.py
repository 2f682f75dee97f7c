"""make-n-copies and resilver: jobs that walk a target's objects and put every main copy on its
HRW mountpath and its mirror copies on the next ones (target/mirror.py does one object).

- `make-n-copies` (bucket action, value n): one bucket, n copies per object (1 removes copies).
- `resilver` (started by the target itself after a mountpath is attached, detached, enabled or
  disabled): every bucket on disk, with the copies its props ask for. A later mountpath change
  aborts a running resilver and starts a new one, which covers what the first one left.
"""

from __future__ import annotations

import asyncio
import logging

from ais.errors import BadRequest
from ais.names import Bucket
from target import mirror
from target.fs.walk import walk_sorted
from target.jobs.base import Job

log = logging.getLogger(__name__)


def _names(root: str) -> list[str]:
    return [name for name, _ in walk_sorted(root)]


class _ReconcileJob(Job):
    """Reconcile every object of a bucket (main copies in `%ob`, then copies in `%cp` whose
    main copy was not seen), one at a time, paced by the load monitor."""

    async def reconcile_bucket(self, bck: Bucket, wanted: int) -> None:
        mps = self.ctx.mountpaths
        seen: set[str] = set()
        for root_of in (mps.bucket_dir, mps.copy_dir):
            for mp in mps.readable:
                try:
                    names = await mps.run(mp, _names, root_of(mp, bck))
                except OSError as exc:
                    self.errors.append(f"{mp}: {exc}")
                    continue
                for name in names:
                    if name in seen:
                        continue
                    seen.add(name)
                    await self.pace()
                    try:
                        out = await mirror.reconcile(self.ctx, bck, name, wanted)
                    except Exception as exc:  # noqa: BLE001 - counted, the job goes on
                        self.errors.append(f"{bck.object_cname(name)}: {exc}")
                        continue
                    self.objects += 1
                    self.bytes += out.bytes_written

    def check(self) -> None:
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} errors, first: {self.errors[0]}")


class MakeNCopiesJob(_ReconcileJob):
    kind = "make-n-copies"

    async def run(self) -> None:
        if self.src is None:
            raise BadRequest("make-n-copies needs a bucket")
        copies = self.msg.get("copies")
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise BadRequest(f"make-n-copies: invalid number of copies {copies!r}")
        await self.reconcile_bucket(self.src, copies)
        self.check()


class ResilverJob(_ReconcileJob):
    kind = "resilver"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.detaching = self.ctx.mountpaths.detaching   # detached when this job finishes cleanly

    async def run(self) -> None:
        mps = self.ctx.mountpaths
        bmd = self.ctx.store.bmd
        if bmd is None:
            return
        by_rel = {mps.bucket_rel(b): b for b in bmd.buckets}
        on_disk = await asyncio.get_running_loop().run_in_executor(None, mps.local_buckets)
        for rel in sorted(on_disk):
            bck = by_rel.get(rel)
            props = bmd.get(bck) if bck is not None else None
            if bck is None or props is None:
                continue
            await self.reconcile_bucket(bck, mirror.copies_wanted(props))
        self.check()
