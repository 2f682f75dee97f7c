"""Inline transforms: `GET /v1/objects/<b>/<o>?etl_name=N[&etl_args=A][&etl_pipeline=N2,N3]` (and the
S3 GET with the same query parameters) answered with the transformer's output, streamed.

The object must be on this target (its owner): a remote bucket's object the cluster lacks is
fetched first. The transformer reads it by its local path (hpush, WebSocket) or pulls it
(hpull); with a pipeline the first stage forwards its output to the next ones
(`Ais-Node-Url`) and the last stage's output comes back.
"""

from __future__ import annotations

from aiohttp import web

from ais.errors import BadRequest, ObjectNotFound
from ais.etl import Q_ETL_ARGS, Q_ETL_NAME, Q_ETL_PIPELINE, TransformFailed
from ais.names import Bucket
from ais.web import STREAMING
from target import remote
from target.context import TargetContext
from target.etl import comm
from target.etl.manager import EtlManager, RunningEtl
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta


def pipeline_of(mgr: EtlManager, first: str, rest: str) -> tuple[RunningEtl, list[RunningEtl]]:
    names_ = [n.strip() for n in rest.split(",") if n.strip()]
    return mgr.require(first), [mgr.require(n) for n in names_]


async def local_object(ctx: TargetContext, bck: Bucket, obj: str) -> tuple[str, ObjectMeta]:
    """(local path, metadata) of an object this target owns; a remote one is fetched if missing."""
    mp, path = ctx.mountpaths.object_path(bck, obj)
    meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None and not bck.is_ais:
        await remote.fetch_object(ctx, bck, obj, ctx.bucket_props(bck))
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None and bck.is_ais:
        from target import rebalance  # rebalance imports the object handlers, which import this package
        if await rebalance.pull_moving(ctx, bck, obj):   # not moved here yet
            meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None:
        raise ObjectNotFound(bck.object_cname(obj))
    return path, meta


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def source_request(ctx: TargetContext, etl: RunningEtl, bck: Bucket, obj: str, path: str, size: int,
                         etl_args: str, node_urls: list[str]) -> comm.Request:
    req = comm.Request(etl=etl.name, cname=bck.object_cname(obj), path=f"{bck.name}/{obj}", etl_args=etl_args,
                       node_urls=node_urls, timeout_s=etl.init.obj_timeout_s)
    if ctx.cfg.etl.pass_fqn:
        req.fqn = path
    else:
        req.body = await ctx.mountpaths.run(ctx.mountpaths.mountpath_of(bck, obj), _read, path)
    etl.in_bytes += size
    return req


async def get_transformed(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str) -> web.StreamResponse:
    # 1. the ETLs (404 for an unknown one, 409 for a stopped one) and the object
    assert ctx.etl is not None
    q = request.query
    if "Range" in request.headers:
        raise BadRequest("a Range cannot be combined with an ETL: the transformed size is not known in advance")
    etl, stages = pipeline_of(ctx.etl, q[Q_ETL_NAME], q.get(Q_ETL_PIPELINE, ""))
    path, meta = await local_object(ctx, bck, obj)
    # 2. hand it to the first stage (the rest follow through Ais-Node-Url)
    req = await source_request(ctx, etl, bck, obj, path, meta.size, q.get(Q_ETL_ARGS, ""), [s.url for s in stages])
    try:
        reply = await etl.call(req)
    except TransformFailed as exc:
        etl.record(obj, exc)
        raise
    # 3. stream its answer
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
    if reply.length is not None:
        resp.content_length = reply.length
    sent = 0
    try:
        async for chunk in reply.chunks():
            if not resp.prepared:
                await resp.prepare(request)
                request[STREAMING] = True
            await resp.write(chunk)
            sent += len(chunk)
    except TransformFailed as exc:
        etl.record(obj, exc)
        if not resp.prepared:
            raise
        raise ConnectionResetError(exc.message) from exc   # mid-stream: the client sees a cut body
    if not resp.prepared:
        await resp.prepare(request)
    await resp.write_eof()
    etl.objects += 1
    etl.out_bytes += sent
    ctx.metrics.bytes_out.labels(verb="GET").inc(sent)
    return resp
