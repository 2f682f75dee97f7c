"""Node lifecycle at the primary (reference §1.5; AIStore's docs/lifecycle_node.md): maintenance
start/stop, shutdown, decommission, unsafe removal, admin join, and an explicit rebalance. Each
is one new cluster map version (or rebalance metadata version); a change of the active target
set starts a global rebalance (proxy.membership.Primary.update). The node's own part (exit,
cleanup, standby) is ais.lifecycle."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from ais import apc, lifecycle
from ais.cmap import BucketMD, ClusterMap, Node, RebalanceMD
from ais.errors import AisError, BadMessage, BadRequest, NotFound
from ais.web import ci_get, read_json
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.cluster import wait_job
from proxy.context import CTX, ProxyContext

log = logging.getLogger(__name__)

ACT_START_MAINTENANCE = "start-maintenance"
ACT_STOP_MAINTENANCE = "stop-maintenance"
ACT_DECOMMISSION_NODE = lifecycle.ACT_DECOMMISSION_NODE
ACT_SHUTDOWN_NODE = lifecycle.ACT_SHUTDOWN_NODE
ACT_RM_UNSAFE = lifecycle.ACT_RM_UNSAFE
ACTIONS = (ACT_START_MAINTENANCE, ACT_STOP_MAINTENANCE, ACT_DECOMMISSION_NODE, ACT_SHUTDOWN_NODE, ACT_RM_UNSAFE)


@dataclass(frozen=True)
class _Request:
    """The value of a node action: `{"sid" | "sids", "skip_rebalance", "rm_user_data",
    "keep_initial_config", "no_shutdown"}` (reference §1.5)."""
    sids: tuple[str, ...]
    skip_rebalance: bool = False
    rm_user_data: bool = False
    keep_initial_config: bool = False
    no_shutdown: bool = False

    @classmethod
    def parse(cls, action: str, value: Any) -> "_Request":
        if not isinstance(value, dict):
            raise BadMessage(f"{action} needs a value {{\"sid\": node ID}}")
        sids = [str(ci_get(value, "sid", "") or "")]
        extra = ci_get(value, "sids", None) or []
        if not isinstance(extra, list) or not all(isinstance(s, str) for s in extra):
            raise BadMessage(f"{action}: 'sids' must be a list of node IDs")
        sids = [s for s in dict.fromkeys(sids + extra) if s]
        if not sids:
            raise BadMessage(f"{action} needs a value {{\"sid\": node ID}}")
        flags = {}
        for key in ("skip_rebalance", "rm_user_data", "keep_initial_config", "no_shutdown"):
            v = ci_get(value, key, False)
            if not isinstance(v, bool):
                raise BadMessage(f"{action}: {key!r} must be true or false, not {v!r}")
            flags[key] = v
        return cls(tuple(sids), **flags)


async def change_node(request: web.Request, ctx: ProxyContext, action: str, value: Any) -> web.StreamResponse:
    """`PUT /v1/cluster` {"action": start-maintenance|stop-maintenance|shutdown-node|decommission-node|
    rm-unsafe, "value": {"sid": node ID, ...}}: answers the rebalance job ID, if any.

    1. flag the nodes in a new cluster map version (maintenance; decommission) and rebalance
       unless `skip_rebalance`; 2. once the rebalance has moved their data away, tell each node
       (ais.lifecycle) to exit, and drop decommissioned ones from the map. `rm-unsafe` drops
       the nodes at once, with no rebalance, and tells them to exit (or, `no_shutdown`, to stand by).
    """
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps({"action": action, "value": value}).encode())
    req = _Request.parse(action, value)
    for sid in req.sids:
        node = ctx.smap.get(sid)
        if node is None:
            raise NotFound(f"node {sid} is not in the cluster map")
        if sid == ctx.smap.primary_id and action != ACT_STOP_MAINTENANCE:
            raise BadRequest(f"{action}: {node.display} is the primary; make another proxy the primary first "
                             "(ais cluster set-primary)")
        if action in (ACT_RM_UNSAFE, ACT_DECOMMISSION_NODE) and req.no_shutdown and node.role == "proxy":
            raise BadRequest(f"{action}: no_shutdown applies to targets only; a proxy removed from the map exits")
    primary = request.app[PRIMARY]
    if action == ACT_RM_UNSAFE:
        await _rm_unsafe(ctx, primary, req)
        return web.Response(text="", content_type="text/plain")
    before = ctx.store.rmd.version if ctx.store.rmd else 0

    async def flag(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        new = smap
        for sid in req.sids:
            node = new.get(sid)
            if node is None:
                raise NotFound(f"node {sid} is not in the cluster map")
            flags = node.flags & ~(apc.FLAG_MAINTENANCE | apc.FLAG_DECOMMISSION)
            if action in (ACT_START_MAINTENANCE, ACT_SHUTDOWN_NODE):
                flags |= apc.FLAG_MAINTENANCE
            elif action == ACT_DECOMMISSION_NODE:
                flags |= apc.FLAG_DECOMMISSION
            if flags != node.flags:
                log.info("%s: %s", action, node.display)
                new = new.with_node(replace(node, flags=flags))
        return (new, None) if new is not smap else (None, None)
    await primary.update(flag, rebalance=not req.skip_rebalance)
    rmd = ctx.store.rmd
    job_id = rmd.job_id if rmd is not None and rmd.version > before else ""
    if action in (ACT_DECOMMISSION_NODE, ACT_SHUTDOWN_NODE):
        ctx.spawn(_after_rebalance(ctx, primary, action, req, job_id), name=f"{action}-{','.join(req.sids)}")
    return web.Response(text=job_id, content_type="text/plain")


async def _after_rebalance(ctx: ProxyContext, primary: Any, action: str, req: _Request, job_id: str) -> None:
    """Step 2 of shutdown and decommission: once rebalance `job_id` (if any) has moved the nodes'
    data away, tell each node to go, and drop decommissioned ones from the map (the primary
    refuses their self-registration from then on; an admin join lifts that)."""
    if job_id:
        snaps = await wait_job(ctx, job_id, poll_s=0.5)
        failed = [s for ss in snaps.values() for s in ss if s.get("aborted") or s.get("err")]
        if failed:
            log.warning("%s of %s stops here: rebalance %s did not complete (%s); the node stays in maintenance",
                        action, ",".join(req.sids), job_id, failed[0].get("err") or "aborted")
            return
    nodes = [n for n in (ctx.smap.get(sid) for sid in req.sids) if n is not None]
    if action == ACT_DECOMMISSION_NODE:
        primary.removed.update(req.sids)
    for node in nodes:
        await _tell(ctx, node, action, {"rm_user_data": req.rm_user_data, "no_shutdown": req.no_shutdown,
                                        "keep_initial_config": req.keep_initial_config})
    if action == ACT_DECOMMISSION_NODE:
        await primary.update(_drop(req.sids), rebalance=False)
        log.info("%s decommissioned and removed from the cluster map", ",".join(n.display for n in nodes))


async def _rm_unsafe(ctx: ProxyContext, primary: Any, req: _Request) -> None:
    nodes = [n for n in (ctx.smap.get(sid) for sid in req.sids) if n is not None]
    primary.removed.update(req.sids)
    for node in nodes:   # first: a node that still sent keepalives would register again
        await _tell(ctx, node, ACT_RM_UNSAFE, {"no_shutdown": req.no_shutdown})
    await primary.update(_drop(req.sids), rebalance=False)
    if not req.no_shutdown:   # restarted, such a node may register again (one in standby waits to be added)
        primary.removed.difference_update(req.sids)
    log.warning("removed %s from the cluster map without rebalance", ",".join(n.display for n in nodes))


def _drop(sids: tuple[str, ...]) -> Any:
    async def drop(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        new = smap
        for sid in sids:
            if new.get(sid) is not None:
                new = new.without_node(sid)
        return (new, None) if new is not smap else (None, None)
    return drop


async def _tell(ctx: ProxyContext, node: Node, action: str, value: dict[str, Any]) -> None:
    """Send the node its part of `action` (ais.lifecycle); a node that cannot be reached is gone already."""
    secret = ctx.cfg.cluster.secret
    try:
        await ctx.http.call("PUT", f"{node.intra_url}/v1/daemon", json_body={"action": action, "value": value},
                            headers={apc.HDR_CLUSTER_SECRET: secret} if secret else None)
    except Exception as exc:  # noqa: BLE001 - the map change goes ahead; the node learns on restart
        log.warning("%s: could not tell %s: %s", action, node.display, exc)


async def join_by_admin(request: web.Request) -> web.StreamResponse:
    """`POST /v1/cluster/join-by-admin` with the node's Snode (at least `public_net.direct_url`;
    `daemon_type` checked when given): the primary asks the node who it is, puts it in the cluster
    map (out of maintenance) and metasyncs; answers `{"daemon_id", "rebalance_id"}` (AIStore's
    JoinNodeResult). This is how a node in standby (ais.lifecycle) comes back."""
    ctx = request.app[CTX]
    body = await read_json(request)
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps(body).encode())
    if not isinstance(body, dict):
        raise BadMessage("join-by-admin needs the node as a JSON object: {\"public_net\": {\"direct_url\": URL}}")
    pub = ci_get(body, "public_net", None)
    url = str(ci_get(pub, "direct_url", "") or "") if isinstance(pub, dict) else ""
    role = str(ci_get(body, "daemon_type", "") or "")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+:\d{1,5}", url):
        raise BadMessage(f"join-by-admin: invalid node URL {url!r}: expected http(s)://HOST:PORT")
    if role not in ("", "proxy", "target"):
        raise BadMessage(f"join-by-admin: invalid role {role!r}: expected proxy or target")
    try:
        node = Node.from_wire(await ctx.http.call_json("GET", f"{url}/v1/daemon", params={apc.Q_WHAT: apc.WHAT_SNODE}))
    except (AisError, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"join-by-admin: no ais node answers at {url}: {exc}") from exc
    if role and node.role != role:
        raise BadRequest(f"join-by-admin: the node at {url} is a {node.role}, not a {role}")
    if node.role not in ("proxy", "target") or not node.id:
        raise BadRequest(f"join-by-admin: the node at {url} did not say who it is")
    primary = request.app[PRIMARY]
    before = ctx.store.rmd.version if ctx.store.rmd else 0
    primary.removed.discard(node.id)
    ctx.last_seen[node.id] = asyncio.get_running_loop().time()

    async def add(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        known = smap.get(node.id)
        if known is not None and known == replace(node, flags=known.flags) and not known.in_maintenance:
            return None, None
        log.info("admin join: %s (%s)", node.display, node.public_url)
        return smap.with_node(replace(node, flags=0)), None
    await primary.update(add)
    rmd = ctx.store.rmd
    job_id = rmd.job_id if rmd is not None and rmd.version > before else ""
    return web.json_response({"daemon_id": node.id, "rebalance_id": job_id})


async def start_rebalance(request: web.Request, ctx: ProxyContext) -> web.StreamResponse:
    """An explicit global rebalance (SDK `Job(job_kind="rebalance").start()`): a new rebalance
    metadata version; every target walks its objects again."""
    primary = request.app[PRIMARY]
    smap_version = ctx.smap.version

    def bump(rmd: RebalanceMD) -> RebalanceMD:
        return rmd.next(smap_version)
    await primary.update_doc("rmd", bump)
    rmd = ctx.store.rmd
    assert rmd is not None
    return web.Response(text=rmd.job_id, content_type="text/plain")

