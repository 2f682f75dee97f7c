"""The target's fast lane (ais.fasthttp): GET of a small object stored here, in an ais bucket.

It answers exactly what `objects.get_object` would answer for the plain case, with the same
headers, and declines everything else so that `get_object` answers it: a query beyond the
provider and the proxy's markers, a Range, auth on, a remote bucket, `validate_warm_get`, an
object this target does not own (and was not redirected to), one not on its mountpath (a
rebalance, a mountpath change, EC, a neighbor), one larger than `SMALL_OBJECT_BYTES`, a bucket
ID mismatch, a faulty or slowed mountpath (test hooks), any OSError.

Where the I/O runs: the metadata syscalls run inline (open, fstat, getxattr: served by the
inode and dentry caches when the object is warm), and the content is read with `RWF_NOWAIT`,
which succeeds only from the page cache. A read that would wait on the disk goes to the
mountpath's pool instead, and so does all of that mountpath's lane I/O for the next `COLD_S`
seconds (see DESIGN §5). A pool hop costs the event loop more than the whole answer of a
warm object, which is why the warm case stays inline.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from ais import apc, names
from ais.errors import AisError
from ais.fasthttp import Answer, FastRequest, Route, RouteResult
from ais.names import Bucket
from target import mirror
from target import s3 as s3api
from target.context import TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.objects import _TARGET_REDIRECT, SMALL_OBJECT_BYTES, _check_bid, object_headers

_PREFIX = "/v1/objects/"
# A read that missed the page cache sends the lane's next COLD_S seconds of reads on that
# mountpath to its pool whole (open included): the dataset is colder than memory there, and a
# file whose pages are not cached may not have its inode cached either (open would block)
COLD_S = 1.0
_MARKERS = frozenset((apc.Q_PID, apc.Q_UTM, apc.Q_SMAP_VER))
_S3 = "/s3/"
# S3 GETs with these are the regular handler's: conditions, a remote bucket (named by the proxy)
_S3_DECLINED = frozenset((b"if-match", b"if-none-match", b"if-modified-since", b"if-unmodified-since",
                          apc.HDR_S3_PROVIDER.lower().encode()))


def local_object(ctx: TargetContext, buckets: names.BucketCache, bname: str, provider: str, obj: str,
                 redirected: bool = False) -> tuple[Bucket, Mapping[str, Any], str, str] | None:
    """Where a lane may serve an object: an `ais://` bucket in the bucket metadata, an object
    this target owns (or was redirected to), on a mountpath that is neither faulty nor slowed:
    (bucket, its props, mountpath, file path); None for anything else."""
    smap, bmd = ctx.store.smap, ctx.store.bmd
    if smap is None or bmd is None or not obj:
        return None
    bck = buckets.get(bname, provider)
    if bck is None or not bck.is_ais:
        return None
    props = bmd.get(bck)
    if props is None:
        return None
    owner = smap.owner(bck.object_uname(obj))
    if owner is None or (owner.id != ctx.me.id and not redirected):
        return None
    mps = ctx.mountpaths
    try:
        mp, fpath = mps.object_path(bck, obj)
    except AisError:
        return None
    if mp == mps.slow_path or mps.faulty() == mp:
        return None
    return bck, props, mp, fpath


def route(ctx: TargetContext) -> Route:
    buckets = names.BucketCache()
    cold: dict[str, float] = {}   # mountpath -> until when (monotonic) its lane reads go to its pool
    sent = ctx.metrics.bytes_out.labels(verb="GET")

    def get(req: FastRequest) -> RouteResult:
        # 1. the request: a plain GET of /v1/objects/<bucket>/<name>, or S3's /s3/<bucket>/<key>
        #    as a proxy relays it (no query, no conditions)
        path, h = req.path, req.headers
        if req.method != b"GET" or "%" in path or ctx.gate is not None or b"range" in h or b"expect" in h:
            return None
        provider, redirected, s3 = "", False, False
        if path.startswith(_PREFIX):
            bname, _, obj = path[len(_PREFIX):].partition("/")
            if req.query:
                if "%" in req.query:
                    return None
                for kv in req.query.split("&"):
                    k, _, v = kv.partition("=")
                    if k == apc.Q_PROVIDER:
                        provider = v
                    elif k == _TARGET_REDIRECT:
                        redirected = True
                    elif k not in _MARKERS:
                        return None
        elif path.startswith(_S3):
            if req.query or not _S3_DECLINED.isdisjoint(h):
                return None
            bname, _, obj = path[len(_S3):].partition("/")
            s3 = True
        else:
            return None
        # 2. the bucket, ownership and the mountpath, 3. the stored object
        found = local_object(ctx, buckets, bname, provider, obj, redirected)
        if found is None:
            return None
        bck, props, mp, fpath = found
        if mirror.validates_reads(props):
            return None
        checksums = s3 and h.get(b"x-amz-checksum-mode", b"").upper() == b"ENABLED"

        def finish(meta: ObjectMeta, data: bytes | bytearray) -> Answer | None:
            try:
                _check_bid(ctx, bck, obj, meta)
            except AisError:
                return None   # left from an earlier bucket of the same name: the regular handler's 404
            if s3:
                headers = s3api.s3_headers(ctx, bck, obj, mp, meta, checksums)
            else:
                headers = object_headers(ctx, bck, obj, mp, meta)
                headers["Content-Type"] = "application/octet-stream"
            sent.inc(len(data))
            if not redirected:
                ctx.load.foreground_read()
            return Answer(200, headers, data)

        now = time.monotonic()
        if cold.get(mp, 0.0) > now:   # this mountpath's reads miss the page cache: all I/O in its pool
            return _from_pool(ctx, mp, fpath, finish)
        got = fsmeta.read_small_cached(fpath, SMALL_OBJECT_BYTES)
        if got is None:
            return None
        if isinstance(got, str):   # fsmeta.NOT_CACHED
            cold[mp] = now + COLD_S
            return _from_pool(ctx, mp, fpath, finish)
        return finish(*got)

    return get


async def _from_pool(ctx: TargetContext, mp: str, path: str,
                     finish: Callable[[ObjectMeta, bytes | bytearray], Answer | None]) -> Answer | None:
    try:
        small = await ctx.mountpaths.run(mp, fsmeta.read_small, path, SMALL_OBJECT_BYTES)
    except OSError:
        return None
    if small is None or small[1] is None:
        return None
    return finish(small[0], small[1])
