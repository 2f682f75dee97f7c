"""Cluster-level requests at a proxy: `/v1/daemon`, `/v1/cluster`, `/v1/health`, and job status
aggregated from every target (reference §1.5, §1.6, §9)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Mapping

from aiohttp import web

from ais import apc
from ais.errors import BadMessage, BadRequest, NotFound, NotImplementedErr, ServiceUnavailable, UnknownAction
from ais.membership import daemon_answer
from ais.names import Bucket
from ais.web import ci_get, read_action, read_json
from proxy.context import CTX, ProxyContext


async def daemon(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    what = request.query.get(apc.Q_WHAT, "")
    common = daemon_answer(what, ctx.store, ctx.me, ctx.cfg.public_dict())
    if common is not None:
        return common
    if what == apc.WHAT_NODE_STATUS:
        return web.json_response({"snode": ctx.me.to_wire(), "uptime_ns": time.monotonic_ns() - ctx.started_ns,
                                  "is_primary": ctx.is_primary})
    raise BadRequest(f"unsupported 'what={what}'")


async def health(request: web.Request) -> web.StreamResponse:
    """200 once the node is in the cluster map; `prr=true` also needs a primary with targets."""
    ctx = request.app[CTX]
    if ctx.store.smap is None or ctx.me.id not in ctx.store.smap.proxies:
        raise ServiceUnavailable(f"{ctx.me.display} has not joined the cluster yet")
    if request.query.get(apc.Q_PRR) in ("true", "True", "1"):
        if not ctx.is_primary:
            raise ServiceUnavailable(f"{ctx.me.display} is not the primary")
        if not ctx.smap.active_targets():
            raise ServiceUnavailable("the primary is not ready: no targets have joined")
    uptime = str(time.monotonic_ns() - ctx.started_ns)
    return web.Response(status=200, headers={apc.HDR_NODE_UPTIME: uptime, apc.HDR_CLUSTER_UPTIME: uptime})


async def job_snaps(ctx: ProxyContext, query: Mapping[str, Any], active: bool = False) -> dict[str, list[dict[str, Any]]]:
    """{target ID: [snapshot, ...]} for the jobs matching `query` (id, kind)."""
    params = {"id": str(query.get("id") or ""), "kind": str(query.get("kind") or "")}
    if active:
        params["active"] = "true"
    targets = ctx.smap.active_targets()
    node = str(query.get("node") or "")
    if node:
        targets = [t for t in targets if t.id == node]
    results = await asyncio.gather(*(ctx.http.call_json("GET", f"{t.intra_url}/v1/jobs", params=params)
                                     for t in targets), return_exceptions=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for t, r in zip(targets, results):
        if isinstance(r, BaseException):
            continue
        if r:
            out[t.id] = r
    return out


def new_job_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in os.urandom(10))


# counts a job message may carry (AIStore's names); -1 workers means "no extra workers"
_COUNT_KEYS = ("num-workers", "chunk-size", "blob-threshold", "blob-chunk-size", "blob-num-workers")


def _check_counts(msg: Mapping[str, Any]) -> None:
    for key in _COUNT_KEYS:
        value = msg.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit() \
                or int(value) < -1:
            raise BadMessage(f"invalid {key!r} {value!r}: expected a whole number")


async def start_job(ctx: ProxyContext, kind: str, src: Bucket | None, dst: Bucket | None,
                    msg: Mapping[str, Any], targets: list[Any] | None = None) -> str:
    """Start one job on every active target (or on `targets`); its ID. A malformed count in the
    message is this request's 400, not a job that fails on every target."""
    _check_counts(msg)
    job_id = new_job_id()
    job = {"id": job_id, "kind": kind, "src": src.to_wire() if src else None,
           "dst": dst.to_wire() if dst else None, "msg": dict(msg)}
    await asyncio.gather(*(ctx.http.call("POST", f"{t.intra_url}/v1/jobs", json_body=job)
                           for t in (ctx.smap.active_targets() if targets is None else targets)))
    return job_id


async def wait_job(ctx: ProxyContext, job_id: str, poll_s: float = 0.1) -> dict[str, list[dict[str, Any]]]:
    """Until every target has finished the job; its snapshots by target."""
    while True:
        snaps = await job_snaps(ctx, {"id": job_id})
        if snaps and all(s["end_ns"] for ss in snaps.values() for s in ss):
            return snaps
        await asyncio.sleep(poll_s)


def _status_of(ctx: ProxyContext, snaps: list[dict[str, Any]]) -> dict[str, Any]:
    first = snaps[0]
    running = any(not s["end_ns"] for s in snaps) or first["id"] in ctx.finalizing
    errs = [s["err"] for s in snaps if s["err"]]
    return {"uuid": first["id"], "kind": first["kind"], "err": "; ".join(errs),
            "end_time": 0 if running else max(s["end_ns"] for s in snaps),
            "aborted": any(s["aborted"] for s in snaps), "is_idle": False}


