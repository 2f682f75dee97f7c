"""The proxy's fast lane (ais.fasthttp): the 301 of a native object GET, and S3 GetObject
and PutObject.

The redirect: what `objects.redirect_object` answers for the plain case (the same Location,
with the proxy-ID and time markers).

S3 GetObject of an ais bucket at `/s3/<bucket>/<key>`, without a query: the signature checked
as `s3.authenticate` does (SigV4 headers), the request relayed to the owning target over a
pooled keep-alive connection and the target's answer relayed back whole, when it is at most
`RELAY_MAX_BODY` bytes; a larger one is dropped unread and the regular handler (which splices
large bodies) asks again: a GET is idempotent.

S3 PutObject of an ais bucket at `/s3/<bucket>/<key>`, without a query or a copy source, with
a body of at most `PUT_MAX_BODY` bytes by Content-Length: buffered whole by the lane, checked
the same way and relayed in one write on a pool of connections of its own (the target's lane
hands a PUT's connection to its handlers for good). The target checks the payload's hashes,
as it does for the handler's relay.

Everything else is declined, so that the regular handlers answer it: auth on, a
percent-encoded path or query, a namespace, a bucket not in the bucket metadata (404, or a
remote bucket added on first access), a front-end rate limit, no active target, an S3 request
that is not signed right (the handler renders the S3 error), presigned URLs, virtual hosts.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from ais import apc, names
from ais.cmap import Node
from ais.errors import AisError, InvalidName
from ais.fasthttp import Answer, FastRequest, RouteResult, Upstream
from ais.s3 import sigv4
from proxy import s3
from proxy.context import ProxyContext

_PREFIX = "/v1/objects/"
_S3 = "/s3/"
RELAY_MAX_BODY = 1 << 20
# the largest S3 PutObject body the lane takes (buffered whole, relayed in one write): the
# regular handler reads one this large whole, too
PUT_MAX_BODY = s3.SMALL_BODY_BYTES
_COPY_SOURCE = b"x-amz-copy-source"
# what the regular relay (s3.object_op) does not forward either, and what the lane sets itself
_NOT_RELAYED = frozenset([h.encode() for h in s3._HOP_BY_HOP] + [b"content-length", apc.HDR_REQUEST_ID.lower().encode(),
                                                                  apc.HDR_CALLER_ID.lower().encode(),
                                                                  apc.HDR_SMAP_VER.lower().encode()])


def upstream(ctx: ProxyContext) -> Upstream:
    """The lane's connections to the targets (closed by the caller at shutdown)."""
    return Upstream(RELAY_MAX_BODY, ctx.cfg.timeouts.data_read_s)


def route(ctx: ProxyContext, targets: Upstream) -> Any:
    buckets = names.BucketCache()
    marker = f"{apc.Q_PID}={ctx.me.id}&{apc.Q_SMAP_VER}="

    def answer(req: FastRequest) -> RouteResult:
        path, method = req.path, req.method
        if "%" in path or ctx.gate is not None or b"expect" in req.headers:
            return None
        if method == b"GET" and path.startswith(_PREFIX):
            return redirect(req)
        if path.startswith(_S3) and not req.query and not ctx.cfg.s3.virtual_host_domain:
            if method == b"GET":
                return s3_object(req, "GET")
            if method == b"PUT" and _COPY_SOURCE not in req.headers:
                return s3_object(req, "PUT")
        return None

    def redirect(req: FastRequest) -> RouteResult:
        path, query = req.path, req.query
        if "%" in query:
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
        owner = owner_of(bname, provider, obj)
        if owner is None:
            return None
        stamp = f"{marker}{ctx.smap.version}&{apc.Q_UTM}={names.base36(time.time_ns())}"
        location = f"{owner.public_url}{path}?{query}&{stamp}" if query else f"{owner.public_url}{path}?{stamp}"
        return Answer(301, {"Location": location})

    def s3_object(req: FastRequest, method: str) -> RouteResult:
        bname, _, key = req.path[len(_S3):].partition("/")
        owner = owner_of(bname, "", key)
        if owner is None or not _signed_right(ctx, req, method):
            return None
        return _relay(ctx, targets, owner, req, method)

    def owner_of(bname: str, provider: str, obj: str) -> Node | None:
        """The owner of an object in a bucket the lane may serve: in the bucket metadata,
        without a front-end rate limit; None otherwise (and for an invalid name)."""
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
        return smap.owner(bck.object_uname(obj))

    return answer


def _signed_right(ctx: ProxyContext, req: FastRequest, method: str) -> bool:
    """Anonymous access allowed, or a valid SigV4 header signature of a known key (and not
    one whose aws-chunked body carries chunk signatures: the handler passes the target the
    signing key to check those)."""
    keys = s3.secrets(ctx)
    if not keys:
        return True
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers.items()}
    try:
        auth = sigv4.parse(method, req.path, "", headers)
        if not isinstance(auth, sigv4.SigV4Auth) or auth.access_key not in keys \
                or auth.payload_hash in (sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER):
            return False
        sigv4.verify(auth, keys[auth.access_key])
    except AisError:
        return False
    return True


async def _relay(ctx: ProxyContext, upstream: Upstream, owner: Node, req: FastRequest, method: str) -> Answer | None:
    """The request to the owner, its answer back. A PUT's body is whole in `req.body`; if the
    relay declines after sending it, the handler sends it again: the same body under the
    same key, i.e. at most one more version of the same object."""
    url = urlsplit(owner.public_url)
    if url.scheme != "http" or url.hostname is None or url.port is None:
        return None
    lines = [f"{method} {req.path} HTTP/1.1\r\nHost: {url.netloc}\r\n{apc.HDR_CALLER_ID}: {ctx.http.caller_id}\r\n"
             f"{apc.HDR_REQUEST_ID}: {req.rid}\r\n{apc.HDR_SMAP_VER}: {ctx.smap.version}\r\n".encode()]
    if method == "PUT":
        lines.append(b"Content-Length: %d\r\n" % len(req.body))
    for name, value in req.headers.items():
        if name not in _NOT_RELAYED and not name.startswith(b"ais-s3-"):   # never trust a client's
            lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return await upstream.relay(url.hostname, url.port, b"".join(lines), req.body, pool=method)
