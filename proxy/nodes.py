"""Node lifecycle at the primary (reference §1.5): maintenance start/stop, decommission, and an
explicit rebalance. Each is one new cluster map version (or rebalance metadata version); a
change of the active target set starts a global rebalance (proxy.membership.Primary.update)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from aiohttp import web

from ais import apc
from ais.cmap import BucketMD, ClusterMap, RebalanceMD
from ais.errors import BadMessage, NotFound
from ais.web import ci_get
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.cluster import wait_job
from proxy.context import ProxyContext

log = logging.getLogger(__name__)

ACT_START_MAINTENANCE = "start-maintenance"
ACT_STOP_MAINTENANCE = "stop-maintenance"
ACT_DECOMMISSION_NODE = "decommission-node"
ACTIONS = (ACT_START_MAINTENANCE, ACT_STOP_MAINTENANCE, ACT_DECOMMISSION_NODE)


async def change_node(request: web.Request, ctx: ProxyContext, action: str, value: Any) -> web.StreamResponse:
    """`PUT /v1/cluster` {"action": start-maintenance|stop-maintenance|decommission-node,
    "value": {"sid": node ID, "skip_rebalance": bool}}: answers the rebalance job ID, if any."""
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps({"action": action, "value": value}).encode())
    if not isinstance(value, dict) or not str(ci_get(value, "sid", "") or ""):
        raise BadMessage(f"{action} needs a value {{\"sid\": node ID}}")
    sid = str(ci_get(value, "sid", ""))
    primary = request.app[PRIMARY]
    before = ctx.store.rmd.version if ctx.store.rmd else 0

    async def flag(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        node = smap.get(sid)
        if node is None:
            raise NotFound(f"node {sid} is not in the cluster map")
        flags = node.flags & ~(apc.FLAG_MAINTENANCE | apc.FLAG_DECOMMISSION)
        if action == ACT_START_MAINTENANCE:
            flags |= apc.FLAG_MAINTENANCE
        elif action == ACT_DECOMMISSION_NODE:
            flags |= apc.FLAG_DECOMMISSION
        if flags == node.flags:
            return None, None
        log.info("%s: %s", action, node.display)
        return smap.with_node(replace(node, flags=flags)), None
    await primary.update(flag, rebalance=not ci_get(value, "skip_rebalance", False))
    rmd = ctx.store.rmd
    job_id = rmd.job_id if rmd is not None and rmd.version > before else ""
    if action == ACT_DECOMMISSION_NODE:
        ctx.spawn(_remove_after(ctx, primary, sid, job_id), name=f"decommission-{sid}")
    return web.Response(text=job_id, content_type="text/plain")


async def _remove_after(ctx: ProxyContext, primary: Any, sid: str, job_id: str) -> None:
    """Decommission: once the rebalance has moved the node's data away, drop it from the map
    (the primary refuses its re-registration from then on)."""
    if job_id:
        await wait_job(ctx, job_id, poll_s=0.5)
    primary.removed.add(sid)

    async def drop(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        return (smap.without_node(sid), None) if smap.get(sid) is not None else (None, None)
    await primary.update(drop)
    log.info("node %s decommissioned and removed from the cluster map", sid)


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

