"""Primary-side membership: registration, keepalives, and metasync of every new version.

Every metadata change goes through `Primary.update`: build the new version under one lock,
persist it locally, then push it to every other node and wait (bounded) for their
acknowledgements. Nodes that did not acknowledge are retried by a background loop until they
do or leave the cluster map; keepalive answers also carry newer versions, so a node that was
away catches up on its next keepalive.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from ais import apc
from ais.cmap import AccessKeys, BucketMD, ClusterMap, Node, RebalanceMD, placement_changed
from ais.etl import EtlMD
from ais.errors import BadMessage, Forbidden, NotFound, ServiceUnavailable
from ais.membership import DOCS, MetaStore
from ais.web import read_json
from proxy.context import CTX, ProxyContext

log = logging.getLogger(__name__)


class Primary:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.acked: dict[str, tuple[int, ...]] = {}   # node -> versions acknowledged (MetaStore.versions order)
        self.removed: set[str] = set()   # decommissioned nodes: their re-registration is refused
        self.unreachable: set[str] = set()   # the old primary, when an election makes this proxy primary
        self._wake = asyncio.Event()

    async def update(self, change: Callable[[ClusterMap, BucketMD], Awaitable[tuple[ClusterMap | None, BucketMD | None]]],
                     rebalance: bool = True) -> None:
        """Apply `change(smap, bmd)` -> (new smap or None, new bmd or None) and metasync it; a change
        of the active target set starts a global rebalance unless `rebalance` is False."""
        ctx = self.ctx
        if not ctx.is_primary:
            raise ServiceUnavailable(f"{ctx.me.display} is not the primary")
        async with ctx.meta_lock:
            old = ctx.smap
            smap, bmd = await change(old, ctx.bmd)
            if smap is None and bmd is None:
                return
            rmd = self._next_rmd(old, smap, bmd or ctx.bmd) if rebalance else None
            await ctx.store.apply(smap, bmd, **({"rmd": rmd} if rmd is not None else {}))
        if rmd is not None:
            log.info("active targets changed (cluster map v%d): rebalance %s", rmd.smap_version, rmd.job_id)
        await self.push(wait_s=ctx.cfg.timeouts.control_s)

    def _next_rmd(self, old: ClusterMap, new: ClusterMap | None, bmd: BucketMD) -> RebalanceMD | None:
        """A new rebalance when `new` changes the active target set of a cluster that has buckets
        (with none, no object can be misplaced: a cluster starting up does not rebalance)."""
        if new is None or not bmd.buckets or not placement_changed(old, new):
            return None
        return self.next_rmd(new.version)

    def next_rmd(self, smap_version: int) -> RebalanceMD:
        return (self.ctx.store.rmd or RebalanceMD(version=0)).next(smap_version)

    async def update_doc(self, attr: str, change: Callable[[Any], Any]) -> None:
        """Apply `change(current) -> new or None` to the document `attr` (ais.membership.DOCS) and metasync it."""
        ctx = self.ctx
        if not ctx.is_primary:
            raise ServiceUnavailable(f"{ctx.me.display} is not the primary")
        doc = next(d for d in DOCS if d.attr == attr)
        async with ctx.meta_lock:
            new = change(getattr(ctx.store, attr) or doc.cls(version=0))
            if new is None:
                return
            await ctx.store.apply(**{attr: new})
        await self.push(wait_s=ctx.cfg.timeouts.control_s)

    async def update_keys(self, change: Callable[[AccessKeys], AccessKeys | None]) -> None:
        await self.update_doc("keys", change)

    async def update_etl(self, change: Callable[[EtlMD], EtlMD | None]) -> None:
        await self.update_doc("etl", change)

    async def push(self, wait_s: float) -> None:
        """Send the current versions to every node that lacks them; wait up to wait_s. Nodes not
        heard from for `keepalive_dead_s` are skipped: their next keepalive or join catches them up."""
        ctx = self.ctx
        targets = [n for n in ctx.smap.nodes() if n.id != ctx.me.id and self._behind(n.id) and self._alive(n.id)]
        if not targets:
            return
        results = await asyncio.gather(*(self._send(n) for n in targets), return_exceptions=True)
        if any(r is not True for r in results):
            self._wake.set()

    def _behind(self, node_id: str) -> bool:
        current = self.ctx.store.versions()
        return any(a < c for a, c in zip(self.acked.get(node_id, (0,) * len(current)), current))

    async def _send(self, node: Node) -> bool:
        ctx = self.ctx
        versions = ctx.store.versions()
        try:
            await ctx.http.call("PUT", f"{node.intra_url}/v1/metasync", json_body=ctx.store.payload(),
                                headers={apc.HDR_CLUSTER_SECRET: ctx.cfg.cluster.secret} if ctx.cfg.cluster.secret else None)
        except Exception as exc:  # noqa: BLE001 - retried by the loop below
            log.warning("metasync to %s failed: %s", node.display, exc)
            return False
        self.acked[node.id] = versions
        return True

    async def retry_loop(self) -> None:
        """Re-send to lagging nodes until they acknowledge or leave the cluster map."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.ctx.cfg.timeouts.metasync_retry_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if not self.ctx.is_primary:
                continue
            try:
                await self.remove_dead_targets()
            except ServiceUnavailable:   # stepped down meanwhile
                continue
            lagging = [n for n in self.ctx.smap.nodes() if n.id != self.ctx.me.id and self._behind(n.id)
                       and self._alive(n.id)]
            if lagging:
                await asyncio.gather(*(self._send(n) for n in lagging), return_exceptions=True)

    async def remove_dead_targets(self) -> None:
        """Drop targets not heard from for `timeouts.remove_dead_s` from the cluster map (AIStore
        does the same): their objects get new owners and a rebalance starts. Targets in
        maintenance send no keepalives and stay."""
        limit = self.ctx.cfg.timeouts.remove_dead_s
        if limit <= 0:
            return
        now = asyncio.get_running_loop().time()

        def silent(n: Node) -> bool:
            return not n.in_maintenance and now - self.ctx.last_seen.get(n.id, now) > limit
        if not any(silent(n) for n in self.ctx.smap.targets.values()):
            return

        async def drop(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
            dead = [n for n in smap.targets.values() if silent(n)]
            for n in dead:
                log.warning("target %s silent for over %.0fs: removing it from the cluster map", n.display, limit)
                smap = smap.without_node(n.id)
            return (smap if dead else None), None
        await self.update(drop)

    def take_over(self) -> None:
        """This proxy has just become the primary (start-up, election, hand-over): every node of
        the map is presumed alive and behind until its next keepalive says otherwise, except those
        an election found unreachable (`unreachable`): they catch up when they keepalive or join."""
        self.acked.clear()
        now = asyncio.get_running_loop().time()
        for node in self.ctx.smap.nodes():
            if node.id in self.unreachable:
                self.ctx.last_seen.pop(node.id, None)
            else:
                self.ctx.last_seen[node.id] = now
        self.unreachable.clear()

    def _alive(self, node_id: str) -> bool:
        seen = self.ctx.last_seen.get(node_id)
        loop = asyncio.get_running_loop()
        return seen is not None and loop.time() - seen < self.ctx.cfg.timeouts.keepalive_dead_s



PRIMARY: web.AppKey[Primary] = web.AppKey("primary", Primary)

def _check_secret(ctx: ProxyContext, request: web.Request) -> None:
    secret = ctx.cfg.cluster.secret
    if secret and request.headers.get(apc.HDR_CLUSTER_SECRET, "") != secret:
        raise Forbidden("joining this cluster needs the cluster secret")


async def _node_from_body(request: web.Request) -> tuple[Node, dict[str, Any]]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("node"), dict):
        raise BadMessage("expected {\"node\": Snode}")
    try:
        node = Node.from_wire(body["node"])
    except (KeyError, TypeError) as exc:
        raise BadMessage(f"malformed node info: {exc}") from exc
    if node.role not in ("proxy", "target") or not node.id:
        raise BadMessage(f"invalid node role {node.role!r} or empty ID")
    return node, body


