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

import os
import time
from typing import Any

from ais import apc, names
from ais.errors import AisError
from ais.fasthttp import Answer, FastRequest, RouteResult
from ais.names import Bucket
from target import mirror
from target.context import TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.objects import SMALL_OBJECT_BYTES, object_headers

_PREFIX = "/v1/objects/"
# A read that missed the page cache sends the lane's next COLD_S seconds of reads on that
# mountpath to its pool whole (open included): the dataset is colder than memory there, and a
# file whose pages are not cached may not have its inode cached either (open would block)
COLD_S = 1.0
_MARKERS = frozenset((apc.Q_PID, apc.Q_UTM))
_TRD = "trd"   # objects._TARGET_REDIRECT: redirected here by another target


def route(ctx: TargetContext) -> Any:
    buckets = names.BucketCache()
    cold: dict[str, float] = {}   # mountpath -> until when (monotonic) its lane reads go to its pool
    sent = ctx.metrics.bytes_out.labels(verb="GET")

    def get(req: FastRequest) -> RouteResult:
        # 1. the request: a plain GET of /v1/objects/<bucket>/<name>
        path = req.path
        if req.method != b"GET" or not path.startswith(_PREFIX) or "%" in path or ctx.gate is not None:
            return None
        if b"range" in req.headers or b"expect" in req.headers:
            return None
        bname, _, obj = path[len(_PREFIX):].partition("/")
        provider, redirected = "", False
        if req.query:
            for kv in req.query.split("&"):
                k, _, v = kv.partition("=")
                if k == apc.Q_PROVIDER:
                    provider = v
                elif k == _TRD:
                    redirected = True
                elif k not in _MARKERS:
                    return None
        store = ctx.store
        smap, bmd = store.smap, store.bmd
        if smap is None or bmd is None or not obj or "%" in req.query:
            return None
        bck = buckets.get(bname, provider)
        if bck is None or not bck.is_ais:
            return None
        props = bmd.get(bck)
        if props is None or mirror.validates_reads(props):
            return None
        # 2. ownership, 3. the stored object
        uname = bck.object_uname(obj)
        owner = smap.owner(uname)
        if owner is None or (owner.id != ctx.me.id and not redirected):
            return None
        mps = ctx.mountpaths
        try:
            mp, fpath = mps.object_path(bck, obj)
        except AisError:
            return None
        if mp == mps.slow_path or mps.faulty() == mp:
            return None
        now = time.monotonic()
        if cold.get(mp, 0.0) > now:   # this mountpath's reads miss the page cache: all I/O in its pool
            return _from_pool(ctx, bck, obj, props, mp, fpath, redirected, sent)
        got = _read_cached(fpath)
        if got is None:
            return None
        if isinstance(got, str):   # _NOT_CACHED
            cold[mp] = now + COLD_S
            return _from_pool(ctx, bck, obj, props, mp, fpath, redirected, sent)
        meta, data = got
        return _answer(ctx, bck, obj, props, mp, meta, data, redirected, sent)

    return get


_NOT_CACHED = "not cached"


def _read_cached(path: str) -> tuple[ObjectMeta, bytearray] | str | None:
    """(meta, content) of a small object whose content is in the page cache; `_NOT_CACHED`
    when reading it would wait on the disk; None when there is no such small object here (or
    any error: the regular handler answers it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_size > SMALL_OBJECT_BYTES or (st.st_mode & 0o170000) != 0o100000:
            return None
        meta = fsmeta.read_meta_fd(fd, st)
        buf = bytearray(st.st_size)
        if st.st_size:
            try:
                n = os.preadv(fd, [buf], 0, os.RWF_NOWAIT)
            except BlockingIOError:
                return _NOT_CACHED
            if n != st.st_size:
                return _NOT_CACHED if n >= 0 else None
        return meta, buf
    except OSError:
        return None
    finally:
        os.close(fd)


async def _from_pool(ctx: TargetContext, bck: Bucket, obj: str, props: Any, mp: str, path: str,
                     redirected: bool, sent: Any) -> Answer | None:
    try:
        small = await ctx.mountpaths.run(mp, fsmeta.read_small, path, SMALL_OBJECT_BYTES)
    except OSError:
        return None
    if small is None or small[1] is None:
        return None
    return _answer(ctx, bck, obj, props, mp, small[0], small[1], redirected, sent)


def _answer(ctx: TargetContext, bck: Bucket, obj: str, props: Any, mp: str, meta: ObjectMeta,
            data: bytes | bytearray, redirected: bool, sent: Any) -> Answer | None:
    bid = int(str(props.get("bid", "0")))
    if meta.bid and bid and meta.bid != bid:
        return None   # left from an earlier bucket of the same name: the regular handler's 404
    headers = object_headers(ctx, bck, obj, mp, meta)
    headers["Content-Type"] = "application/octet-stream"
    sent.inc(len(data))
    if not redirected:
        ctx.load.foreground_read()
    return Answer(200, headers, data)
