"""Primary failover at a proxy: the candidate's election, the switch between the primary's and a
follower's duties, and the manual hand-over (`PUT /v1/cluster/proxy/<id>`).

Election (the voters' side is ais/election.py). The candidate, asked by a node that lost the
primary (`POST /v1/vote/init`) or noticing it itself:
1. confirms the primary does not answer, and that no proxy ranked above it does;
2. asks every node of its cluster map but the old primary for a vote (`POST /v1/vote/proxy`)
   and takes the newest metadata any voter sends back;
3. with a majority commits: the next version of the cluster map with itself as primary, which
   the primary's duties (below) metasync to every node. Later versions of every document
   continue from the newest version it holds.
Majority: the electorate is every node (proxies and targets) of the candidate's map except the
old primary; the candidate votes for itself; it needs more than half of the electorate's yes
votes. A 3-proxy cluster losing its primary elects with the 2 proxies left (2 of 2), with
targets the proxies need half the rest too; a minority side of a partition cannot elect.

Roles (`serve`): a proxy is the primary while its cluster map names it. As primary it
metasyncs, retries lagging nodes, and every keepalive interval asks the other proxies for their
maps: a newer map naming another primary (it was away while the cluster moved on) makes it step
down. As follower it joins (a primary that stepped down adopts the new primary's metadata,
even where its own versions are not older) and sends keepalives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from ais import apc
from ais.cmap import BucketMD, ClusterMap, Node
from ais.election import (INIT_PATH, VOTE_PATH, Voter, ask_candidate, check_secret, newer_payload, parse_request,
                          ranked_above_alive, reachable, request_body, secret_headers, votes_needed)
from ais.errors import AisError, BadRequest, Forbidden, NotFound, ServiceUnavailable
from ais.membership import ClusterAgent
from ais.web import read_json, until_stopped
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.context import CTX, ProxyContext
from proxy.membership import Primary

log = logging.getLogger(__name__)


class Election:
    """The candidate's side of an election at this proxy (one at a time)."""

    def __init__(self, ctx: ProxyContext, primary: Primary) -> None:
        self.ctx, self.primary = ctx, primary
        self._lock = asyncio.Lock()

    async def on_primary_down(self, smap: ClusterMap) -> None:
        """The agent's hook: run the election if this proxy is the candidate, else ask the candidate."""
        ctx = self.ctx
        headers, probe_s = secret_headers(ctx.cfg), ctx.cfg.timeouts.probe_s
        if not await ask_candidate(ctx.http, ctx.me, ctx.store, smap, headers, probe_s):
            await self.run()

    async def run(self) -> bool:
        """Become the primary if the primary is gone and this proxy wins; True if it did."""
        if self._lock.locked():
            return False
        async with self._lock:
            try:
                return await self._run()
            except AisError as exc:
                log.warning("election failed: %s", exc)
                return False

    async def _run(self) -> bool:
        ctx = self.ctx
        smap = ctx.store.smap
        if smap is None or ctx.is_primary or smap.get(ctx.me.id) is None:
            return False
        old, probe_s = smap.primary, ctx.cfg.timeouts.probe_s
        # 1. confirm: the primary is gone and no better candidate answers
        if await reachable(ctx.http, old, probe_s):
            log.info("no election: the primary %s answers", old.display)
            return False
        try:
            above = await ranked_above_alive(ctx.http, smap, ctx.me.id, probe_s)
        except LookupError as exc:
            log.info("no election: %s", exc)
            return False
        if above is not None:
            log.info("no election here: %s ranks above %s and answers", above.display, ctx.me.display)
            return False
        # 2. votes
        electorate = [n for n in smap.nodes() if n.id not in (old.id, ctx.me.id)]
        log.warning("primary %s is down: %s asks %d nodes for votes (cluster map v%d)", old.display,
                    ctx.me.display, len(electorate), smap.version)
        body = request_body(ctx.store, smap, candidate=ctx.me.id)
        timeout_s = max(ctx.cfg.timeouts.control_s, probe_s * (2 + len(smap.proxies)))
        answers = await asyncio.gather(*(self._ask(n, body, timeout_s) for n in electorate))
        yes = 1 + sum(1 for a in answers if a.get("yes") is True)
        for a in answers:   # the newest metadata anyone holds
            if isinstance(a.get("payload"), dict):
                await ctx.store.apply_wire(a["payload"])
        needed = votes_needed(len(electorate) + 1)
        if yes < needed:
            log.warning("election lost: %d of %d votes, %d needed (%s)", yes, len(electorate) + 1, needed,
                        "; ".join(str(a.get("reason")) for a in answers if a.get("yes") is not True))
            return False
        # 3. commit
        async with ctx.meta_lock:
            cur = ctx.smap
            if cur.primary_id != old.id:
                log.warning("election dropped: cluster map v%d names %s", cur.version, cur.primary.display)
                return False
            self.primary.unreachable.add(old.id)   # not waited for by the first metasyncs
            await ctx.store.apply(cur.with_primary(ctx.me.id))
        log.warning("%s elected primary with %d of %d votes (cluster map v%d)", ctx.me.display, yes,
                    len(electorate) + 1, ctx.smap.version)
        return True

    async def _ask(self, node: Node, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            answer = await self.ctx.http.call_json("POST", f"{node.intra_url}{VOTE_PATH}", json_body=body,
                                                   headers=secret_headers(self.ctx.cfg), timeout_s=timeout_s)
        except AisError as exc:
            return {"yes": False, "reason": f"{node.display}: {exc}"}
        return answer if isinstance(answer, dict) else {"yes": False, "reason": f"{node.display}: malformed answer"}

    async def init_handler(self, request: web.Request) -> web.StreamResponse:
        """Intra `POST /v1/vote/init`: a node lost the primary. Answer with newer metadata if this
        proxy knows of a newer primary (or is it); else run an election in the background."""
        ctx = self.ctx
        check_secret(ctx.cfg, request)
        uuid, primary_id, _, versions = parse_request(await read_json(request))
        smap = ctx.smap
        if uuid != smap.uuid:
            raise Forbidden(f"election request of another cluster ({uuid} != {smap.uuid})")
        if ctx.is_primary or smap.primary_id != primary_id:
            return web.json_response(newer_payload(ctx.store, versions) or {})
        ctx.spawn(self.run(), name="election")
        return web.json_response({}, status=202)


def add_intra_routes(app: web.Application, ctx: ProxyContext, election: Election) -> None:
    app.router.add_post(VOTE_PATH, Voter(ctx.me, ctx.store, ctx.http, lambda: ctx.cfg).handle)
    app.router.add_post(INIT_PATH, election.init_handler)


# --- roles ---------------------------------------------------------------------------------------

async def _changed_or_stopped(changed: asyncio.Event, stop: asyncio.Event, timeout_s: float | None) -> None:
    waits = {asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def adopt_newer(ctx: ProxyContext, agent: ClusterAgent, proxies_only: bool) -> bool:
    """A primary asks the others for their maps: one newer than its own, naming another primary,
    replaces its own (it steps down). True if it did."""
    newer = await agent.discover(proxies_only=proxies_only)
    if newer is None or newer.primary_id == ctx.me.id:
        return False
    log.warning("cluster map v%d names %s the primary (mine: v%d): %s steps down", newer.version,
                newer.primary.display, ctx.smap.version, ctx.me.display)
    await ctx.store.adopt(newer)
    return True


async def serve(ctx: ProxyContext, primary: Primary, agent: ClusterAgent, stop: asyncio.Event) -> None:
    """Until `stop`: the primary's duties while the cluster map names this proxy, a follower's otherwise."""
    changed = asyncio.Event()

    async def on_change(smap: ClusterMap | None, bmd: BucketMD | None) -> None:
        if smap is not None:
            changed.set()
    ctx.store.subscribe(on_change)
    ctx.spawn(primary.retry_loop(), name="metasync-retry")
    join, adopt = True, False
    while not stop.is_set():
        changed.clear()
        if ctx.is_primary:
            await agent.stop()
            primary.take_over()
            ctx.spawn(primary.push(wait_s=ctx.cfg.timeouts.control_s), name="metasync-takeover")
            log.info("%s serves as primary (cluster map v%d)", ctx.me.display, ctx.smap.version)
            loop = asyncio.get_running_loop()
            check_at = loop.time() + ctx.cfg.timeouts.keepalive_interval_s
            while ctx.is_primary and not stop.is_set():
                await _changed_or_stopped(changed, stop, max(0.0, check_at - loop.time()))
                changed.clear()
                if loop.time() >= check_at and not stop.is_set():   # has the cluster moved on without us?
                    await adopt_newer(ctx, agent, proxies_only=True)
                    check_at = loop.time() + ctx.cfg.timeouts.keepalive_interval_s
            join, adopt = True, True
        elif join:
            if not await until_stopped(agent.join(ctx.cfg.timeouts.join_wait_s, adopt=adopt), stop):
                return
            join = adopt = False
        else:
            agent.start()
            await _changed_or_stopped(changed, stop, None)
    await agent.stop()


# --- manual hand-over ---------------------------------------------------------------------------

async def set_primary(request: web.Request) -> web.StreamResponse:
    """`PUT /v1/cluster/proxy/<id>`: the primary makes proxy `id` the primary (a new cluster map,
    metasynced to every node before the answer); at another proxy, forwarded to the primary."""
    ctx = request.app[CTX]
    node_id = request.match_info["node_id"]
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, await request.read())
    node = ctx.smap.proxies.get(node_id.removeprefix("p[").removesuffix("]"))
    if node is None:
        raise NotFound(f"no proxy {node_id!r} in the cluster map")
    if node.id == ctx.me.id:
        return web.Response(status=200)
    if node.in_maintenance or node.flags & apc.FLAG_NON_ELECTABLE:
        raise BadRequest(f"{node.display} cannot become the primary: it is in maintenance or not electable")
    if not await reachable(ctx.http, node, ctx.cfg.timeouts.probe_s):
        raise ServiceUnavailable(f"{node.display} does not answer: it cannot become the primary")

    async def hand_over(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        if smap.primary_id != ctx.me.id:
            raise ServiceUnavailable(f"{ctx.me.display} is no longer the primary")
        return smap.with_primary(node.id), None
    primary: Primary = request.app[PRIMARY]
    await primary.update(hand_over, rebalance=False)
    log.warning("%s handed primacy to %s (cluster map v%d)", ctx.me.display, node.display, ctx.smap.version)
    return web.Response(status=200)
