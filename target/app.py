"""A target's main(): explicit start-up, the routes of its two listeners, graceful shutdown.

Start-up: node ID -> mountpaths (claim, remove stale work files) -> persisted metadata ->
listeners -> join the primary -> keepalives. Shutdown: stop listeners (drain in-flight
requests), stop jobs and keepalives, close the HTTP session and the I/O pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from ais import apc, auth, fasthttp, tls
from ais.cmap import BucketMD, ClusterMap, Node
from ais.config import Config
from ais.election import VOTE_PATH, Voter
from ais.errors import BadRequest, ServiceUnavailable
from ais.intra import IntraClient
from ais.lifecycle import Lifecycle
from ais.membership import ClusterAgent, MetaStore, daemon_answer, load_or_create_id, metasync_handler
from ais.metrics import NodeMetrics
from ais.nodeconfig import NodeConfig
from ais.s3.web import render_s3_error
from ais.web import Listener, metrics_handler, middlewares
from target import ec, etl, fastget, fastput, jobs, listing, moss, objects, rebalance, remote, s3, space, storage
from target.etl import handlers as etl_handlers
from target.jobs import rebalance as rebalance_job
from target.backends import Backends
from target.context import CTX, TargetContext
from target.load import LoadMonitor
from target.fs.mountpaths import Mountpaths

log = logging.getLogger(__name__)


def build_public_app(ctx: TargetContext, registry: jobs.JobRegistry) -> web.Application:
    # auth: a request a proxy redirected or relayed carries its signature; one sent here directly
    # needs its own token and passes the same checks as at a proxy; S3 comes only through a proxy
    authz = auth.middleware(lambda: ctx.gate, s3_prefix="/s3", s3_direct_refused=True)
    app = web.Application(middlewares=[*middlewares(lambda: ctx.me.display, ctx.metrics,
                                                    renderers={"/s3": render_s3_error}, inner=[authz]),
                                       _count_inflight(ctx)],
                          client_max_size=apc.MAX_CONTROL_BODY_BYTES)
    app[CTX] = ctx
    app[jobs.JOBS] = registry
    obj = "/v1/objects/{bucket}/{obj:.+}"
    app.router.add_get(obj, objects.get_object, allow_head=False)
    app.router.add_head(obj, objects.head_object)
    app.router.add_put(obj, objects.put_object)
    app.router.add_delete(obj, objects.delete_object)
    app.router.add_post(obj, objects.post_object)
    app.router.add_patch(obj, objects.patch_object)
    app.router.add_get("/v1/ml/moss", moss.get_batch, allow_head=False)
    app.router.add_get("/v1/ml/moss/{bucket}", moss.get_batch, allow_head=False)
    s3obj = "/s3/{bucket}/{key:.+}"  # object-level S3, streamed here by a proxy
    app.router.add_get(s3obj, s3.get_object, allow_head=False)
    app.router.add_head(s3obj, s3.head_object)
    app.router.add_put(s3obj, s3.put_object)
    app.router.add_delete(s3obj, s3.delete_object)
    app.router.add_post(s3obj, s3.post_object)
    _add_common(app, ctx)
    return app


def _lane_route(ctx: TargetContext) -> fasthttp.Route:
    """The public listener's fast lane (ais.fasthttp): GETs in `fastget`, small S3 PutObject in `fastput`."""
    get, put = fastget.route(ctx), fastput.route(ctx)

    def route(req: fasthttp.FastRequest) -> fasthttp.RouteResult:
        return put(req) if req.method == b"PUT" else get(req)
    return route


