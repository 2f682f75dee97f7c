"""Remote buckets (s3://, gs://, az://) at a proxy: added to bucket metadata on first access,
listed from the backend through one designated target (reference §5).

First access: a target HEADs the bucket at its backend (proxies hold no cloud credentials);
the primary adds it with default props and metasyncs; a non-primary proxy asks the primary to
do so. A 404 at the backend is a clear `bucket "s3://name" does not exist`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping

import msgpack
from aiohttp import web

from ais import apc, names
from ais.cmap import BucketMD, ClusterMap, default_bucket_props
from ais.errors import BadRequest, BucketNotFound, NotImplementedErr, ServiceUnavailable
from ais.names import Bucket
from proxy.context import CTX, ProxyContext
from proxy.membership import PRIMARY, Primary

REMOTE_PROVIDERS = frozenset({"aws", "gcp", "azure"})


def bucket_params(bck: Bucket) -> dict[str, str]:
    params = {apc.Q_PROVIDER: bck.provider}
    if not bck.namespace.is_global:
        params[apc.Q_NAMESPACE] = bck.namespace.uname
    return params


def designated_target(ctx: ProxyContext, bck: Bucket) -> Any:
    target = ctx.smap.owner(bck.uname)
    if target is None:
        raise ServiceUnavailable("the cluster has no active targets")
    return target


async def require_bucket(request: web.Request, bck: Bucket) -> Mapping[str, Any]:
    """The bucket's props; a remote bucket not known yet is looked up at its backend and added."""
    ctx = request.app[CTX]
    props = ctx.bmd.get(bck)
    if props is not None:
        return props
    if bck.is_ais:
        raise BucketNotFound(bck.cname)
    if bck.provider not in REMOTE_PROVIDERS or not bck.namespace.is_global:
        raise NotImplementedErr(f"{bck.cname}: backend provider {bck.provider!r} is not supported")
    if ctx.is_primary:
        return await add_remote_bucket(ctx, request.app[PRIMARY], bck)
    await ctx.http.call("POST", f"{ctx.smap.primary.intra_url}/v1/rbck/{bck.name}", params=bucket_params(bck),
                        timeout_s=max(ctx.cfg.timeouts.control_s, 30))
    for _ in range(50):   # the primary has metasynced (or is still retrying to) this proxy
        props = ctx.bmd.get(bck)
        if props is not None:
            return props
        await asyncio.sleep(0.1)
    raise ServiceUnavailable(f"{bck.cname} was added, but this proxy has not received the new bucket metadata")


async def add_remote_bucket(ctx: ProxyContext, primary: Primary, bck: Bucket) -> Mapping[str, Any]:
    """Primary: HEAD the bucket at its backend (through a target) and add it to bucket metadata."""
    target = designated_target(ctx, bck)
    facts = await ctx.http.call_json("GET", f"{target.intra_url}/v1/rbck/{bck.name}", params=bucket_params(bck),
                                     timeout_s=max(ctx.cfg.timeouts.control_s, 30))

    async def add(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        if bmd.get(bck) is not None:
            return None, None
        props = default_bucket_props(bck, bmd.next_bid())
        props["extra"] = {bck.provider: dict(facts or {})}
        return None, bmd.with_bucket(bck, props)
    await primary.update(add)
    props = ctx.bmd.get(bck)
    if props is None:
        raise ServiceUnavailable(f"{bck.cname}: bucket metadata changed concurrently; retry")
    return props


async def add_remote_bucket_handler(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/rbck/{bucket}?provider=` on the primary (from a non-primary proxy)."""
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    if bck.is_ais:
        raise BadRequest(f"{bck.cname} is not a remote bucket")
    props = ctx.bmd.get(bck) or await add_remote_bucket(ctx, request.app[PRIMARY], bck)
    return web.json_response(dict(props))


async def remote_page(ctx: ProxyContext, bck: Bucket, prefix: str, token: str, limit: int, props: list[str],
                      not_cached: bool) -> tuple[list[dict[str, Any]], str]:
    """One page of a remote bucket from its backend, entries flagged cached (designated target)."""
    target = designated_target(ctx, bck)
    body = {"prefix": prefix, "token": token, "limit": limit, "props": props, "not_cached": not_cached}
    _, data, _ = await ctx.http.call("POST", f"{target.intra_url}/v1/rlso/{bck.name}", json_body=body,
                                     params=bucket_params(bck), timeout_s=max(ctx.cfg.timeouts.control_s, 60))
    page: dict[str, Any] = msgpack.unpackb(data)
    return list(page["entries"]), str(page["token"])
