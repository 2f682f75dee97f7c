"""The `/v1/etl` API at a proxy (reference §6.1) and the offline transform actions of buckets.

Init is two-phase: every active target starts the transformer and waits for its health
(phase 1); only when all succeeded does the primary add the ETL to the ETL metadata and
metasync it (phase 2); otherwise every target drops it again and the first failure is the
answer. Stop and delete change the metadata first (so no target restarts the ETL from it),
then stop the transformers everywhere; start repeats phase 1. Reads (list, show, logs,
health, metrics) gather from the targets. Changes at a non-primary proxy go to the primary.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Awaitable, Callable, Mapping

import aiohttp
from aiohttp import web

from ais import apc, names
from ais.cmap import Node
from ais.errors import BadMessage, BadRequest, Conflict, ServiceUnavailable
from ais.etl import (ACT_ETL_BCK, ACT_ETL_LIST, STAGE_ABORTED, STAGE_RUNNING, EtlEntry, EtlExists, EtlMD,
                     EtlNotFound, InitMsg, validate_name)
from ais.intra import PeerError
from ais.template import parse_selection
from ais.web import ActionMsg, parse_json, read_body
from proxy.buckets import PRIMARY, _ensure_destination
from proxy.cluster import new_job_id, start_job
from proxy.context import CTX, ProxyContext
from proxy.membership import Primary
from proxy.remote import require_bucket

T_PATH = "/v1/etl/_t"
_BUSY: web.AppKey[set[str]] = web.AppKey("etl-busy", set)   # ETL names with a change in progress here
_CHANGE_SLACK_S = 30.0


def _entry(ctx: ProxyContext, name: str) -> EtlEntry:
    md = ctx.store.etl
    entry = md.get(name) if md is not None else None
    if entry is None:
        raise EtlNotFound(name)
    return entry


async def _broadcast(ctx: ProxyContext, method: str, path: str, *, body: Any = None, timeout_s: float | None = None,
                     params: Mapping[str, str] | None = None,
                     targets: list[Node] | None = None) -> list[tuple[Node, Any]]:
    """Call every active target; (target, parsed answer or the exception)."""
    nodes = ctx.smap.active_targets() if targets is None else targets

    async def one(t: Node) -> Any:
        return await ctx.http.call_json(method, f"{t.intra_url}{path}", json_body=body, params=params,
                                        timeout_s=timeout_s)
    results = await asyncio.gather(*(one(t) for t in nodes), return_exceptions=True)
    return list(zip(nodes, results))


def _first_error(results: list[tuple[Node, Any]]) -> BaseException | None:
    return next((r for _, r in results if isinstance(r, BaseException)), None)


async def _forward(request: web.Request, ctx: ProxyContext, body: bytes) -> web.StreamResponse:
    """A change at a non-primary proxy: the primary does it (init may take minutes)."""
    url = f"{ctx.smap.primary.public_url}{request.raw_path}"
    try:
        async with ctx.http.session.request(request.method, url, data=body,
                                            headers=ctx.http.headers({"Content-Type": apc.JSON}),
                                            timeout=ctx.http.control_timeout(600)) as r:
            return web.Response(status=r.status, body=await r.read(),
                                content_type=r.content_type or "text/plain")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ServiceUnavailable(f"cannot reach the primary: {exc}") from exc


def _primary_only(handler: Callable[[web.Request, ProxyContext, Primary, bytes], Awaitable[web.StreamResponse]]) \
        -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CTX]
        body = await read_body(request)
        if not ctx.is_primary:
            return await _forward(request, ctx, body)
        return await handler(request, ctx, request.app[PRIMARY], body)
    return wrapped


class _Busy:
    """One change at a time per ETL name (409 for a second one meanwhile)."""

    def __init__(self, request: web.Request, name: str) -> None:
        self.busy, self.name = request.app[_BUSY], name

    def __enter__(self) -> None:
        if self.name in self.busy:
            raise Conflict(f"etl[{self.name}]: another init, start, stop or delete is in progress")
        self.busy.add(self.name)

    def __exit__(self, *exc: object) -> None:
        self.busy.discard(self.name)


async def _start_everywhere(ctx: ProxyContext, entry: EtlEntry) -> None:
    """Phase 1: every target starts the transformer; on any failure all drop it again."""
    init = entry.init
    results = await _broadcast(ctx, "POST", f"{T_PATH}/init", body=entry.to_wire(),
                               timeout_s=init.init_timeout_s + _CHANGE_SLACK_S)
    err = _first_error(results)
    if err is not None:
        await _broadcast(ctx, "POST", f"{T_PATH}/{init.name}/stop", timeout_s=_CHANGE_SLACK_S)
        if isinstance(err, PeerError):
            raise err
        raise ServiceUnavailable(f"etl[{init.name}]: starting the transformers failed: {err}")


# --- changes (primary) ---------------------------------------------------------------------

@_primary_only
async def init_etl(request: web.Request, ctx: ProxyContext, primary: Primary, body: bytes) -> web.StreamResponse:
    """`PUT /v1/etl` with ETLSpecMsg: the job ID as text."""
    raw = parse_json(body or b"null", "ETL init message")
    init = InitMsg.parse(raw)
    if not ctx.smap.active_targets():
        raise ServiceUnavailable("the cluster has no active targets")
    with _Busy(request, init.name):
        md = ctx.store.etl
        if md is not None and md.get(init.name) is not None:
            raise EtlExists(init.name)
        entry = EtlEntry(msg=dict(raw), stage=STAGE_RUNNING, secret=secrets.token_hex(16), job_id=new_job_id())
        await _start_everywhere(ctx, entry)

        def add(md: EtlMD) -> EtlMD:
            if md.get(init.name) is not None:
                raise EtlExists(init.name)
            return md.with_etl(init.name, entry)
        await primary.update_etl(add)
    return web.Response(text=entry.job_id, content_type="text/plain")


async def _set_stage(primary: Primary, name: str, stage: str) -> None:
    def change(md: EtlMD) -> EtlMD | None:
        entry = md.get(name)
        if entry is None:
            raise EtlNotFound(name)
        if entry.stage == stage:
            return None
        return md.with_etl(name, EtlEntry(entry.msg, stage, entry.secret, entry.job_id))
    await primary.update_etl(change)


@_primary_only
async def stop_etl(request: web.Request, ctx: ProxyContext, primary: Primary, _: bytes) -> web.StreamResponse:
    name = request.match_info["name"]
    _entry(ctx, name)
    with _Busy(request, name):
        await _set_stage(primary, name, STAGE_ABORTED)
        err = _first_error(await _broadcast(ctx, "POST", f"{T_PATH}/{name}/stop", timeout_s=_CHANGE_SLACK_S))
        if err is not None:
            raise ServiceUnavailable(f"etl[{name}]: stopping the transformers failed: {err}")
    return web.Response(status=200)


@_primary_only
async def start_etl(request: web.Request, ctx: ProxyContext, primary: Primary, _: bytes) -> web.StreamResponse:
    name = request.match_info["name"]
    entry = _entry(ctx, name)
    with _Busy(request, name):
        await _start_everywhere(ctx, entry)
        await _set_stage(primary, name, STAGE_RUNNING)
    return web.Response(status=200)


@_primary_only
async def delete_etl(request: web.Request, ctx: ProxyContext, primary: Primary, _: bytes) -> web.StreamResponse:
    name = request.match_info["name"]
    _entry(ctx, name)
    with _Busy(request, name):
        def remove(md: EtlMD) -> EtlMD:
            if md.get(name) is None:
                raise EtlNotFound(name)
            return md.without(name)
        await primary.update_etl(remove)
        err = _first_error(await _broadcast(ctx, "POST", f"{T_PATH}/{name}/stop", timeout_s=_CHANGE_SLACK_S))
        if err is not None:
            raise ServiceUnavailable(f"etl[{name}]: stopping the transformers failed: {err}")
    return web.Response(status=200)


# --- reads (any proxy) -----------------------------------------------------------------------

async def list_etls(request: web.Request) -> web.StreamResponse:
    """`GET /v1/etl`: every ETL with its stage and the objects and bytes its targets transformed."""
    ctx = request.app[CTX]
    md = ctx.store.etl or EtlMD(version=0)
    stats = await _broadcast(ctx, "GET", f"{T_PATH}/stats", timeout_s=ctx.cfg.timeouts.control_s) if md.etls else []
    out = []
    for name, entry in md.etls.items():
        row: dict[str, Any] = {"id": name, "stage": entry.stage, "xaction_id": entry.job_id, "obj_count": 0, "in_bytes": 0,
               "out_bytes": 0}
        for _, per_target in stats:
            if isinstance(per_target, dict) and isinstance(per_target.get(name), dict):
                for key in ("obj_count", "in_bytes", "out_bytes"):
                    row[key] += int(per_target[name].get(key, 0))
        out.append(row)
    return web.json_response(out)


async def show_etl(request: web.Request) -> web.StreamResponse:
    """`GET /v1/etl/<name>[?uuid=<job>]`: the init message and the object errors (inline, or of one job)."""
    ctx = request.app[CTX]
    name = request.match_info["name"]
    entry = _entry(ctx, name)
    params = {apc.Q_UUID: request.query[apc.Q_UUID]} if request.query.get(apc.Q_UUID) else None
    results = await _broadcast(ctx, "GET", f"{T_PATH}/{name}/errors", params=params,
                               timeout_s=ctx.cfg.timeouts.control_s)
    errors = [e for _, r in results if isinstance(r, list) for e in r]
    return web.json_response({"init_msg": dict(entry.msg), "obj_errors": errors, "stage": entry.stage})


def _per_target(what: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CTX]
        name = request.match_info["name"]
        _entry(ctx, name)
        targets = ctx.smap.active_targets()
        tid = request.match_info.get("target", "")
        if tid:
            targets = [t for t in targets if t.id == tid]
            if not targets:
                raise BadRequest(f"target {tid} is not an active target of the cluster")
        results = await _broadcast(ctx, "GET", f"{T_PATH}/{name}/{what}", targets=targets,
                                   timeout_s=ctx.cfg.timeouts.control_s)
        out = []
        for t, r in results:
            if isinstance(r, BaseException):
                msg = r.message if isinstance(r, PeerError) else str(r)
                out.append({"target_id": t.id, "health_status": msg} if what == "health" else
                           {"target_id": t.id, "error": msg, **({"logs": ""} if what == "logs" else {})})
            else:
                out.append(r)
        return web.json_response(out)
    return handle


# --- offline transforms: bucket actions --------------------------------------------------------

def _require_running(ctx: ProxyContext, name: str) -> None:
    validate_name(name)
    if _entry(ctx, name).stage != STAGE_RUNNING:
        raise Conflict(f"etl[{name}] is stopped: start it first")


async def transform(request: web.Request, ctx: ProxyContext, primary: Primary, src: names.Bucket,
                    msg: ActionMsg) -> web.StreamResponse:
    """etl-bck (destination in `bck_to`) and etl-listrange (in `tobck`): a job on every target."""
    value = dict(msg.value) if isinstance(msg.value, dict) else {}
    name = str(value.get("id") or "")
    if not name:
        raise BadMessage(f"{msg.action} needs the ETL's name in 'id'")
    _require_running(ctx, name)
    for stage in value.get("pipeline") or []:
        _require_running(ctx, str(stage))
    if msg.action == ACT_ETL_BCK:
        to = request.query.get(apc.Q_BCK_TO, "")
        if not to:
            raise BadRequest(f"{msg.action} needs the destination bucket in '{apc.Q_BCK_TO}'")
        dst = names.parse_uname_bucket(to)
    else:
        tobck = value.get("tobck")
        if not isinstance(tobck, dict) or not tobck.get("name"):
            raise BadMessage(f"{msg.action} needs the destination bucket in 'tobck'")
        dst = names.bucket_from_wire(tobck)
        parse_selection(value)
    names.check_prepend(value.get("prepend"))
    dry_run = bool(value.get("dry_run", False))
    if dst == src and not dry_run:
        raise BadRequest(f"source and destination are the same bucket {src.cname} (use dry_run to inspect)")
    await require_bucket(request, src)
    if not dry_run:
        await _ensure_destination(primary, src, dst)
    job_id = await start_job(ctx, msg.action, src, dst, value)
    return web.Response(text=job_id, content_type="text/plain")


ACTIONS = (ACT_ETL_BCK, ACT_ETL_LIST)


def add_routes(app: web.Application) -> None:
    app[_BUSY] = set()
    r = app.router
    r.add_put("/v1/etl", init_etl)
    r.add_get("/v1/etl", list_etls, allow_head=False)
    r.add_get("/v1/etl/{name}", show_etl, allow_head=False)
    r.add_post("/v1/etl/{name}/stop", stop_etl)
    r.add_post("/v1/etl/{name}/start", start_etl)
    r.add_delete("/v1/etl/{name}", delete_etl)
    for what in ("logs", "health", "metrics"):
        r.add_get(f"/v1/etl/{{name}}/{what}", _per_target(what), allow_head=False)
    r.add_get("/v1/etl/{name}/logs/{target}", _per_target("logs"), allow_head=False)
