"""Object requests at a proxy: pick the owning target by HRW and redirect (reference §1.8).

301 for GET (clients drop the body, and a GET carries none), 307 for everything that may
carry a body. The proxy never reads an object body: the SDK's two-leg HTTPS PUT depends on it.
"""

from __future__ import annotations

import time

from aiohttp import web

from ais import apc, names
from ais.errors import BadRequest, NotImplementedErr, ServiceUnavailable, UnknownAction
from ais.web import read_action
from proxy.cluster import start_job
from proxy.context import CTX
from proxy.remote import require_bucket




async def redirect_object(request: web.Request) -> web.StreamResponse:
    # 1. request: validate bucket and object names
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    obj = names.check_object_name(request.match_info["obj"])
    # 2. bucket: must exist in bucket metadata (a remote one is added on first access)
    props = await require_bucket(request, bck)
    # 3. rate limit, then placement
    ctx.limiter.check(bck, props, request.method, len(ctx.smap.proxies))
    owner = ctx.smap.owner(bck.object_uname(obj))
    if owner is None:
        raise ServiceUnavailable("the cluster has no active targets")
    # 4. redirect with the proxy-ID, cluster map version and time markers (the owner waits for this
    #    map, if it has not got it yet, before it answers that it does not have the object)
    # the raw (still percent-encoded) query: a decoded one would turn %23 into a fragment '#'
    path, _, raw_query = request.raw_path.partition("?")
    marker = f"{apc.Q_PID}={ctx.me.id}&{apc.Q_SMAP_VER}={ctx.smap.version}&{apc.Q_UTM}={names.base36(time.time_ns())}"
    query = f"{raw_query}&{marker}" if raw_query else marker
    status = 301 if request.method == "GET" else 307
    location = ctx.sign_location(request, f"{owner.public_url}{path}?{query}")
    return web.Response(status=status, headers={"Location": location})


async def bucket_level_object_action(request: web.Request) -> web.StreamResponse:
    """`POST /v1/objects/<bucket>`: blob-download (a job on the object's owner); promote is not supported."""
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    msg = await read_action(request)
    assert msg is not None
    if msg.action != apc.ACT_BLOB_DOWNLOAD:
        if msg.action == "promote":
            raise NotImplementedErr("promote is not supported yet")
        raise UnknownAction(f"unknown object action {msg.action!r}")
    if bck.is_ais:
        raise BadRequest(f"blob-download needs a remote bucket, and {bck.cname} is not one")
    obj = names.check_object_name(msg.name)
    await require_bucket(request, bck)
    owner = ctx.smap.owner(bck.object_uname(obj))
    if owner is None:
        raise ServiceUnavailable("the cluster has no active targets")
    value = msg.value if isinstance(msg.value, dict) else {}
    job_id = await start_job(ctx, apc.ACT_BLOB_DOWNLOAD, bck, None, {**value, "name": obj}, targets=[owner])
    return web.Response(text=job_id, content_type="text/plain")
