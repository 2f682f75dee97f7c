"""The base class of every job on a target: ID, kind, buckets, times, counters, errors, abort,
and AIStore's snapshot shape (reference §9)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from ais.names import Bucket
from target.context import TargetContext
from target.load import Advice

log = logging.getLogger(__name__)

_ZERO_TIME = "0001-01-01T00:00:00Z"


# kinds that AIStore keeps alive and idle between uses; the SDK waits for them to report idle
IDLE_KINDS = frozenset({"ec-get", "ec-put", "ec-resp", "put-copies", "archive", "copy-listrange", "etl-listrange",
                        "download", "list", "get-batch"})

_NO_BUCKET = {"name": "", "provider": "", "namespace": {"uuid": "", "name": ""}}


def _rfc3339(ns: int) -> str:
    if not ns:
        return _ZERO_TIME
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 1_000_000_000:09d}Z"


REBALANCE_IDLE_S = 5.0   # a pending rebalance not running this long (it failed, or never started): go on


class Job:
    kind: ClassVar[str] = ""
    # walks this target's objects: starts once a running rebalance is over, since an object on
    # the move could be missed by both its old owner's walk and its new owner's
    walks_local: ClassVar[bool] = False

    def __init__(self, ctx: TargetContext, job_id: str, src: Bucket | None, dst: Bucket | None, msg: dict[str, Any]) -> None:
        self.ctx, self.id, self.src, self.dst, self.msg = ctx, job_id, src, dst, msg
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.objects = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.aborted = False
        self.task: asyncio.Task[None] | None = None
        self._ops = 0
        self._advice: Advice | None = None

    async def pace(self, rw: bool = True) -> None:
        """Call once per object: every few objects (more often under load) ask the load monitor
        and sleep what it advises, so background work yields to foreground requests (reference §10)."""
        self._ops += 1
        if not self.ctx.cfg.load.pace_jobs:
            return
        if self._advice is None or self._advice.should_check(self._ops):
            self._advice = self.ctx.load.advice(rw=rw)
            if self._advice.sleep_s > 0:
                await asyncio.sleep(self._advice.sleep_s)
        if rw and self.ctx.load.foreground_active():
            # foreground reads win: while clients read from this target, each object of
            # background data movement waits a little (beyond AIStore's advice, which only
            # reacts once a resource is graded High)
            await asyncio.sleep(self.ctx.cfg.load.foreground_yield_ms / 1000)

    def workers(self, wanted: int) -> int:
        """How many objects to work on at once: `wanted`, fewer under load."""
        return self.ctx.load.workers(wanted) if self.ctx.cfg.load.pace_jobs else wanted

    def gate(self, wanted: int) -> "WorkerGate":
        """A limit on objects in flight that follows the load as the job runs (see WorkerGate)."""
        return WorkerGate(self, wanted)

    async def run(self) -> None:
        raise NotImplementedError

    async def _after_rebalance(self) -> None:
        """Wait while a rebalance runs here (or its metadata came and it is about to start)."""
        from target import rebalance  # the rebalance job imports this module
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        while rebalance.rebalance_pending(self.ctx):
            if self.ctx.rebalancing:
                idle_since = None
            elif idle_since is None:
                idle_since = loop.time()
            elif loop.time() - idle_since > REBALANCE_IDLE_S:
                log.warning("job %s[%s]: a rebalance is pending but not running here; going on", self.kind, self.id)
                return
            await asyncio.sleep(0.25)

    async def _main(self) -> None:
        try:
            if self.walks_local:
                await self._after_rebalance()
            await self.run()
        except asyncio.CancelledError:
            self.aborted = True
        except Exception as exc:  # noqa: BLE001 - a job's failure is its status, not a crash
            log.exception("job %s[%s] failed", self.kind, self.id)
            self.errors.append(str(exc))
        finally:
            self.end_ns = time.time_ns()

    def abort(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def snap(self) -> dict[str, Any]:
        """AIStore's job snapshot shape (core/xaction_wire.go)."""
        return {
            "id": self.id, "kind": self.kind,
            "start-time": _rfc3339(self.start_ns), "end-time": _rfc3339(self.end_ns),
            "bck": self.src.to_wire() if self.src else _NO_BUCKET,
            "src-bck": self.src.to_wire() if self.src else _NO_BUCKET,
            "dst-bck": self.dst.to_wire() if self.dst else _NO_BUCKET,
            "err": "; ".join(self.errors[:5]), "abort-err": "aborted" if self.aborted else "",
            "stats": {"loc-objs": str(self.objects), "loc-bytes": str(self.bytes), "out-objs": str(self.objects),
                      "out-bytes": str(self.bytes), "in-objs": "0", "in-bytes": "0"},
            "aborted": self.aborted, "is_idle": bool(self.end_ns) and self.kind in IDLE_KINDS, "glob.id": "0",
            "end_ns": self.end_ns,
        }


class WorkerGate:
    """Admits up to `wanted` objects of a job at once, fewer as load grows, and one at a time
    while clients read from this target: foreground reads keep their latency while a job
    moves data (with pacing off, always `wanted`)."""

    def __init__(self, job: Job, wanted: int) -> None:
        self.job, self.wanted = job, max(wanted, 1)
        self.active = 0
        self._cond = asyncio.Condition()

    def limit(self) -> int:
        ctx = self.job.ctx
        if ctx.cfg.load.pace_jobs and ctx.load.foreground_active():
            return 1
        return self.job.workers(self.wanted)

    async def __aenter__(self) -> None:
        async with self._cond:
            while self.active >= self.limit():
                try:   # re-checked when a worker leaves, and at least every 100 ms as load changes
                    await asyncio.wait_for(self._cond.wait(), 0.1)
                except TimeoutError:
                    pass
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify()
