"""Jobs on a target: a base class, the registry, and the static table of kinds.

Multi-object work runs as a job with an ID (given by the proxy), start and end times, object
and byte counters, an error, and abort. The proxy starts a job on every target and
aggregates their snapshots (wire: xaction snaps, reference §9).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, ClassVar

from aiohttp import web

from ais import names
from ais.errors import BadMessage, BadRequest, NotFound
from ais.names import Bucket
from ais.web import read_json
from target.context import CTX, TargetContext
from target.fs.walk import walk_sorted
from target.objects import copy_object_to, delete_local

log = logging.getLogger(__name__)

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _rfc3339(ns: int) -> str:
    if not ns:
        return _ZERO_TIME
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns % 1_000_000_000:09d}Z"


class Job:
    kind: ClassVar[str] = ""

    def __init__(self, ctx: TargetContext, job_id: str, src: Bucket | None, dst: Bucket | None, msg: dict[str, Any]) -> None:
        self.ctx, self.id, self.src, self.dst, self.msg = ctx, job_id, src, dst, msg
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.objects = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.aborted = False
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    async def _main(self) -> None:
        try:
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
            "bck": self.src.to_wire() if self.src else {},
            "src-bck": self.src.to_wire() if self.src else {},
            "dst-bck": self.dst.to_wire() if self.dst else {},
            "err": "; ".join(self.errors[:5]), "abort-err": "aborted" if self.aborted else "",
            "stats": {"loc-objs": str(self.objects), "loc-bytes": str(self.bytes), "out-objs": str(self.objects),
                      "out-bytes": str(self.bytes), "in-objs": "0", "in-bytes": "0"},
            "aborted": self.aborted, "is_idle": False, "glob.id": "0",
            "end_ns": self.end_ns,
        }


class CopyBucketJob(Job):
    """copy-bck and move-bck: send every local object of src to the owner of its name in dst."""

    kind = "copy-bck"

    async def run(self) -> None:
        assert self.src is not None and self.dst is not None
        prefix = str(self.msg.get("prefix", ""))
        prepend = str(self.msg.get("prepend", ""))
        dry_run = bool(self.msg.get("dry_run", False))
        delete_source = self.kind == "move-bck"
        sem = asyncio.Semaphore(8)

        async def one(name: str, size: int) -> None:
            async with sem:
                try:
                    if not dry_run:
                        await copy_object_to(self.ctx, self.src, name, self.dst, prepend + name)  # type: ignore[arg-type]
                        if delete_source:
                            await delete_local(self.ctx, self.src, name)  # type: ignore[arg-type]
                    self.objects += 1
                    self.bytes += size
                except Exception as exc:  # noqa: BLE001 - counted, the job goes on
                    self.errors.append(f"{name}: {exc}")

        for mp in self.ctx.mountpaths.paths:
            root = self.ctx.mountpaths.bucket_dir(mp, self.src)
            batch = await self.ctx.mountpaths.run(mp, _list_all, root, prefix)
            async with asyncio.TaskGroup() as tg:
                for name, size in batch:
                    tg.create_task(one(name, size))
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} objects failed, first: {self.errors[0]}")


class MoveBucketJob(CopyBucketJob):
    kind = "move-bck"


def _list_all(root: str, prefix: str) -> list[tuple[str, int]]:
    out = []
    for name, entry in walk_sorted(root, prefix):
        try:
            out.append((name, entry.stat().st_size))
        except FileNotFoundError:
            continue
    return out


KINDS: dict[str, Callable[..., Job]] = {cls.kind: cls for cls in (CopyBucketJob, MoveBucketJob)}


class JobRegistry:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def start(self, job: Job) -> None:
        if job.id in self.jobs:
            raise BadRequest(f"job {job.id} already exists")
        self.jobs[job.id] = job
        job.task = asyncio.create_task(job._main(), name=f"job-{job.kind}-{job.id}")

    async def stop_all(self) -> None:
        for job in self.jobs.values():
            job.abort()
        tasks = [j.task for j in self.jobs.values() if j.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


JOBS: web.AppKey[JobRegistry] = web.AppKey("jobs", JobRegistry)


async def start_job(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/jobs`: {id, kind, src, dst, msg}."""
    ctx = request.app[CTX]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadMessage("job request must be a JSON object")
    kind = body.get("kind", "")
    if kind not in KINDS:
        raise BadRequest(f"unknown job kind {kind!r}")

    def bck(d: Any) -> Bucket | None:
        if not d:
            return None
        ns = d.get("namespace") or {}
        return names.make_bucket(d["name"], d.get("provider", ""),
                                 f"@{ns.get('uuid', '')}#{ns.get('name', '')}" if ns else "")
    job = KINDS[kind](ctx, str(body["id"]), bck(body.get("src")), bck(body.get("dst")), dict(body.get("msg") or {}))
    request.app[JOBS].start(job)
    return web.json_response(job.snap())


async def get_jobs(request: web.Request) -> web.StreamResponse:
    """Intra `GET /v1/jobs[?id=][&kind=][&active=true]`: list of snapshots."""
    reg = request.app[JOBS]
    job_id = request.query.get("id", "")
    kind = request.query.get("kind", "")
    active = request.query.get("active", "") == "true"
    snaps = [j.snap() for j in reg.jobs.values()
             if (not job_id or j.id == job_id) and (not kind or j.kind == kind) and (not active or not j.end_ns)]
    return web.json_response(snaps)


async def abort_job(request: web.Request) -> web.StreamResponse:
    reg = request.app[JOBS]
    job_id = request.query.get("id", "")
    job = reg.jobs.get(job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    job.abort()
    return web.Response(status=200)
