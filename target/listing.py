"""One target's page of a bucket listing: its local objects after a token, sorted by name.

The proxy asks every target for up to `pagesize` names after the token and merges them; each
mountpath is walked in its own pool thread and the sorted streams are merged here.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any

import msgpack
from aiohttp import web

from ais import apc, names
from ais.errors import BadMessage
from ais.web import read_json
from target import mirror, shards
from target.context import CTX, TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.fs.walk import walk_sorted
from target.objects import etag_of

ENTRY_IS_CACHED = 1 << 6
ENTRY_IN_ARCH = 1 << 7      # a file inside a shard (`shard.tar/inner/file`), listed with the arch-dir flag
ENTRY_IS_ARCHIVE = 1 << 9   # a shard whose files the listing shows
_META_PROPS = {"checksum", "atime", "version", "custom", "etag", "last-modified"}


def _page(ctx: TargetContext, root: str, mp: str, prefix: str, after: str, limit: int,
          props: set[str], time_format: str, arch_dir: bool = False) -> list[dict[str, Any]]:
    """Blocking: up to `limit` entries of one mountpath (with `arch_dir`, shards' files too)."""
    out: list[dict[str, Any]] = []
    want_meta = bool(props & _META_PROPS)
    walk = shards.walk_expanding(root, prefix, after) if arch_dir else \
        ((name, entry, -1, False) for name, entry in walk_sorted(root, prefix, after))
    for name, entry, size, is_shard in itertools.islice(walk, limit):
        if entry is None:   # a file inside a shard
            e: dict[str, Any] = {"n": name, "f": ENTRY_IS_CACHED | ENTRY_IN_ARCH}
            if "size" in props or not props:
                e["s"] = size
            out.append(e)
            continue
        try:
            if want_meta:
                meta = fsmeta.stat_object(entry.path)
                if meta is None:
                    continue
            else:
                meta = ObjectMeta(size=entry.stat().st_size)
        except FileNotFoundError:
            continue  # deleted while listing
        out.append(entry_of(ctx, name, mp, meta, props, time_format))
        if "copies" in props:
            out[-1]["c"] = mirror.count_copies(ctx.mountpaths, mp, entry.path)
        if is_shard:
            out[-1]["f"] |= ENTRY_IS_ARCHIVE
    return out


def entry_of(ctx: TargetContext, name: str, mp: str, meta: ObjectMeta, props: set[str],
             time_format: str) -> dict[str, Any]:
    """A listing entry (the SDK's msgpack field names) of one local object."""
    e: dict[str, Any] = {"n": name, "f": ENTRY_IS_CACHED}
    if "checksum" in props and meta.cksum_value:
        e["cs"] = meta.cksum_value
    if "version" in props and meta.version:
        e["v"] = meta.version
    if "atime" in props:
        e["a"] = _fmt_time(meta.atime_ns, time_format)
    if "etag" in props:
        e["e"] = etag_of(meta)
    if "last-modified" in props:
        e["lm"] = meta.mtime_ns
    if "custom" in props and meta.custom:
        e["m"] = ",".join(f"{k}={v}" for k, v in sorted(meta.custom.items()))
    if "size" in props or not props:
        e["s"] = meta.size
    if "location" in props:
        e["t"] = f"{ctx.me.display}:{mp}"
    if "copies" in props:
        e["c"] = 1
    return e


def _fmt_time(ns: int, fmt: str) -> str:
    t = time.gmtime(ns / 1e9)
    if fmt.upper() in ("RFC3339", "2006-01-02T15:04:05Z07:00"):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
    return time.strftime("%d %b %y %H:%M UTC", t)  # Go time.RFC822


async def list_page(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/lso/{bucket}`: {prefix, after, limit, props, time_format} -> msgpack entries."""
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    ctx.bucket_props(bck)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadMessage("list page request must be a JSON object")
    prefix, after = str(body.get("prefix", "")), str(body.get("after", ""))
    limit = body.get("limit", apc.MAX_PAGE_SIZE)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= apc.MAX_PAGE_SIZE:
        raise BadMessage(f"list page request: 'limit' must be an integer 0..{apc.MAX_PAGE_SIZE}, got {limit!r:.40}")
    props = names.prop_names(body.get("props"))
    time_format = str(body.get("time_format", ""))
    arch_dir = bool(body.get("arch_dir", False))
    pages = []
    for mp in ctx.mountpaths.paths:
        root = ctx.mountpaths.bucket_dir(mp, bck)
        pages.append(ctx.mountpaths.run(mp, _page, ctx, root, mp, prefix, after, limit, props, time_format,
                                          arch_dir))
    results = await asyncio.gather(*pages)
    merged = list(itertools.islice(heapq.merge(*results, key=lambda e: e["n"]), limit))
    return web.Response(body=msgpack.packb(merged), content_type=apc.MSGPACK)