def handlers(primary: Primary) -> dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    async def autoreg(request: web.Request) -> web.StreamResponse:
        """Intra `POST /v1/cluster/autoreg`: a node (re)joins; answer with current metadata."""
        ctx = request.app[CTX]
        _check_secret(ctx, request)
        node, _ = await _node_from_body(request)
        if not ctx.is_primary:
            raise ServiceUnavailable(f"{ctx.me.display} is not the primary (primary: {ctx.smap.primary_id})")
        if node.id in primary.removed:
            raise Forbidden(f"node {node.display} was decommissioned")
        ctx.last_seen[node.id] = asyncio.get_running_loop().time()

        async def add(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
            known = smap.get(node.id)
            if known is not None and known.public_url == node.public_url and known.intra_url == node.intra_url \
                    and known.role == node.role:
                return None, None
            log.info("node %s joins (%s, %s)", node.display, node.public_url, node.intra_url)
            return smap.with_node(node), None
        await primary.update(add)
        primary.acked[node.id] = ctx.store.versions()
        return web.json_response(ctx.store.payload())

    async def keepalive(request: web.Request) -> web.StreamResponse:
        """Intra `POST /v1/cluster/keepalive`: note liveness; send newer metadata if the node lags."""
        ctx = request.app[CTX]
        _check_secret(ctx, request)
        node, body = await _node_from_body(request)
        try:
            acked = MetaStore.acked(body)
        except (TypeError, ValueError) as exc:
            raise BadMessage(f"malformed keepalive versions: {exc}") from exc
        if not ctx.is_primary:
            if acked[0] < ctx.store.versions()[0]:   # it missed a change of primary: here is the map
                return web.json_response(ctx.store.payload())
            raise ServiceUnavailable(f"{ctx.me.display} is not the primary")
        if ctx.smap.get(node.id) is None:
            raise NotFound(f"node {node.display} is not in the cluster map")
        ctx.last_seen[node.id] = asyncio.get_running_loop().time()
        primary.acked[node.id] = acked
        if any(a < c for a, c in zip(acked, ctx.store.versions())):
            return web.json_response(ctx.store.payload())
        return web.json_response({})

    return {"autoreg": autoreg, "keepalive": keepalive}
