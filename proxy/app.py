"""A proxy's main(): explicit start-up, the routes of its two listeners, graceful shutdown.

Start-up: node ID -> persisted metadata -> (primary: new or loaded cluster map, unless the other
nodes hold a newer one; others: listeners then join) -> the primary's or a follower's duties,
switching on elections and hand-overs (proxy/election.py). Shutdown: stop listeners (drain
in-flight requests), cancel background tasks, close the HTTP session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from ais import apc, auth, tls
from ais.auth import AuthMD
from ais.cmap import BucketMD, ClusterMap, Node
from ais.config import Config
from ais.intra import IntraClient
from ais.lifecycle import Lifecycle
from ais.membership import ClusterAgent, MetaStore, load_or_create_id, metasync_handler
from ais.metrics import NodeMetrics
from ais.nodeconfig import NodeConfig
from ais.web import Listener, metrics_handler, middlewares
from ais.s3.web import render_s3_error
from proxy import auth as tokens, buckets, cluster, config, election, etl, membership, mirror, moss, objects, remote, s3, s3keys
from proxy import fastpath, nodes
from proxy.context import CTX, ProxyContext

log = logging.getLogger(__name__)


def build_public_app(ctx: ProxyContext, primary: membership.Primary) -> web.Application:
    # auth: S3 paths (at /s3, or everywhere outside /v1 when S3 is served at the root) are
    # authorized by the S3 front end from their SigV4 key; everything else by bearer token here
    authz = auth.middleware(lambda: ctx.gate, s3_prefix="" if ctx.cfg.s3.root else "/s3")
    app = web.Application(middlewares=middlewares(lambda: ctx.me.display, ctx.metrics,
                                                  renderers={"/s3": render_s3_error}, inner=[authz]),
                          client_max_size=apc.MAX_CONTROL_BODY_BYTES)
    app[CTX] = ctx
    app[buckets.PRIMARY] = primary
    s3.add_routes(app)
    s3keys.add_routes(app)
    tokens.add_routes(app)
    r = app.router
    obj = "/v1/objects/{bucket}/{obj:.+}"
    for method in ("GET", "PUT", "HEAD", "DELETE", "POST", "PATCH"):
        r.add_route(method, obj, objects.redirect_object)
    r.add_post("/v1/objects/{bucket}", objects.bucket_level_object_action)
    for path in ("/v1/buckets", "/v1/buckets/", "/v1/buckets/{bucket}"):
        r.add_get(path, buckets.get_buckets, allow_head=False)
    r.add_head("/v1/buckets/{bucket}", buckets.head_bucket)
    r.add_head("/v1/buckets/{bucket}/{prefix:.*}", buckets.head_bucket)
    r.add_post("/v1/buckets/{bucket}", buckets.post_bucket)
    r.add_delete("/v1/buckets/{bucket}", buckets.delete_bucket)
    r.add_patch("/v1/buckets/{bucket}", buckets.patch_bucket)
    r.add_put("/v1/buckets/{bucket}", buckets.put_bucket)
    moss.add_routes(app)
    etl.add_routes(app)
    mirror.add_routes(app)
    r.add_get("/v1/cluster", cluster.get_cluster, allow_head=False)
    r.add_put("/v1/cluster", cluster.put_cluster)
    r.add_put("/v1/cluster/{action}", config.put_cluster_action)
    r.add_post("/v1/cluster/join-by-admin", nodes.join_by_admin)
    r.add_put("/v1/cluster/proxy/{node_id}", cluster.set_primary)
    _add_common(app, ctx)
    if ctx.cfg.s3.root:
        s3.add_routes(app, mount="")  # last: every native route keeps priority
    return app


def build_intra_app(ctx: ProxyContext, primary: membership.Primary, elect: election.Election) -> web.Application:
    app = web.Application(middlewares=middlewares(lambda: ctx.me.display, ctx.metrics), client_max_size=64 << 20)
    app[CTX] = ctx
    app[buckets.PRIMARY] = primary
    h = membership.handlers(primary)
    app.router.add_post("/v1/cluster/autoreg", h["autoreg"])
    app.router.add_post("/v1/cluster/keepalive", h["keepalive"])
    app.router.add_put("/v1/metasync", metasync_handler(ctx.store, lambda: ctx.cfg.cluster.secret))
    app.router.add_post("/v1/rbck/{bucket}", remote.add_remote_bucket_handler)
    election.add_intra_routes(app, ctx, elect)
    _add_common(app, ctx)
    return app


def _add_common(app: web.Application, ctx: ProxyContext) -> None:
    app.router.add_get("/v1/health", cluster.health)
    app.router.add_get("/v1/daemon", cluster.daemon)
    app.router.add_get("/metrics", metrics_handler(ctx.metrics))


async def run(cfg: Config, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:  # unwinds in reverse: the shutdown sequence
        # 1. identity and metadata
        node_id = await loop.run_in_executor(None, load_or_create_id, cfg.node.conf_dir, cfg.node.id)
        host = cfg.net.hostname
        web_scheme = tls.scheme(cfg.net)
        me = Node(node_id, "proxy", f"{web_scheme}://{host}:{cfg.net.public_port}",
                  f"{web_scheme}://{host}:{cfg.net.intra_port}")
        store = MetaStore(cfg.node.conf_dir)
        await loop.run_in_executor(None, store.load)
        http = IntraClient(cfg.timeouts, node_id, tls.client_context(cfg.net))
        await http.start()
        stack.push_async_callback(http.close)
        ctx = ProxyContext(cfg=cfg, me=me, store=store, http=http, metrics=NodeMetrics("proxy", node_id),
                           started_ns=time.monotonic_ns())

        def config_changed(new: Config) -> None:
            ctx.cfg = new
        node_cfg = NodeConfig(cfg.node.conf_dir, cfg, config_changed)
        await loop.run_in_executor(None, node_cfg.load)
        ctx.cfg = node_cfg.follow(store)
        # shutdown, decommission and standby (ais.lifecycle); its cleanup runs after the rest has stopped
        life = Lifecycle(cfg.node.conf_dir, me, store, node_cfg, stop, lambda: ctx.cfg.cluster.secret)
        await loop.run_in_executor(None, life.load)
        stack.push_async_callback(life.finish)
        ctx.gate = auth.gate_for(cfg.auth, lambda: store.smap.uuid if store.smap else "", lambda: store.auth)
        if ctx.gate is not None:
            http.signer = ctx.gate.sign_header
        stack.push_async_callback(_cancel_tasks, ctx)
        primary = membership.Primary(ctx)
        elect = election.Election(ctx, primary)
        agent = ClusterAgent(me, store, http, cfg.proxy.primary_url, cfg.timeouts.keepalive_interval_s,
                             cfg.cluster.secret, dead_s=cfg.timeouts.primary_dead_s, probe_s=cfg.timeouts.probe_s,
                             on_primary_down=elect.on_primary_down)

        # 2. a fresh primary creates the cluster; a restarted one keeps its map unless the others
        # hold a newer one (the cluster elected another primary meanwhile)
        if store.smap is None and cfg.proxy.is_primary:
            smap = ClusterMap.new(me)
            await store.apply(smap, BucketMD(version=1, uuid=smap.uuid))
            log.info("created cluster %s with primary %s", smap.uuid, me.display)
        elif store.smap is not None and store.smap.primary_id == me.id and not await election.adopt_newer(
                ctx, agent, proxies_only=False):
            if store.smap.get(me.id) != me:  # our address changed: publish it
                await store.apply(store.smap.with_node(me), None)
            log.info("primary %s restarted with cluster map v%d", me.display, store.smap.version)
        if ctx.is_primary and store.auth is None:   # the key that signs redirects, made once per cluster
            await store.apply(None, None, auth=AuthMD.new())

        # 3. listeners
        server_tls = tls.server_context(cfg.net)
        intra = Listener(build_intra_app(ctx, primary, elect), host, cfg.net.intra_port, shutdown_s=cfg.timeouts.shutdown_s,
                         header_read_timeout_s=cfg.net.header_read_timeout_s)
        intra.ssl_context = server_tls
        life.add_intra_routes(intra.app)
        await intra.start()
        stack.push_async_callback(intra.stop)
        lane_up = fastpath.upstream(ctx)
        stack.callback(lane_up.close)
        public = Listener(build_public_app(ctx, primary), host, cfg.net.public_port,
                          shutdown_s=cfg.timeouts.shutdown_s, max_header_bytes=cfg.net.max_header_bytes,
                          header_read_timeout_s=cfg.net.header_read_timeout_s,
                          lane=(fastpath.route(ctx, lane_up), ctx.metrics) if cfg.net.fast_lane else None,
                          lane_max_body=fastpath.PUT_MAX_BODY)
        public.ssl_context = server_tls
        life.add_public_routes(public.app)
        await public.start()
        stack.push_async_callback(public.stop)
        log.info("proxy %s listening: public %s, intra %s", node_id, me.public_url, me.intra_url)

        # 4. the primary metasyncs; the others join and keep alive; roles switch on elections
        stack.push_async_callback(agent.stop)
        if await life.wait_if_standby():
            await election.serve(ctx, primary, agent, stop)
        log.info("proxy %s shutting down", node_id)


async def _cancel_tasks(ctx: ProxyContext) -> None:
    ctx.relay_pool.shutdown(wait=False, cancel_futures=True)
    await ctx.background.cancel_all()