async def _job_query(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadMessage("job query must be a JSON object")
    return {"id": ci_get(body, "id", "") or "", "kind": ci_get(body, "kind", "") or "",
            "node": ci_get(body, "node", "") or "", "show_active": bool(ci_get(body, "show_active", False))}


def _by_job(snaps: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for ss in snaps.values():
        for s in ss:
            jobs.setdefault(s["id"], []).append(s)
    return jobs


async def get_cluster(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    what = request.query.get(apc.Q_WHAT, "")
    if what in (apc.WHAT_SMAP, apc.WHAT_BMD, apc.WHAT_SNODE, apc.WHAT_CONFIG, apc.WHAT_CLUSTER_CONFIG):
        return await daemon(request)
    if what == apc.WHAT_STATUS:
        q = await _job_query(request)
        if not q.get("id"):
            raise BadRequest("job status needs a job ID")
        snaps = await job_snaps(ctx, q)
        jobs = _by_job(snaps)
        if q["id"] not in jobs:
            raise NotFound(f"job {q['id']} not found")
        return web.json_response(_status_of(ctx, jobs[q["id"]]))
    if what == apc.WHAT_STATUS_ALL:
        q = await _job_query(request)
        jobs = _by_job(await job_snaps(ctx, q, active=q.get("show_active", False)))
        return web.json_response([_status_of(ctx, ss) for ss in jobs.values()])
    if what == apc.WHAT_RUNNING_ALL:
        q = await _job_query(request)
        jobs = _by_job(await job_snaps(ctx, q, active=True))
        return web.json_response([f"{ss[0]['kind']}[{jid}]" for jid, ss in jobs.items()])
    if what == apc.WHAT_MOUNTPATHS:
        from proxy import mirror  # mirror imports this module
        return web.json_response(await mirror.mountpaths(ctx))
    if what == apc.WHAT_QUERY_STATS:
        q = await _job_query(request)
        snaps = await job_snaps(ctx, q, active=q.get("show_active", False))
        if not snaps:
            raise NotFound(f"no job matches {q}")
        return web.json_response({tid: [{k: v for k, v in s.items() if k != "end_ns"} for s in ss]
                                  for tid, ss in snaps.items()})
    raise BadRequest(f"unsupported 'what={what}'")


_STARTABLE = ("lru", "resilver")   # kinds `PUT /v1/cluster {"action": "start"}` may start (others come with their features)


async def _start(request: web.Request, ctx: ProxyContext, value: Mapping[str, Any]) -> web.StreamResponse:
    """Start a job explicitly (SDK `Job.start`): on every target, or on `DaemonID`."""
    kind = str(ci_get(value, "kind", "") or "")
    if kind == "rebalance":
        from proxy import nodes  # nodes imports proxy.buckets, which imports this module
        return await nodes.start_rebalance(request, ctx)
    if kind not in _STARTABLE:
        raise NotImplementedErr(f"starting {kind!r} jobs explicitly is not supported; startable kinds: {list(_STARTABLE)}")
    node = str(ci_get(value, "daemonid", "") or ci_get(value, "daemon_id", "") or "")
    targets = ctx.smap.active_targets()
    if node:
        targets = [t for t in targets if t.id == node]
        if not targets:
            raise NotFound(f"target {node} is not an active target of the cluster")
    job_id = await start_job(ctx, kind, None, None, {}, targets=targets)
    return web.Response(text=job_id, content_type="text/plain")


# node lifecycle actions (proxy.nodes.ACTIONS; named here because nodes imports this module)
_NODE_ACTIONS = ("start-maintenance", "stop-maintenance", "decommission-node", "shutdown-node", "rm-unsafe")


async def put_cluster(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    msg = await read_action(request)
    assert msg is not None
    if msg.action == apc.ACT_STOP:
        value = msg.value if isinstance(msg.value, dict) else {}
        job_id = str(ci_get(value, "id", "") or "")
        if not job_id:
            raise BadRequest("stop needs a job ID")
        await asyncio.gather(*(ctx.http.call("DELETE", f"{t.intra_url}/v1/jobs", params={"id": job_id})
                               for t in ctx.smap.active_targets()), return_exceptions=True)
        return web.Response(status=200)
    if msg.action == apc.ACT_START:
        return await _start(request, ctx, msg.value if isinstance(msg.value, dict) else {})
    if msg.action in _NODE_ACTIONS:
        from proxy import nodes  # nodes imports proxy.buckets, which imports this module
        return await nodes.change_node(request, ctx, msg.action, msg.value)
    if msg.action in (apc.ACT_SET_CONFIG, apc.ACT_RESET_CONFIG):
        from proxy import config  # config forwards through proxy.buckets, which imports this module
        return await config.change_config(request, msg.action, msg.value)
    raise UnknownAction(f"unknown cluster action {msg.action!r}")


async def set_primary(request: web.Request) -> web.StreamResponse:
    """`PUT /v1/cluster/proxy/<id>`: hand primacy to another proxy (reference §3.4, manual failback)."""
    from proxy import election  # election imports proxy.buckets, which imports this module
    return await election.set_primary(request)
