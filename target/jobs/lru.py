"""The `lru` job: capacity per mountpath and eviction of cached remote objects (DESIGN §6).

Started by the space monitor (target/space.py) when a mountpath is above the high watermark,
or explicitly (`PUT /v1/cluster` start, kind `lru`). It evicts copies of remote objects (buckets whose
`lru.enabled` prop is on) in order of last access until the mountpath is at the low
watermark. Objects read within the bucket's `lru.dont_evict_time` stay. `ais://` objects are
never candidates: they may be the only copy.

Last access: the filesystem's atime (relatime updates it at least once after each write) and
the time of every read of a remote object this process served, kept in memory.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Mapping

from ais.names import Bucket, parse_duration_s
from target.fs.walk import walk_sorted
from target.jobs.base import Job
from target.objects import delete_local

log = logging.getLogger(__name__)

def usage(mp: str, capacity_bytes: int) -> tuple[int, int]:
    """Blocking: (used, total) bytes of a mountpath."""
    if capacity_bytes <= 0:
        st = os.statvfs(mp)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize
    used = 0
    for dirpath, _, files in os.walk(mp):
        for f in files:
            try:
                used += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return used, capacity_bytes


def above_high_wm(used: int, total: int, high_wm_pct: int) -> bool:
    return total > 0 and used * 100 >= high_wm_pct * total


def _candidates(root: str) -> list[tuple[str, int, int]]:
    """Blocking: (name, atime ns, size) of every object under one bucket directory."""
    out = []
    for name, entry in walk_sorted(root):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        out.append((name, st.st_atime_ns, st.st_size))
    return out


def _lru_buckets(buckets: Mapping[Bucket, Mapping[str, Any]]) -> list[tuple[Bucket, float]]:
    """Remote buckets whose cached objects LRU may evict, with their dont-evict time."""
    out = []
    for bck, props in buckets.items():
        lru = props.get("lru") or {}
        if bck.is_ais or not lru.get("enabled", False):
            continue
        try:
            keep_s = parse_duration_s(str(lru.get("dont_evict_time", "0s")))
        except ValueError:
            keep_s = 7200.0
        out.append((bck, keep_s))
    return out


class LruJob(Job):
    kind = "lru"

    async def run(self) -> None:
        ctx, space = self.ctx, self.ctx.cfg.space
        for mp in ctx.mountpaths.paths:
            used, total = await ctx.mountpaths.run(mp, usage, mp, space.capacity_bytes)
            if not above_high_wm(used, total, space.high_wm_pct):
                continue
            goal = total * space.low_wm_pct // 100
            now = time.time_ns()
            victims: list[tuple[int, Bucket, str, int]] = []
            for bck, keep_s in _lru_buckets(ctx.bmd.buckets):
                for name, atime, size in await ctx.mountpaths.run(mp, _candidates, ctx.mountpaths.bucket_dir(mp, bck)):
                    last = max(atime, ctx.atimes.get(bck.object_uname(name), 0))
                    if now - last >= keep_s * 1e9:
                        victims.append((last, bck, name, size))
            victims.sort(key=lambda v: v[0])
            for _, bck, name, size in victims:
                if used <= goal:
                    break
                await self.pace(rw=False)
                if await delete_local(ctx, bck, name):
                    ctx.atimes.pop(bck.object_uname(name), None)
                    used -= size
                    self.objects += 1
                    self.bytes += size
            log.info("lru on %s: evicted %d objects (%d bytes), now %d of %d bytes", mp, self.objects, self.bytes,
                     used, total)


