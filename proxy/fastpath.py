"""The proxy's fast lane (ais.fasthttp): the 301 of a native object GET.

It answers what `objects.redirect_object` answers for the plain case (the same Location, with
the proxy-ID and time markers), and declines everything else so that the regular handler
answers it: auth on, a percent-encoded path or query, a namespace, a bucket not in the bucket
metadata (404, or a remote bucket added on first access), a bucket with a front-end rate limit,
no active target.
"""

from __future__ import annotations

import time
from typing import Any

from ais import apc, names
from ais.errors import InvalidName
from ais.fasthttp import Answer, FastRequest, RouteResult
from proxy.context import ProxyContext

_PREFIX = "/v1/objects/"


def route(ctx: ProxyContext) -> Any:
    buckets = names.BucketCache()
    marker = f"{apc.Q_PID}={ctx.me.id}&{apc.Q_UTM}="

    def redirect(req: FastRequest) -> RouteResult:
        path, query = req.path, req.query
        if req.method != b"GET" or not path.startswith(_PREFIX) or "%" in path or "%" in query \
                or ctx.gate is not None or b"expect" in req.headers:
            return None
        bname, _, obj = path[len(_PREFIX):].partition("/")
        provider = ""
        if query:
            for kv in query.split("&"):
                k, _, v = kv.partition("=")
                if k == apc.Q_PROVIDER:
                    provider = v
                elif k == apc.Q_NAMESPACE:
                    return None
        smap, bmd = ctx.store.smap, ctx.store.bmd
        if smap is None or bmd is None or not obj:
            return None
        bck = buckets.get(bname, provider)
        if bck is None:
            return None
        props = bmd.get(bck)
        if props is None or ((props.get("rate_limit") or {}).get("frontend") or {}).get("enabled"):
            return None
        try:
            names.check_object_name(obj)
        except InvalidName:
            return None
        owner = smap.owner(bck.object_uname(obj))
        if owner is None:
            return None
        stamp = marker + names.base36(time.time_ns())
        location = f"{owner.public_url}{path}?{query}&{stamp}" if query else f"{owner.public_url}{path}?{stamp}"
        return Answer(301, {"Location": location})

    return redirect
