"""The target's fast lane (ais.fasthttp) for S3 PutObject of a small body into an ais bucket,
as a proxy relays it: `s3.put_object`'s plain case, stored in one pool hop
(`objects.store_small`) and answered with the same headers.

Declined, so that the handler answers it: a query (multipart, versions), a copy, aws-chunked
bodies (their decoder, signatures and trailers are the handler's), a remote bucket (named by
the proxy), a background (job) write, auth on, an object this target does not own, a faulty
or slowed mountpath, non-ASCII header values, a body over `SMALL_PUT_BYTES` (the lane's
limit), and every failure: the handler then receives the same request again and renders the
error (a check that failed stored nothing; see `store_small`).
"""

from __future__ import annotations

from typing import Any, Mapping

from multidict import CIMultiDict

from ais import apc, names
from ais.errors import AisError
from ais.fasthttp import Answer, FastRequest, Route, RouteResult
from ais.s3 import sigv4
from target import s3 as s3api
from target.context import TargetContext
from target.fastget import local_object
from target.objects import store_small

_S3 = "/s3/"
_DECLINED = frozenset(h.lower().encode() for h in (
    apc.HDR_S3_PROVIDER, apc.HDR_BACKGROUND, "x-amz-copy-source", "content-encoding", "x-amz-decoded-content-length",
    "x-amz-trailer", s3api.HDR_SIGNING_KEY))
_STREAMING = frozenset(m.encode() for m in sigv4.STREAMING_MODES)


def route(ctx: TargetContext) -> Route:
    buckets = names.BucketCache()

    def put(req: FastRequest) -> RouteResult:
        path, h = req.path, req.headers
        if (req.query or "%" in path or not path.startswith(_S3) or ctx.gate is not None
                or not _DECLINED.isdisjoint(h) or h.get(b"x-amz-content-sha256", b"") in _STREAMING):
            return None
        bname, _, key = path[len(_S3):].partition("/")
        try:
            names.check_object_name(key)
            headers = CIMultiDict((k.decode("ascii"), v.decode("ascii")) for k, v in h.items())
        except (AisError, UnicodeDecodeError):
            return None
        found = local_object(ctx, buckets, bname, "", key)
        if found is None:
            return None
        bck, props, mp, fpath = found
        return _store(ctx, bck, key, props, mp, fpath, headers, req.body)

    return put


async def _store(ctx: TargetContext, bck: names.Bucket, key: str, props: Mapping[str, Any], mp: str, fpath: str,
                 headers: CIMultiDict[str], body: bytes) -> Answer | None:
    n = len(body)
    ctx.load.begin(n)
    try:
        rec, meta_of = s3api.put_receiver(headers, props)
        meta = await store_small(ctx, bck, key, props, mp, fpath, body, rec, meta_of)
    except Exception:  # noqa: BLE001 - declined: the handler receives it again and answers the error
        return None
    finally:
        ctx.load.end(n)
    return Answer(200, s3api.put_answer(meta))
