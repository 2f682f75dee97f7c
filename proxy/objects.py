"""Object requests at a proxy: pick the owning target by HRW and redirect (reference §1.8).

301 for GET (clients drop the body, and a GET carries none), 307 for everything that may
carry a body. The proxy never reads an object body: the SDK's two-leg HTTPS PUT depends on it.
"""

from __future__ import annotations

import time

from aiohttp import web

from ais import apc, names
from ais.errors import NotImplementedErr, ServiceUnavailable
from proxy.context import CTX
from proxy.remote import require_bucket




async def redirect_object(request: web.Request) -> web.StreamResponse:
    # 1. request: validate bucket and object names
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    obj = names.check_object_name(request.match_info["obj"])
    # 2. bucket: must exist in bucket metadata (a remote one is added on first access)
    await require_bucket(request, bck)
    # 3. placement
    owner = ctx.smap.owner(bck.object_uname(obj))
    if owner is None:
        raise ServiceUnavailable("the cluster has no active targets")
    # 4. redirect with the proxy-ID and time markers
    # the raw (still percent-encoded) query: a decoded one would turn %23 into a fragment '#'
    path, _, raw_query = request.raw_path.partition("?")
    marker = f"{apc.Q_PID}={ctx.me.id}&{apc.Q_UTM}={names.base36(time.time_ns())}"
    query = f"{raw_query}&{marker}" if raw_query else marker
    status = 301 if request.method == "GET" else 307
    return web.Response(status=status, headers={"Location": f"{owner.public_url}{path}?{query}"})


async def bucket_level_object_action(request: web.Request) -> web.StreamResponse:
    """`POST /v1/objects/<bucket>` (promote, blob-download): not supported yet."""
    raise NotImplementedErr("promote and blob-download are not supported yet")