def _count_inflight(ctx: TargetContext) -> Any:
    """Requests in flight (and the bytes they declare), for the load monitor."""
    @web.middleware
    async def inflight(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        n = request.content_length or 0
        if request.method in ("GET", "HEAD") and "trd" not in request.query:   # a client's read, not a peer's
            ctx.load.foreground_read()
        ctx.load.begin(n)
        try:
            return await handler(request)
        finally:
            ctx.load.end(n)
    return inflight


def build_intra_app(ctx: TargetContext, registry: jobs.JobRegistry) -> web.Application:
    app = web.Application(middlewares=middlewares(lambda: ctx.me.display, ctx.metrics),
                          client_max_size=64 << 20)
    app[CTX] = ctx
    app[jobs.JOBS] = registry
    app.router.add_put("/v1/metasync", metasync_handler(ctx.store, lambda: ctx.cfg.cluster.secret))
    app.router.add_post(VOTE_PATH, Voter(ctx.me, ctx.store, ctx.http, lambda: ctx.cfg).handle)
    app.router.add_post("/v1/lso/{bucket}", listing.list_page)
    app.router.add_get("/v1/rbck/{bucket}", remote.head_remote_bucket)
    app.router.add_post("/v1/rlso/{bucket}", remote.list_remote_page)
    app.router.add_post("/v1/have/{bucket}", remote.have_objects)
    app.router.add_post("/v1/jobs", jobs.start_job)
    app.router.add_get("/v1/jobs", jobs.get_jobs)
    app.router.add_delete("/v1/jobs", jobs.abort_job)
    app.router.add_get("/v1/s3/uploads/{bucket}", s3.list_uploads)
    app.router.add_post(moss.SEND_PATH, moss.send_entries)
    etl_handlers.add_routes(app)
    rebalance.add_routes(app)
    ec.add_routes(app)
    _add_common(app, ctx)
    return app


def _add_common(app: web.Application, ctx: TargetContext) -> None:
    async def health(request: web.Request) -> web.StreamResponse:
        if ctx.store.smap is None or ctx.me.id not in ctx.store.smap.targets:
            raise ServiceUnavailable(f"{ctx.me.display} has not joined the cluster yet")
        return web.Response(status=200, headers={apc.HDR_NODE_UPTIME: str(time.monotonic_ns() - ctx.started_ns)})

    async def daemon(request: web.Request) -> web.StreamResponse:
        what = request.query.get(apc.Q_WHAT, "")
        common = daemon_answer(what, ctx.store, ctx.me, ctx.cfg.public_dict())
        if common is not None:
            return common
        if what == apc.WHAT_NODE_STATUS:
            return web.json_response(await node_status(ctx))
        if what == apc.WHAT_MOUNTPATHS:
            return storage.mountpaths_answer(ctx)
        raise BadRequest(f"unsupported 'what={what}' on a target")

    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/daemon", daemon)
    storage.add_routes(app)
    app.router.add_get("/metrics", metrics_handler(ctx.metrics))


async def node_status(ctx: TargetContext) -> dict[str, object]:
    def disks() -> dict[str, dict[str, int]]:
        out = {}
        for mp in ctx.mountpaths.paths:
            st = os.statvfs(mp)
            # fs: the filesystem's device, so that mountpaths sharing one disk count once in totals
            out[mp] = {"total": st.f_blocks * st.f_frsize, "avail": st.f_bavail * st.f_frsize, "fs": os.stat(mp).st_dev}
        return out
    return {"snode": ctx.me.to_wire(), "mountpaths": await asyncio.get_running_loop().run_in_executor(None, disks),
            "uptime_ns": time.monotonic_ns() - ctx.started_ns, "pid": os.getpid(), "load": ctx.load.snapshot.to_dict()}


async def run(cfg: Config, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    started_ns = time.monotonic_ns()
    async with contextlib.AsyncExitStack() as stack:  # unwinds in reverse: the shutdown sequence
        # 1. identity and storage
        node_id = await loop.run_in_executor(None, load_or_create_id, cfg.node.conf_dir, cfg.node.id)
        host = cfg.net.hostname
        web_scheme = tls.scheme(cfg.net)
        me = Node(node_id, "target", f"{web_scheme}://{host}:{cfg.net.public_port}",
                  f"{web_scheme}://{host}:{cfg.net.intra_port}")
        mountpaths = Mountpaths(cfg.target.mountpaths, cfg.target.io_workers_per_mountpath,
                                (cfg.target.slow_mountpath, cfg.target.slow_io_ms))
        stack.callback(mountpaths.close)
        await loop.run_in_executor(None, mountpaths.init, node_id)
        store = MetaStore(cfg.node.conf_dir)
        await loop.run_in_executor(None, store.load)
        rebalanced = await loop.run_in_executor(None, rebalance.load_done, cfg.node.conf_dir)
        http = IntraClient(cfg.timeouts, node_id, tls.client_context(cfg.net))
        await http.start()
        stack.push_async_callback(http.close)
        backends = Backends(cfg.backend)
        stack.push_async_callback(backends.close)
        metrics = NodeMetrics("target", node_id)
        load = LoadMonitor(cfg, mountpaths.paths, metrics.registry, busy=mountpaths.slow_path)
        ctx = TargetContext(cfg=cfg, me=me, store=store, mountpaths=mountpaths, http=http,
                            metrics=metrics, started_ns=started_ns, backends=backends, load=load, rebalanced=rebalanced)
        stack.push_async_callback(ctx.background.cancel_all)

        def config_changed(new: Config) -> None:
            ctx.cfg = ctx.load.cfg = new
        node_cfg = NodeConfig(cfg.node.conf_dir, cfg, config_changed)
        await loop.run_in_executor(None, node_cfg.load)
        ctx.cfg = ctx.load.cfg = node_cfg.follow(store)
        # shutdown, decommission and standby (ais.lifecycle); its cleanup runs after the rest has stopped
        life = Lifecycle(cfg.node.conf_dir, me, store, node_cfg, stop, lambda: ctx.cfg.cluster.secret,
                         user_dirs=lambda: ctx.mountpaths.paths)
        await loop.run_in_executor(None, life.load)
        stack.push_async_callback(life.finish)
        ctx.gate = auth.gate_for(cfg.auth, lambda: store.smap.uuid if store.smap else "", lambda: store.auth)
        if ctx.gate is not None:
            http.signer = ctx.gate.sign_header
        ctx.spawn(load.run(), name="load-monitor")
        store.subscribe(lambda smap, bmd: _on_metadata(ctx, smap, bmd))
        stack.push_async_callback(etl.attach(ctx).close)   # transformers stop after the jobs
        registry = jobs.JobRegistry()
        stack.push_async_callback(registry.stop_all)
        rebalance_job.follow(ctx, registry)
        await storage.attach(ctx, registry)   # mountpaths attached or detached at runtime before a restart
        ctx.spawn(space.SpaceMonitor(ctx, registry).loop(), name="space-monitor")

        # 2. listeners first: the primary metasyncs to us while we join
        server_tls = tls.server_context(cfg.net)
        intra = Listener(build_intra_app(ctx, registry), host, cfg.net.intra_port, shutdown_s=cfg.timeouts.shutdown_s,
                         header_read_timeout_s=cfg.net.header_read_timeout_s)
        intra.ssl_context = server_tls
        life.add_intra_routes(intra.app)
        await intra.start()
        stack.push_async_callback(intra.stop)
        public = Listener(build_public_app(ctx, registry), host, cfg.net.public_port,
                          shutdown_s=cfg.timeouts.shutdown_s, max_header_bytes=cfg.net.max_header_bytes,
                          header_read_timeout_s=cfg.net.header_read_timeout_s,
                          lane=(_lane_route(ctx), metrics) if cfg.net.fast_lane else None,
                          lane_max_body=objects.SMALL_PUT_BYTES)
        public.ssl_context = server_tls
        life.add_public_routes(public.app)
        await public.start()
        stack.push_async_callback(public.stop)
        log.info("target %s listening: public %s, intra %s, mountpaths %s", node_id, me.public_url, me.intra_url,
                 list(mountpaths.paths))

        # 3. join and keep alive
        agent = ClusterAgent(me, store, http, cfg.proxy.primary_url, cfg.timeouts.keepalive_interval_s,
                             cfg.cluster.secret, dead_s=cfg.timeouts.primary_dead_s, probe_s=cfg.timeouts.probe_s)
        stack.push_async_callback(agent.stop)
        # one interrupted rebalance resumes once joined
        await life.membership(agent, cfg.timeouts.join_wait_s, lambda: rebalance_job.start(ctx, registry, store.rmd))
        log.info("target %s shutting down", node_id)


async def _on_metadata(ctx: TargetContext, smap: ClusterMap | None, bmd: BucketMD | None) -> None:
    """Remove the data of ais buckets that are no longer in the bucket metadata."""
    if bmd is None:
        return
    keep = {ctx.mountpaths.bucket_rel(b) for b in bmd.buckets}

    def reconcile() -> None:
        for rel in ctx.mountpaths.local_buckets() - keep:
            if rel.startswith("@ais/"):
                log.info("removing data of destroyed bucket %s", rel)
                ctx.mountpaths.remove_bucket_rel(rel)
    await asyncio.get_running_loop().run_in_executor(None, reconcile)

