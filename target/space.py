"""The space monitor: every `space.check_interval_s` it measures each mountpath and starts an
`lru` job (target/jobs/lru.py) when one is above the high watermark, one job at a time."""

from __future__ import annotations

import asyncio
import logging

from target.context import TargetContext
from target.jobs import JobRegistry
from target.jobs.lru import LruJob, above_high_wm, usage

log = logging.getLogger(__name__)


class SpaceMonitor:
    """Starts an `lru` job whenever a mountpath is above the high watermark (one at a time)."""

    def __init__(self, ctx: TargetContext, registry: JobRegistry) -> None:
        self.ctx, self.registry = ctx, registry
        self.running: LruJob | None = None
        self.runs = 0

    async def loop(self) -> None:
        await self.measure()   # a quota holds from the first write
        while True:
            await asyncio.sleep(self.ctx.cfg.space.check_interval_s)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the monitor outlives one bad check
                log.exception("space check failed")

    async def measure(self) -> dict[str, tuple[int, int]]:
        """(used, total) bytes per mountpath; with a quota, the usage it counts writes against."""
        ctx, out = self.ctx, {}
        capacity = ctx.cfg.space.capacity_bytes
        for mp in ctx.mountpaths.paths:
            out[mp] = await ctx.mountpaths.run(mp, usage, mp, capacity)
            if capacity > 0:
                ctx.quota.measured(mp, out[mp][0])
        return out

    async def check(self) -> None:
        ctx = self.ctx
        measured = await self.measure()
        if ctx.store.bmd is None or (self.running is not None and not self.running.end_ns):
            return
        space = ctx.cfg.space
        for mp, (used, total) in measured.items():
            if above_high_wm(used, total, space.high_wm_pct):
                self.runs += 1
                self.running = LruJob(ctx, f"lru-{ctx.me.id}-{self.runs}", None, None, {})
                self.registry.start(self.running)
                return
