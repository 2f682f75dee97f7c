"""Jobs on a target: a base class, the registry, and the static table of kinds.

Multi-object work runs as a job with an ID (given by the proxy), start and end times, object
and byte counters, an error, and abort. The proxy starts a job on every target and
aggregates their snapshots (wire: xaction snaps, reference §9).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from aiohttp import web

from ais import names
from ais.errors import BadMessage, BadRequest, NotFound
from ais.names import Bucket
from ais.web import read_json
from target.context import CTX
from target.jobs.etl import EtlBucketJob, EtlListJob
from target.jobs.archive import ArchiveJob
from target.jobs.base import Job
from target.jobs.copy import CopyBucketJob, MoveBucketJob
from target.jobs.ec import EcEncodeJob
from target.jobs.lru import LruJob
from target.jobs.mirror import MakeNCopiesJob, ResilverJob
from target.jobs.listrange import BlobDownloadJob, CopyListJob, DeleteListJob, EvictBucketJob, EvictListJob, PrefetchListJob

log = logging.getLogger(__name__)

KINDS: dict[str, Callable[..., Job]] = {cls.kind: cls for cls in (
    CopyBucketJob, MoveBucketJob, PrefetchListJob, EvictListJob, DeleteListJob, EvictBucketJob, BlobDownloadJob,
    CopyListJob, LruJob, ArchiveJob, EtlBucketJob, EtlListJob, MakeNCopiesJob, ResilverJob,
    EcEncodeJob)}


class JobRegistry:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def start(self, job: Job) -> None:
        if job.id in self.jobs:
            raise BadRequest(f"job {job.id} already exists")
        self.jobs[job.id] = job
        job.ctx.metrics.watch_jobs(self.jobs)   # the node's job metrics read this registry
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

    job_id, msg = body.get("id"), body.get("msg") or {}
    if not isinstance(job_id, (str, int)) or isinstance(job_id, bool) or not str(job_id) or not isinstance(msg, dict):
        raise BadMessage("job request: expected {id, kind, src, dst, msg: {...}}")

    def bck(d: Any) -> Bucket | None:
        return names.bucket_from_wire(d) if d else None
    job = KINDS[kind](ctx, str(job_id), bck(body.get("src")), bck(body.get("dst")), dict(msg))
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
