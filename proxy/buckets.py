"""Bucket requests at a proxy: list buckets and objects, create, destroy, props, rename, copy.

Changes to bucket metadata happen on the primary (a non-primary proxy forwards them there).
Object listing fans out to every target and merges their sorted pages by name.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import os
import uuid as uuidlib
from typing import Any, Mapping

import aiohttp
import msgpack
from aiohttp import web

from ais import apc, names
from ais.cmap import READONLY_PROPS, BucketMD, ClusterMap, default_bucket_props
from ais.ec import ACT_EC_ENCODE, check_props as check_ec_props
from ais.errors import (AisError, BadMessage, BadRequest, BucketExists, BucketNotFound, NotImplementedErr,
                        ServiceUnavailable, UnknownAction)
from ais.names import Bucket
from ais.template import parse_selection
from ais.web import ActionMsg, action_msg, ci_get, parse_json, read_action, read_body
from proxy.cluster import start_job, wait_job
from proxy.context import CTX, ProxyContext
from proxy import mirror
from proxy.membership import PRIMARY, Primary
from proxy.remote import remote_page, require_bucket

log = logging.getLogger(__name__)

__all__ = ["PRIMARY", "create_bucket", "forward_to_primary", "merged_page"]

FLAG_CACHED = 1 << 0
FLAG_ARCH_DIR = 1 << 3   # list the files inside shards too (implies cached)
FLAG_NOT_CACHED = 1 << 9
FLAG_NAME_ONLY = 1 << 4
FLAG_NAME_SIZE = 1 << 5
_VALID_PROPS = {"name", "size", "version", "checksum", "atime", "cached", "status", "copies", "ec", "custom",
                "location", "target_url"}


def _bucket(request: web.Request, required: bool = True) -> Bucket | None:
    name = request.match_info.get("bucket", "")
    if not name:
        if required:
            raise BadRequest("bucket name is required")
        return None
    q = request.query
    return names.make_bucket(name, q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))


async def forward_to_primary(request: web.Request, ctx: ProxyContext, body: bytes) -> web.StreamResponse:
    url = f"{ctx.smap.primary.public_url}{request.raw_path}"
    headers = ctx.http.headers({"Content-Type": apc.JSON})
    status, data, hdrs = await _raw_call(ctx, request.method, url, body, headers)
    out = web.Response(status=status, body=data)
    for h in ("Content-Type", apc.HDR_XACTION_ID):
        if h in hdrs:
            out.headers[h] = hdrs[h]
    return out


async def _raw_call(ctx: ProxyContext, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, Mapping[str, str]]:
    try:
        async with ctx.http.session.request(method, url, data=body, headers=headers,
                                            timeout=ctx.http.control_timeout(60), allow_redirects=False) as r:
            return r.status, await r.read(), r.headers
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ServiceUnavailable(f"cannot reach the primary: {exc}") from exc


# --- GET: list buckets, list objects, summary -----------------------------------------------

async def get_buckets(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    msg = await read_action(request, required=False) or ActionMsg(action=apc.ACT_LIST)
    bck = _bucket(request, required=False)
    if msg.action != apc.ACT_LIST:
        if msg.action == apc.ACT_SUMMARY_BCK:
            raise NotImplementedErr("bucket summary is not supported yet")
        raise UnknownAction(f"unknown bucket GET action {msg.action!r}")
    if bck is None or msg.value is None:
        return _list_buckets(request, ctx, bck)
    if not isinstance(msg.value, dict):
        raise BadMessage("list-objects value must be a JSON object (LsoMsg)")
    return await list_objects(request, ctx, bck, msg.value)


def _list_buckets(request: web.Request, ctx: ProxyContext, bck: Bucket | None) -> web.StreamResponse:
    prov = request.query.get(apc.Q_PROVIDER, "")
    want = names.normalize_provider(prov) if prov else ""
    out = [b.to_wire() for b in sorted(ctx.bmd.buckets, key=lambda b: (b.provider, b.name))
           if (not want or b.provider == want) and (bck is None or b == bck)]
    return web.json_response(out)


def _whole_number(raw: Any, what: str, maximum: int) -> int:
    """An integer in [0, maximum], sent as a JSON number or a decimal string (Go's uint64 as string)."""
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise BadMessage(f"invalid list-objects {what} {raw!r}: expected a whole number")
    try:
        n = int(raw)
    except ValueError:
        raise BadMessage(f"invalid list-objects {what} {raw!r}: expected a whole number") from None
    if not 0 <= n <= maximum:
        raise BadRequest(f"list-objects {what} {n} is out of range 0..{maximum}")
    return n


def _parse_lso(value: Mapping[str, Any]) -> dict[str, Any]:
    flags = _whole_number(ci_get(value, "flags", 0), "flags", 2**64 - 1)
    pagesize = _whole_number(ci_get(value, "pagesize", 0), "pagesize", 2**63 - 1)
    props_text = str(ci_get(value, "props", "") or "")
    props = {p.strip() for p in props_text.split(",") if p.strip()}
    unknown = props - _VALID_PROPS
    if unknown:
        raise BadRequest(f"unknown list-objects props {sorted(unknown)}; valid: {sorted(_VALID_PROPS)}")
    if not props:
        props = {"name", "size", "checksum", "atime"} if flags & FLAG_CACHED else {"name", "size", "cached"}
    if flags & FLAG_NAME_ONLY:
        props = {"name"}
    if flags & FLAG_ARCH_DIR:
        flags |= FLAG_CACHED   # shards are opened where they are: in the cluster
    return {
        "uuid": str(ci_get(value, "uuid", "") or ""),
        "prefix": str(ci_get(value, "prefix", "") or ""),
        "token": str(ci_get(value, "continuation_token", "") or ""),
        "start_after": str(ci_get(value, "start_after", "") or ""),
        "pagesize": min(pagesize or apc.MAX_PAGE_SIZE, apc.MAX_PAGE_SIZE),
        "props": sorted(props),
        "time_format": str(ci_get(value, "time_format", "") or ""),
        "flags": flags,
    }


async def list_objects(request: web.Request, ctx: ProxyContext, bck: Bucket, value: Mapping[str, Any]) -> web.StreamResponse:
    # 1. request and bucket
    await require_bucket(request, bck)
    lso = _parse_lso(value)
    if not bck.is_ais and not lso["flags"] & FLAG_CACHED:
        # 2a. remote bucket: a page from the backend through the designated target
        merged, token = await remote_page(ctx, bck, lso["prefix"], lso["token"], min(lso["pagesize"], 1000),
                                          lso["props"], bool(lso["flags"] & FLAG_NOT_CACHED))
    else:
        # 2b. objects in the cluster: fan out and merge by name
        after = max(lso["token"], lso["start_after"])
        merged = await merged_page(ctx, bck, lso["prefix"], after, lso["pagesize"], lso["props"], lso["time_format"],
                                   arch_dir=bool(lso["flags"] & FLAG_ARCH_DIR))
        token = merged[-1]["n"] if len(merged) == lso["pagesize"] else ""
    list_uuid = lso["uuid"] or uuidlib.uuid4().hex
    # 4. answer: msgpack with Go field names when asked, JSON otherwise (reference §2)
    if apc.MSGPACK in request.headers.get("Accept", ""):
        payload = {"UUID": list_uuid, "ContinuationToken": token, "Entries": merged, "Flags": 0}
        return web.Response(body=msgpack.packb(payload), content_type=apc.MSGPACK)
    entries = [{"name": e["n"], "checksum": e.get("cs", ""), "atime": e.get("a", ""), "version": e.get("v", ""),
                "location": e.get("t", ""), "custom-md": e.get("m", ""), "size": str(e.get("s", 0)),
                "copies": e.get("c", 0), "flags": e.get("f", 0)} for e in merged]
    return web.json_response({"uuid": list_uuid, "continuation_token": token, "entries": entries, "flags": 0})


async def merged_page(ctx: ProxyContext, bck: Bucket, prefix: str, after: str, limit: int, props: list[str],
                      time_format: str = "", arch_dir: bool = False) -> list[dict[str, Any]]:
    """Up to `limit` entries after `after`, in name order, from every target (k-way merge).

    Each target returns its own first `limit` names after the token, so the merged first
    `limit` are the cluster's. Duplicates (an object briefly on two targets) appear once.
    """
    targets = ctx.smap.active_targets()
    if not targets:
        raise ServiceUnavailable("the cluster has no active targets")
    body = {"prefix": prefix, "after": after, "limit": limit, "props": props, "time_format": time_format,
            "arch_dir": arch_dir}
    params = {apc.Q_PROVIDER: bck.provider}
    if not bck.namespace.is_global:
        params[apc.Q_NAMESPACE] = bck.namespace.uname

    async def page(t: Any) -> list[dict[str, Any]]:
        _, data, _ = await ctx.http.call("POST", f"{t.intra_url}/v1/lso/{bck.name}", json_body=body, params=params,
                                         timeout_s=max(ctx.cfg.timeouts.control_s, 60))
        result: list[dict[str, Any]] = msgpack.unpackb(data)
        return result
    pages = await asyncio.gather(*(page(t) for t in targets))
    merged: list[dict[str, Any]] = []
    last = None
    for e in heapq.merge(*pages, key=lambda e: e["n"]):
        if e["n"] == last:
            continue
        last = e["n"]
        merged.append(e)
        if len(merged) == limit:
            break
    return merged


# --- HEAD -----------------------------------------------------------------------------------

async def head_bucket(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    bck = _bucket(request)
    assert bck is not None
    props = await require_bucket(request, bck)
    versioning = bool((props.get("versioning") or {}).get("enabled", True))
    return web.Response(status=200, headers={
        apc.HDR_BUCKET_PROPS: json.dumps(props), apc.HDR_VERSIONING_ENABLED: str(versioning).lower(),
        "Ais-Provider": bck.provider})


# --- POST / DELETE / PATCH: metadata changes (primary) --------------------------------------

async def _read_for_change(request: web.Request) -> tuple[ProxyContext, bytes, ActionMsg | None]:
    ctx = request.app[CTX]
    body = await read_body(request)
    if not ctx.is_primary:
        return ctx, body, None
    if not body.strip():
        raise BadMessage("missing action message: expected a JSON body {\"action\": ...}")
    return ctx, body, action_msg(parse_json(body))


async def post_bucket(request: web.Request) -> web.StreamResponse:
    ctx, body, msg = await _read_for_change(request)
    if msg is None:
        return await forward_to_primary(request, ctx, body)
    bck = _bucket(request)
    assert bck is not None
    primary = request.app[PRIMARY]
    if msg.action == apc.ACT_CREATE_BCK:
        await mirror.validate_change(ctx, bck, msg.value)
        await create_bucket(primary, bck, msg.value)
        return web.Response(status=200)
    if msg.action in (apc.ACT_MOVE_BCK, apc.ACT_COPY_BCK):
        return await _copy_or_move(request, ctx, primary, bck, msg)
    if msg.action == apc.ACT_PREFETCH_LIST:
        return await _list_job(request, ctx, bck, msg, remote_only=True)
    if msg.action == apc.ACT_COPY_LIST:
        return await _copy_list(request, ctx, primary, bck, msg)
    if msg.action in ("etl-bck", "etl-listrange"):
        from proxy import etl  # etl imports this module
        return await etl.transform(request, ctx, primary, bck, msg)
    if msg.action == apc.ACT_MAKE_N_COPIES:
        return await mirror.make_n_copies(request, ctx, primary, bck, msg)
    if msg.action == ACT_EC_ENCODE:
        return await _ec_encode(request, ctx, primary, bck, msg)
    raise UnknownAction(f"unknown bucket POST action {msg.action!r}")


async def _list_job(request: web.Request, ctx: ProxyContext, bck: Bucket, msg: ActionMsg,
                    remote_only: bool = False) -> web.StreamResponse:
    """prefetch-, evict- and delete-listrange: a job on every target over the selected objects."""
    if remote_only and bck.is_ais:
        raise BadRequest(f"{msg.action} needs a remote bucket, and {bck.cname} is not one")
    await require_bucket(request, bck)
    value = msg.value if isinstance(msg.value, dict) else {}
    parse_selection(value)   # a malformed selection is this request's 400, not a failed job
    job_id = await start_job(ctx, msg.action, bck, None, value)
    return web.Response(text=job_id, content_type="text/plain")


async def _ensure_destination(primary: Primary, src: Bucket, dst: Bucket, exclusive: bool = False) -> None:
    """Create the ais:// destination of a copy (with the source's props when it is ais:// too)."""
    if not dst.is_ais:
        raise NotImplementedErr(f"copying to {dst.cname} is not supported yet")

    async def prepare(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        src_props = bmd.get(src)
        if src_props is None:
            raise BucketNotFound(src.cname)
        if bmd.get(dst) is not None:
            if exclusive:
                raise BucketExists(dst.cname)
            return None, None
        base = src_props if src.is_ais else default_bucket_props(dst, 0)
        return None, bmd.with_bucket(dst, {**base, "bid": str(bmd.next_bid())})
    await primary.update(prepare)


async def _copy_list(request: web.Request, ctx: ProxyContext, primary: Primary, src: Bucket,
                     msg: ActionMsg) -> web.StreamResponse:
    """copy-listrange: the selected objects to `tobck` (TCOMsg), as a job on every target."""
    value = msg.value if isinstance(msg.value, dict) else {}
    tobck = value.get("tobck")
    if not isinstance(tobck, dict) or not tobck.get("name"):
        raise BadMessage("copy-listrange needs the destination bucket in 'tobck'")
    dst = names.bucket_from_wire(tobck)
    parse_selection(value)
    names.check_prepend(value.get("prepend"))
    await require_bucket(request, src)
    await _ensure_destination(primary, src, dst)
    job_id = await start_job(ctx, apc.ACT_COPY_LIST, src, dst, value)
    return web.Response(text=job_id, content_type="text/plain")


async def put_bucket(request: web.Request) -> web.StreamResponse:
    """`PUT /v1/buckets/<src>`: the `archive` action (reference §8)."""
    ctx, body, msg = await _read_for_change(request)
    if msg is None:
        return await forward_to_primary(request, ctx, body)
    bck = _bucket(request)
    assert bck is not None
    if msg.action != apc.ACT_ARCHIVE:
        raise UnknownAction(f"unknown bucket PUT action {msg.action!r}")
    return await _archive(request, ctx, request.app[PRIMARY], bck, msg)


async def _archive(request: web.Request, ctx: ProxyContext, primary: Primary, src: Bucket,
                   msg: ActionMsg) -> web.StreamResponse:
    """archive: the selected objects into one shard `archname` of `tobck` (ArchiveMsg), built by
    the target that owns the shard's name; reads of sources it does not own go to their owners."""
    value = msg.value if isinstance(msg.value, dict) else {}
    archname = value.get("archname")
    if not isinstance(archname, str) or not archname:
        raise BadMessage("archive needs the shard's name in 'archname'")
    names.check_object_name(archname)
    tobck = value.get("tobck")
    dst = names.bucket_from_wire(tobck) if isinstance(tobck, dict) and tobck.get("name") else src
    parse_selection(value)
    await require_bucket(request, src)
    if dst.is_ais:
        await _ensure_destination(primary, src, dst)
    else:
        await require_bucket(request, dst)
    owner = ctx.smap.owner(dst.object_uname(archname))
    if owner is None:
        raise ServiceUnavailable("the cluster has no active targets")
    # the target checks the rest (mime, flags) as it accepts the job: a bad one is this request's 400
    job_id = await start_job(ctx, apc.ACT_ARCHIVE, src, dst, value, targets=[owner])
    return web.Response(text=job_id, content_type="text/plain")


async def _evict_bucket(request: web.Request, ctx: ProxyContext, bck: Bucket) -> web.StreamResponse:
    """evict-remote-bck: drop every cached object; without `keep_bck_md`, forget the bucket too."""
    if bck.is_ais:
        raise BadRequest(f"cannot evict {bck.cname}: only remote buckets are evicted")
    if ctx.bmd.get(bck) is None:
        raise BucketNotFound(bck.cname)
    job_id = await start_job(ctx, apc.ACT_EVICT_REMOTE_BCK, bck, None, {})
    snaps = await wait_job(ctx, job_id)
    errors = [s["err"] for ss in snaps.values() for s in ss if s["err"]]
    if errors:
        raise AisError(f"evicting {bck.cname} failed: {errors[0]}")
    if not names.parse_bool(request.query.get(apc.Q_KEEP_BCK_MD), apc.Q_KEEP_BCK_MD):
        await _forget_bucket(request.app[PRIMARY], bck)
    return web.Response(text=job_id, content_type="text/plain")


async def _forget_bucket(primary: Primary, bck: Bucket) -> None:
    """Remove a bucket from bucket metadata (if it is still there)."""
    async def forget(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        return (None, bmd.without_bucket(bck)) if bmd.get(bck) is not None else (None, None)
    await primary.update(forget)


async def create_bucket(primary: Primary, bck: Bucket, value: Any) -> None:
    if not bck.is_ais:
        raise BadRequest(f"cannot create {bck.cname}: only ais:// buckets are created explicitly")
    if value is not None and not isinstance(value, dict):
        raise BadMessage("create-bck value must be bucket props (a JSON object)")

    async def add(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        if bmd.get(bck) is not None:
            raise BucketExists(bck.cname)
        props = _merge_props(default_bucket_props(bck, bmd.next_bid()), value or {})
        check_ec_props(bck, props, None, len(smap.active_targets()))
        return None, bmd.with_bucket(bck, props)
    await primary.update(add)


def _merge_props(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in change.items():
        if k in READONLY_PROPS:
            if k == "provider" and v in ("", base.get("provider")):
                continue
            raise BadRequest(f"bucket property {k!r} cannot be changed")
        if k not in base:
            raise BadRequest(f"unknown bucket property {k!r}")
        out[k] = _merge_value(k, base[k], v)
    return out


def _merge_value(path: str, base: Any, change: Any) -> Any:
    """A nested prop merged key by key (`rate_limit.frontend.enabled` keeps its siblings); flags
    stay booleans and counts stay numbers."""
    if isinstance(base, bool):
        if not isinstance(change, bool):
            raise BadRequest(f"bucket property {path!r} must be true or false, not {change!r}")
        return change
    if isinstance(base, (int, float)):
        if isinstance(change, bool) or not isinstance(change, (int, float)):
            raise BadRequest(f"bucket property {path!r} must be a number, not {change!r}")
        return change
    if not isinstance(base, dict):
        return change
    if not isinstance(change, dict):
        raise BadRequest(f"bucket property {path!r} must be an object")
    unknown = set(change) - set(base)
    if unknown:
        raise BadRequest(f"unknown bucket properties {sorted(f'{path}.{u}' for u in unknown)}")
    return {**base, **{k: _merge_value(f"{path}.{k}", base[k], v) for k, v in change.items()}}


async def delete_bucket(request: web.Request) -> web.StreamResponse:
    ctx, body, msg = await _read_for_change(request)
    if msg is None:
        return await forward_to_primary(request, ctx, body)
    bck = _bucket(request)
    assert bck is not None
    if msg.action in (apc.ACT_EVICT_LIST, apc.ACT_DELETE_LIST):
        return await _list_job(request, ctx, bck, msg, remote_only=msg.action == apc.ACT_EVICT_LIST)
    if msg.action == apc.ACT_EVICT_REMOTE_BCK:
        return await _evict_bucket(request, ctx, bck)
    if msg.action != apc.ACT_DESTROY_BCK:
        raise UnknownAction(f"unknown bucket DELETE action {msg.action!r}")
    if not bck.is_ais:
        raise BadRequest(f"cannot destroy {bck.cname}: only ais:// buckets can be destroyed")

    async def remove(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        if bmd.get(bck) is None:
            raise BucketNotFound(bck.cname)
        return None, bmd.without_bucket(bck)
    await request.app[PRIMARY].update(remove)
    return web.Response(status=200)


async def patch_bucket(request: web.Request) -> web.StreamResponse:
    ctx, body, msg = await _read_for_change(request)
    if msg is None:
        return await forward_to_primary(request, ctx, body)
    bck = _bucket(request)
    assert bck is not None
    if msg.action not in (apc.ACT_SET_BPROPS, apc.ACT_RESET_BPROPS):
        raise UnknownAction(f"unknown bucket PATCH action {msg.action!r}")
    if msg.action == apc.ACT_SET_BPROPS and not isinstance(msg.value, dict):
        raise BadMessage("set-bprops value must be a JSON object of bucket props")
    await require_bucket(request, bck)   # a remote bucket is added on first access
    copies = await mirror.validate_change(ctx, bck, msg.value) if msg.action == apc.ACT_SET_BPROPS else None
    ec_on = False

    async def change(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        props = bmd.get(bck)
        if props is None:
            raise BucketNotFound(bck.cname)
        if msg.action == apc.ACT_RESET_BPROPS:
            fresh = default_bucket_props(bck, int(str(props.get("bid", "0"))))
            fresh["created"] = props.get("created", fresh["created"])
            return None, bmd.with_bucket(bck, fresh)
        # props persisted by an older version may lack newer sections: defaults fill them in
        current = {**default_bucket_props(bck, int(str(props.get("bid", "0")))), **props}
        new = _merge_props(current, msg.value)
        nonlocal ec_on
        ec_on = check_ec_props(bck, new, props, len(smap.active_targets()))
        return None, bmd.with_bucket(bck, new)
    await request.app[PRIMARY].update(change)
    if ec_on:   # as AIStore: turning EC on encodes the objects the bucket already has
        await start_job(ctx, ACT_EC_ENCODE, bck, None, {})
    if copies is not None:   # and changing mirroring adds or removes copies of the objects it has
        await start_job(ctx, apc.ACT_MAKE_N_COPIES, bck, None, {"copies": copies})
    return web.Response(status=200)


async def _ec_encode(request: web.Request, ctx: ProxyContext, primary: Primary, bck: Bucket,
                     msg: ActionMsg) -> web.StreamResponse:
    """ec-encode: erasure coding on, with the scheme in the value (AIStore's ECConfToSet, possibly
    itself a JSON string), and a job that encodes the objects the bucket has; its ID."""
    value = parse_json(msg.value.encode(), "ec-encode value") if isinstance(msg.value, str) else msg.value
    if not isinstance(value, dict):
        raise BadMessage("ec-encode value must be an object: {\"data_slices\": d, \"parity_slices\": p}")
    scheme = {k: value[k] for k in ("data_slices", "parity_slices", "objsize_limit") if k in value}
    await require_bucket(request, bck)

    async def change(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        props = bmd.get(bck)
        if props is None:
            raise BucketNotFound(bck.cname)
        current = {**default_bucket_props(bck, int(str(props.get("bid", "0")))), **props}
        new = _merge_props(current, {"ec": {**scheme, "enabled": True}})
        check_ec_props(bck, new, props, len(smap.active_targets()))
        return None, bmd.with_bucket(bck, new)
    await primary.update(change)
    job_id = await start_job(ctx, ACT_EC_ENCODE, bck, None, {})
    return web.Response(text=job_id, content_type="text/plain")


# --- rename and copy: jobs on every target --------------------------------------------------

async def _copy_or_move(request: web.Request, ctx: ProxyContext, primary: Primary, src: Bucket,
                        msg: ActionMsg) -> web.StreamResponse:
    to = request.query.get(apc.Q_BCK_TO, "")
    if not to:
        raise BadRequest(f"{msg.action} needs the destination bucket in '{apc.Q_BCK_TO}'")
    dst = names.parse_uname_bucket(to)
    if dst == src:
        raise BadRequest(f"source and destination are the same bucket {src.cname}")
    moving = msg.action == apc.ACT_MOVE_BCK
    if moving and not (src.is_ais and dst.is_ais):
        raise BadRequest("rename is supported for ais:// buckets only")
    if not dst.is_ais:
        raise NotImplementedErr(f"copying to {dst.cname} is not supported yet")
    value = msg.value if isinstance(msg.value, dict) else {}
    copy_msg = dict(ci_get(value, "copy_msg", None) or value)
    names.check_prepend(copy_msg.get("prepend"))

    await require_bucket(request, src)
    await _ensure_destination(primary, src, dst, exclusive=moving)

    if src.is_ais:
        job_id = await start_job(ctx, "move-bck" if moving else "copy-bck", src, dst, copy_msg)
    else:   # a remote source: everything at the backend (under the prefix), fetched as needed
        job_id = await start_job(ctx, apc.ACT_COPY_LIST, src, dst,
                                 {**copy_msg, "template": str(copy_msg.get("prefix") or "")})
    if moving:
        ctx.finalizing.add(job_id)
        ctx.spawn(_finish_move(ctx, primary, job_id, src), name=f"finish-move-{job_id}")
    return web.Response(text=job_id, content_type="text/plain")


async def _finish_move(ctx: ProxyContext, primary: Primary, job_id: str, src: Bucket) -> None:
    """When every target has moved its objects, remove the source bucket."""
    try:
        snaps = await wait_job(ctx, job_id, poll_s=0.2)
        if any(s["err"] or s["aborted"] for ss in snaps.values() for s in ss):
            log.warning("move of %s (job %s) did not finish cleanly; keeping the source bucket", src.cname, job_id)
            return
        await _forget_bucket(primary, src)
        log.info("moved %s (job %s)", src.cname, job_id)
    finally:
        ctx.finalizing.discard(job_id)

