"""A target's ETL routes, all on the intra-cluster listener.

Proxy -> target (`/v1/etl/_t/<name>/<verb>`): init (start and wait for health), stop,
logs, health, metrics, errors, stats. Transformer -> target (`/v1/etl/_object/<name>/<secret>/
<bucket>/<object>`): GET an object (hpull without a local path) and PUT a transformed object
(direct put from an offline job), authorised by the ETL's secret.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ais import apc, names
from ais.cmap import bucket_id
from ais.errors import BadMessage, Forbidden, ObjectNotFound
from ais.etl import EtlEntry, EtlNotFound
from ais.names import Bucket
from ais.web import read_json
from target.context import CTX, TargetContext
from target.etl.manager import CALLBACK_PATH, EtlManager
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.jobs import JOBS
from target.objects import commit_object, receive_body, serve_file

T_PATH = "/v1/etl/_t"


def manager(request: web.Request) -> EtlManager:
    mgr = request.app[CTX].etl
    assert mgr is not None, "ETL manager not set up"
    return mgr


async def init_etl(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadMessage("ETL init request must be a JSON object")
    entry = EtlEntry.from_wire(body)
    await manager(request).init(entry)
    return web.Response(status=200)


async def stop_etl(request: web.Request) -> web.StreamResponse:
    stopped = await manager(request).stop(request.match_info["name"])
    return web.json_response({"stopped": stopped})


def _running(request: web.Request) -> Any:
    name = request.match_info["name"]
    running = manager(request).etls.get(name)
    if running is None:
        raise EtlNotFound(name)
    return running


async def etl_logs(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    logs = await _running(request).runtime.logs()
    return web.json_response({"target_id": ctx.me.id, "logs": base64.b64encode(logs).decode()})


async def etl_health(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    running = manager(request).etls.get(request.match_info["name"])
    status = "not running" if running is None else await running.runtime.health()
    return web.json_response({"target_id": ctx.me.id, "health_status": status})


async def etl_metrics(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    usage = await _running(request).runtime.usage()
    return web.json_response({"target_id": ctx.me.id, **usage})


async def etl_errors(request: web.Request) -> web.StreamResponse:
    """Object errors of the inline transforms, or (`uuid=`) of one offline job."""
    from target import jobs   # jobs imports the ETL job kinds, which import this package
    job_id = request.query.get(apc.Q_UUID, "")
    if job_id:
        job = request.app[jobs.JOBS].jobs.get(job_id)
        return web.json_response(list(getattr(job, "obj_errors", [])) if job is not None else [])
    running = manager(request).etls.get(request.match_info["name"])
    return web.json_response(list(running.errors) if running is not None else [])


async def etl_stats(request: web.Request) -> web.StreamResponse:
    """Per running ETL: state, restarts, objects and bytes transformed here."""
    return web.json_response({name: {"state": r.runtime.state, "restarts": r.runtime.restarts, "obj_count": r.objects,
                                     "in_bytes": r.in_bytes, "out_bytes": r.out_bytes, "pid": getattr(r.runtime, "pid", None)}
                              for name, r in manager(request).etls.items()})


# --- transformer -> target ---------------------------------------------------------------------

def _callback_target(request: web.Request) -> tuple[TargetContext, Bucket, str]:
    ctx = request.app[CTX]
    name = request.match_info["name"]
    md = ctx.store.etl
    entry = md.get(name) if md is not None else None
    running = ctx.etl.etls.get(name) if ctx.etl is not None else None
    secret = entry.secret if entry is not None else running.entry.secret if running is not None else ""
    if not secret or not hmac.compare_digest(secret, request.match_info["secret"]):
        raise Forbidden(f"etl[{name}]: invalid or unknown ETL secret")
    # `<bucket>/<object>`, possibly sent as one escaped segment (the SDK's servers quote the '/')
    rest = request.match_info["rest"]
    bucket, sep, obj = rest.partition("/")
    if not sep:
        bucket, _, obj = unquote(rest).partition("/")
    q = request.query
    bck = names.make_bucket(bucket, q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    return ctx, bck, names.check_object_name(obj)


async def callback_get(request: web.Request) -> web.StreamResponse:
    """hpull without a local path: the transformer reads the object here."""
    ctx, bck, obj = _callback_target(request)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    opened = await ctx.mountpaths.run(mp, fsmeta.open_object, path)
    if opened is None:
        raise ObjectNotFound(bck.object_cname(obj))
    f, meta = opened
    try:
        return await serve_file(request, ctx, mp, f, 200, {"Content-Type": "application/octet-stream"}, 0, meta.size)
    finally:
        f.close()


async def callback_put(request: web.Request) -> web.StreamResponse:
    """Direct put: a transformer delivers an offline job's result to this, its owner. Only into
    the destination of a transform job of this ETL (`xid`): a transformer writes nothing else."""
    ctx, bck, obj = _callback_target(request)
    await _require_job_destination(request, request.match_info["name"], bck)
    props = ctx.bucket_props(bck)
    mp, _ = ctx.mountpaths.object_path(bck, obj)
    work = ctx.mountpaths.work_path(mp)
    rec = await receive_body(request, ctx, mp, work)
    meta = ObjectMeta(size=rec.size, cksum_type="xxhash", cksum_value=rec.hasher.hexdigest(),
                      bid=bucket_id(props))
    await commit_object(ctx, bck, obj, mp, work, meta, props)
    return web.Response(status=200)


_ETL_JOB_KINDS = ("etl-bck", "etl-listrange")
JOB_START_WAIT_S = 5.0   # a peer may start sending before the job has started here


async def _require_job_destination(request: web.Request, name: str, bck: Bucket) -> None:
    job_id = request.query.get("xid", "")
    registry = request.app[JOBS]
    deadline = asyncio.get_running_loop().time() + JOB_START_WAIT_S
    job = registry.jobs.get(job_id)
    while job is None and job_id and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        job = registry.jobs.get(job_id)
    stages = {str(job.msg.get("id") or ""), *map(str, job.msg.get("pipeline") or ())} if job is not None else set()
    if job is None or job.kind not in _ETL_JOB_KINDS or job.dst != bck or name not in stages:
        raise Forbidden(f"etl[{name}]: writing to {bck.cname} is not part of a transform job of this ETL "
                        f"(job {job_id or '-'})")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(f"{T_PATH}/init", init_etl)
    r.add_post(T_PATH + "/{name}/stop", stop_etl)
    r.add_get(T_PATH + "/{name}/logs", etl_logs)
    r.add_get(T_PATH + "/{name}/health", etl_health)
    r.add_get(T_PATH + "/{name}/metrics", etl_metrics)
    r.add_get(T_PATH + "/{name}/errors", etl_errors)
    r.add_get(f"{T_PATH}/stats", etl_stats)
    cb = CALLBACK_PATH + "/{name}/{secret}/{rest:.+}"
    r.add_get(cb, callback_get, allow_head=False)
    r.add_put(cb, callback_put)
