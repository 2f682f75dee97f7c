"""Batch-get at a proxy (reference §7): validate the request, pick the designated target,
redirect.

The proxy reads the JSON body only to validate it (a malformed request is a 400 here, before
any target works on it), make sure every bucket exists (remote ones are added on first use),
and choose the designated target: the target owning most entries with `coloc=1`, else a random
active target, which spreads assembly work over the cluster. The client's GET, body included,
is then redirected with 307 (clients re-send the body on 307 only).
"""

from __future__ import annotations

import collections
import random
import time

from aiohttp import web

from ais import apc, names
from ais.errors import ServiceUnavailable
from ais.moss import COLOC_TARGET_AWARE, read_request
from proxy.context import CTX
from proxy.remote import require_bucket


async def get_batch(request: web.Request) -> web.StreamResponse:
    # 1. request: the whole MossReq validated here
    ctx = request.app[CTX]
    req = await read_request(request)
    # 2. buckets exist (a remote one is added on first use); front-end rate limits count one GET each
    for bck in req.buckets:
        props = await require_bucket(request, bck)
        ctx.limiter.check(bck, props, "GET", len(ctx.smap.proxies))
    # 3. the designated target
    smap = ctx.smap
    targets = smap.active_targets()
    if not targets:
        raise ServiceUnavailable("the cluster has no active targets")
    if req.coloc >= COLOC_TARGET_AWARE:
        counts = collections.Counter(o.id for e in req.entries if (o := smap.owner(e.uname)) is not None)
        dt = smap.targets[counts.most_common(1)[0][0]]
    else:
        dt = random.choice(targets)
    # 4. redirect, body and query kept, with the proxy-ID and time markers
    path, _, raw_query = request.raw_path.partition("?")
    marker = f"{apc.Q_PID}={ctx.me.id}&{apc.Q_UTM}={names.base36(time.time_ns())}&tid={dt.id}"
    query = f"{raw_query}&{marker}" if raw_query else marker
    return web.Response(status=307, headers={"Location": ctx.sign_location(request, f"{dt.public_url}{path}?{query}")})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/ml/moss", get_batch, allow_head=False)
    app.router.add_get("/v1/ml/moss/{bucket}", get_batch, allow_head=False)
