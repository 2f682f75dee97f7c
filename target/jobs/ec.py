"""The `ec-encode` job: erasure-code the objects a bucket had before EC was turned on on it (or
encoded under another scheme), as AIStore does when `ec.enabled` becomes true.

Every target walks its own objects of the bucket and encodes those it owns (HRW) that have no EC
metadata of the bucket's current scheme here (`target.ec.protect_object`). Objects written while
it runs are encoded by their PUT; the per-object encoding lock keeps the two apart.
"""

from __future__ import annotations

import asyncio
import itertools

from ais.ec import EcConf
from ais.errors import AisError
from target import ec
from target.fs.walk import walk_sorted
from target.jobs.base import Job

PAGE = 1000
WORKERS = 4
PROPS_WAIT_S = 10.0   # the bucket metadata that enabled EC may still be on its way here


class EcEncodeJob(Job):
    kind = "ec-encode"

    async def run(self) -> None:
        assert self.src is not None
        bck, ctx = self.src, self.ctx
        props = await self._ec_props()
        conf = EcConf.from_props(props)
        gate = self.gate(WORKERS)
        failed = 0

        async def one(name: str, size: int) -> None:
            nonlocal failed
            async with gate:
                await self.pace()
                try:
                    if not await ec.needs_encoding(ctx, bck, name, conf, size):
                        return
                    if await ec.protect_object(ctx, bck, name, props):
                        self.objects += 1
                        self.bytes += size
                    else:
                        failed += 1
                except Exception as exc:  # noqa: BLE001 - counted, the job goes on
                    failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(f"{name}: {exc}")

        for mp in ctx.mountpaths.paths:
            root = ctx.mountpaths.bucket_dir(mp, bck)
            after = ""
            while page := await ctx.mountpaths.run(mp, _page, root, after):
                after = page[-1][0]
                smap = ctx.smap
                async with asyncio.TaskGroup() as tg:
                    for name, size in page:
                        if size < 0:
                            continue   # gone meanwhile
                        owner = smap.owner(bck.object_uname(name))
                        if owner is not None and owner.id == ctx.me.id:
                            tg.create_task(one(name, size))
        if failed:
            raise AisError(f"{failed} objects of {bck.cname} were not (fully) erasure-coded"
                           + (f"; first error: {self.errors[0]}" if self.errors else " (too few targets)"))

    async def _ec_props(self) -> dict[str, object]:
        assert self.src is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROPS_WAIT_S
        while True:
            props = self.ctx.bucket_props(self.src)
            if ec.enabled(self.src, props):
                return dict(props)
            if loop.time() > deadline:
                raise AisError(f"erasure coding is not enabled on {self.src.cname}")
            await asyncio.sleep(0.1)


def _page(root: str, after: str) -> list[tuple[str, int]]:
    """Blocking: up to PAGE (object name, size; -1 if gone) under `root` after `after`, in order."""
    out = []
    for name, entry in itertools.islice(walk_sorted(root, "", after), PAGE):
        try:
            out.append((name, entry.stat().st_size))
        except FileNotFoundError:
            out.append((name, -1))
    return out
