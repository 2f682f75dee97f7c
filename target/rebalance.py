"""Rebalance on the wire between targets, and get-from-neighbor (reference §9).

The `rebalance` job (target/jobs/rebalance.py) sends every object this target no longer owns
to its owner with `send_object`: an intra `PUT /v1/rebalance/<bucket>/<object>` carrying the
object's metadata (size, checksum, version, custom metadata, ETag, mtime, atime) in one header.
The receiver checks the checksum, fsyncs, and publishes the object with that metadata unless it
already holds a copy at least as new (a client's write during the rebalance wins); only then does
it answer, and only then does the sender remove its copy (if unchanged meanwhile).

While a rebalance runs here, an owner that misses an object locally asks the other targets for
it (previous owners first, in HRW order) and streams it from the first that has it, so reads do
not 404 before the object has moved. DELETE does the same, so a deleted object cannot come back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
import time
from typing import Any, AsyncIterator, Mapping
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import web

from ais import apc, hrw, names
from ais.cmap import Node, bucket_id
from ais.errors import AisError, BadMessage, BadRequest, NotFound, ObjectNotFound
from ais.membership import write_atomic
from ais.web import body_chunks
from ais.names import Bucket
from target import mirror
from target.context import CTX, TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.objects import (Received, _mpu_dir, batches, file_chunks, object_headers, parse_range,
                            routed_map_version, serve_file, write_work)

log = logging.getLogger(__name__)

PATH = "/v1/rebalance"
HDR_META = "Ais-Rebalance-Meta"   # JSON of the moved object's metadata
DONE_FILE = "rebalance_done"      # in the node's conf dir: ID of the last rebalance sent in full
_SMALL = 64 << 10
CATCH_UP_S = 5.0   # the longest a request waits for the cluster map its proxy routed it by
_PASS_HEADERS = ("Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified")


# --- the metadata header ----------------------------------------------------------------------

def meta_to_wire(meta: ObjectMeta) -> str:
    return json.dumps({"size": meta.size, "ct": meta.cksum_type, "cv": meta.cksum_value, "ver": meta.version,
                       "md": meta.custom, "md5": meta.md5, "etag": meta.etag, "s3ck": meta.s3_checksums,
                       "mtime": meta.mtime_ns, "atime": meta.atime_ns}, separators=(",", ":"))


def meta_from_wire(text: str, bid: int) -> ObjectMeta:
    try:
        d = json.loads(text)
        return ObjectMeta(size=int(d["size"]), cksum_type=str(d["ct"]), cksum_value=str(d["cv"]),
                          version=str(d["ver"]), custom={str(k): str(v) for k, v in d["md"].items()}, bid=bid,
                          md5=str(d["md5"]), etag=str(d["etag"]), s3_checksums=dict(d["s3ck"]),
                          mtime_ns=int(d["mtime"]), atime_ns=int(d["atime"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadMessage(f"malformed {HDR_META} header: {exc}") from exc


def _url(node: Node, bck: Bucket, obj: str) -> tuple[str, dict[str, str]]:
    params = {apc.Q_PROVIDER: bck.provider}
    if not bck.namespace.is_global:
        params[apc.Q_NAMESPACE] = bck.namespace.uname
    return f"{node.intra_url}{PATH}/{bck.name}/{quote(obj)}", params


def _resolve(request: web.Request) -> tuple[TargetContext, Bucket, str]:
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    return request.app[CTX], bck, names.check_object_name(request.match_info["obj"])


# --- sending ----------------------------------------------------------------------------------

class Moved:
    """What sending one object did: bytes sent, and whether the local copy is gone."""
    __slots__ = ("size", "removed")

    def __init__(self, size: int, removed: bool) -> None:
        self.size, self.removed = size, removed


async def send_object(ctx: TargetContext, owner: Node, bck: Bucket, obj: str, mp: str, path: str) -> Moved | None:
    """Send the local object to `owner`, then remove it here once `owner` has it durably.
    None when it vanished locally meanwhile. Under the object's lock from start to end, so a
    delete of the unmoved copy (`delete_local_copy`) waits until the object is at its owner,
    and the owner's delete, which comes after, removes it there."""
    async with ctx.object_lock(bck.object_uname(obj)):
        return await _send_object(ctx, owner, bck, obj, mp, path)


async def _send_object(ctx: TargetContext, owner: Node, bck: Bucket, obj: str, mp: str, path: str) -> Moved | None:
    small = await ctx.mountpaths.run(mp, fsmeta.read_small, path, _SMALL)
    if small is None:
        return None
    meta, data = small
    url, params = _url(owner, bck, obj)
    headers = ctx.http.headers({HDR_META: meta_to_wire(meta), "Content-Length": str(meta.size),
                                apc.HDR_BACKGROUND: "true"})
    f = None
    if data is None:
        opened = await ctx.mountpaths.run(mp, fsmeta.open_object, path)
        if opened is None:
            return None
        f, meta = opened
        headers[HDR_META] = meta_to_wire(meta)
        headers["Content-Length"] = str(meta.size)
    try:
        body: Any = data if f is None else file_chunks(ctx, mp, f, meta.size)
        await _send(ctx, owner, url, body, headers, bck.object_cname(obj), params)
    finally:
        if f is not None:
            f.close()
    removed = await ctx.mountpaths.run(mp, _remove_if_unchanged, path, ctx.mountpaths.bucket_dir(mp, bck), meta)
    if removed:
        await mirror.remove_copies(ctx, bck, obj)
    return Moved(meta.size, removed)


async def _send(ctx: TargetContext, owner: Node, url: str, body: Any, headers: Mapping[str, str], what: str,
                params: Mapping[str, str] | None = None) -> None:
    """PUT `body` to `owner`; AisError naming `what` when it did not take it."""
    try:
        await ctx.http.put_data(url, body, params=params, headers=headers)
    except AisError as exc:
        raise AisError(f"sending {what} to {owner.display}: {exc.message}") from exc


def _remove_if_unchanged(path: str, bucket_dir: str, sent: ObjectMeta) -> bool:
    """Blocking: remove the sent copy unless it was rewritten while in flight."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    if st.st_mtime_ns != sent.mtime_ns or st.st_size != sent.size:
        return False
    return fsmeta.remove_object(path, bucket_dir)


# --- receiving --------------------------------------------------------------------------------

async def receive_object(request: web.Request) -> web.StreamResponse:
    """Intra `PUT /v1/rebalance/<bucket>/<object>`: an object moved here by a rebalance."""
    ctx, bck, obj = _resolve(request)
    props = await ctx.require_bucket(bck, redirected=True)
    meta = meta_from_wire(request.headers.get(HDR_META, ""), bucket_id(props))
    stored = await _store_moved(ctx, bck, obj, props, meta, body_chunks(request))
    return web.json_response({"stored": stored})


async def _store_moved(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any], meta: ObjectMeta,
                       chunks: AsyncIterator[bytes]) -> bool:
    """Write a moved object's bytes, check them, and publish them with `meta` unless a copy at
    least as new is here already. True if published."""
    mp, path = ctx.mountpaths.object_path(bck, obj)
    work = ctx.mountpaths.work_path(mp, "reb.")
    rec = Received()
    await write_work(ctx, mp, work, batches(chunks, ctx.cfg.target.write_buffer_bytes), rec, expected_bytes=meta.size)
    if meta.cksum_type in ("xxhash", "xxhash64") and meta.cksum_value and meta.cksum_value != rec.hasher.hexdigest():
        await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
        raise BadRequest(f"checksum mismatch moving {bck.object_cname(obj)}: expected {meta.cksum_value}, "
                         f"received {rec.hasher.hexdigest()}")
    async with ctx.object_lock(bck.object_uname(obj)):
        try:
            stored = await ctx.mountpaths.run(mp, _commit_moved, work, path, meta, ctx.cfg.target.fsync)
        except OSError as exc:
            await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
            raise fsmeta.translate_os_error(exc, bck.object_cname(obj)) from exc
        if stored:
            await mirror.after_write(ctx, bck, obj, props)
    ctx.metrics.bytes_in.labels(verb="PUT").inc(rec.size)
    return stored


def _commit_moved(work: str, final: str, meta: ObjectMeta, fsync: bool) -> bool:
    """Blocking: publish a moved object with its metadata and times, unless a copy at least as
    new is already here (then the work file goes). True if published."""
    try:
        st = os.stat(final)
        if st.st_mtime_ns >= meta.mtime_ns:
            os.unlink(work)
            return False
    except FileNotFoundError:
        pass
    os.setxattr(work, fsmeta.XATTR, meta.pack())
    os.utime(work, ns=(meta.atime_ns or time.time_ns(), meta.mtime_ns or time.time_ns()))
    fsmeta.ensure_parent(final)
    os.rename(work, final)
    if fsync:
        fsmeta.fsync_dir(os.path.dirname(final))
    return True


# --- serving peers (get-from-neighbor) --------------------------------------------------------

async def serve_local(request: web.Request) -> web.StreamResponse:
    """Intra `GET|HEAD /v1/rebalance/<bucket>/<object>`: this target's copy, owner or not."""
    ctx, bck, obj = _resolve(request)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    if request.method == "HEAD":
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
        if meta is None:
            raise ObjectNotFound(bck.object_cname(obj))
        resp = web.Response(status=200, headers=object_headers(ctx, bck, obj, mp, meta))
        resp.headers["Content-Length"] = str(meta.size)
        return resp
    opened = await ctx.mountpaths.run(mp, fsmeta.open_object, path)
    if opened is None:
        raise ObjectNotFound(bck.object_cname(obj))
    f, meta = opened
    try:
        headers = object_headers(ctx, bck, obj, mp, meta)
        headers["Content-Type"] = "application/octet-stream"
        headers["Accept-Ranges"] = "bytes"
        headers[HDR_META] = meta_to_wire(meta)   # for pull_from_neighbor
        status, offset, count = 200, 0, meta.size
        if (rng := request.headers.get("Range")) is not None:
            offset, count = parse_range(rng, meta.size)
            status = 206
            headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{meta.size}"
        return await serve_file(request, ctx, mp, f, status, headers, offset, count)
    finally:
        f.close()


async def delete_local_copy(request: web.Request) -> web.StreamResponse:
    """Intra `DELETE /v1/rebalance/<bucket>/<object>`: the owner deleted the object during a
    rebalance; a copy not yet moved from here must not come back."""
    ctx, bck, obj = _resolve(request)
    mp, path = ctx.mountpaths.object_path(bck, obj)
    async with ctx.object_lock(bck.object_uname(obj)):
        removed = await ctx.mountpaths.run(mp, fsmeta.remove_object, path, ctx.mountpaths.bucket_dir(mp, bck))
        removed = await mirror.remove_copies(ctx, bck, obj) or removed
    if not removed:
        raise ObjectNotFound(bck.object_cname(obj))
    return web.Response(status=200)


def rebalance_pending(ctx: TargetContext) -> bool:
    """A rebalance runs here, or its metadata has arrived and the job has not started yet (the new
    cluster map is already in force then: a GET must not miss an object that has yet to move)."""
    rmd = ctx.store.rmd
    return bool(ctx.rebalancing) or (rmd is not None and bool(rmd.job_id) and rmd.job_id != ctx.rebalanced)


def neighbors(ctx: TargetContext, bck: Bucket, obj: str) -> list[Node]:
    """The other targets, likeliest previous owner first (HRW order over every target of the map)."""
    d = hrw.digest(bck.object_uname(obj))
    others = [t for t in ctx.smap.targets.values() if t.id != ctx.me.id]
    return sorted(others, key=lambda t: hrw.mix64(t.id_digest ^ d), reverse=True)


async def catch_up(request: web.Request, ctx: TargetContext) -> None:
    """A proxy routed this request by a newer cluster map than ours: the primary's metasync of
    it (and of the rebalance that came with it) is on its way; wait for it, a while at most, so
    that a target that has just joined does not answer 404 for an object still to move here."""
    want = routed_map_version(request)
    if want <= ctx.smap.version:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(CATCH_UP_S, ctx.cfg.timeouts.control_s)
    while ctx.smap.version < want and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def get_from_neighbor(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str) -> web.StreamResponse | None:
    """While a rebalance runs here: stream the object from the first other target that has it."""
    await catch_up(request, ctx)
    if not rebalance_pending(ctx):
        return None
    headers = ctx.http.headers()
    if (rng := request.headers.get("Range")) is not None:
        headers["Range"] = rng
    for node in neighbors(ctx, bck, obj):
        url, params = _url(node, bck, obj)
        try:
            async with ctx.http.session.request(request.method, url, params=params, headers=headers,
                                                timeout=ctx.http.data_timeout()) as peer:
                if peer.status >= 400:
                    continue
                out = {k: v for k, v in peer.headers.items()
                       if (k.startswith("Ais-") and k != HDR_META) or k in _PASS_HEADERS}
                if request.method == "HEAD":
                    return web.Response(status=peer.status, headers=out)
                resp = web.StreamResponse(status=peer.status, headers=out)
                await resp.prepare(request)
                async for chunk in peer.content.iter_chunked(256 << 10):
                    await resp.write(chunk)
                await resp.write_eof()
                log.debug("%s served from %s (get-from-neighbor)", bck.object_cname(obj), node.display)
                return resp
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("get-from-neighbor of %s at %s: %s", bck.object_cname(obj), node.display, exc)
    return None


async def pull_from_neighbor(request: web.Request | None, ctx: TargetContext, bck: Bucket, obj: str,
                             props: Mapping[str, Any]) -> bool:
    """While a rebalance runs here: move the object here now from the first other target that
    has it, as the rebalance would (for the S3 handlers and batch-get, which then answer from the
    local copy). True if it is here now."""
    if request is not None:
        await catch_up(request, ctx)
    if not rebalance_pending(ctx):
        return False
    for node in neighbors(ctx, bck, obj):
        url, params = _url(node, bck, obj)
        try:
            async with ctx.http.session.get(url, params=params, headers=ctx.http.headers(),
                                            timeout=ctx.http.data_timeout()) as peer:
                if peer.status >= 400:
                    continue
                meta = meta_from_wire(peer.headers.get(HDR_META, ""), bucket_id(props))
                await _store_moved(ctx, bck, obj, props, meta, peer.content.iter_chunked(256 << 10))
                log.debug("%s moved here from %s (get-from-neighbor)", bck.object_cname(obj), node.display)
                return True
        except (aiohttp.ClientError, OSError, TimeoutError, AisError) as exc:
            log.warning("get-from-neighbor of %s at %s: %s", bck.object_cname(obj), node.display, exc)
    return False


async def pull_moving(ctx: TargetContext, bck: Bucket, obj: str) -> bool:
    """An `ais://` object missing here during a rebalance (shards, ETL and batch-get sources):
    moved here now from its previous owner. True if it is here now."""
    props = ctx.bmd.get(bck)
    return bck.is_ais and props is not None and await pull_from_neighbor(None, ctx, bck, obj, props)


async def delete_at_neighbors(ctx: TargetContext, bck: Bucket, obj: str, request: web.Request | None = None) -> bool:
    """While a rebalance runs here: delete copies not yet moved; True if any existed."""
    if request is not None:
        await catch_up(request, ctx)
    if not rebalance_pending(ctx):
        return False
    found = False
    for node in neighbors(ctx, bck, obj):
        url, params = _url(node, bck, obj)
        try:
            await ctx.http.call("DELETE", url, params=params)
            found = True
        except AisError:
            continue
    return found


# --- in-progress multipart uploads -----------------------------------------------------------
#
# An upload's parts live in a directory on its object's owner (`%mp/<upload id>`). When the
# owner changes, the rebalance moves the directory with the objects (`send_upload`): the parts
# first, `upload.json` last, so the upload exists at the new owner only once it is whole. A
# request for an upload the rebalance has not moved yet pulls it at once (`pull_upload`), so
# an S3 client's multipart upload goes on across a target joining or leaving.

UPLOAD_PATH = "/v1/rebalance-upload"
HDR_UPLOAD = "Ais-Rebalance-Upload"   # the upload's object uname
HDR_XATTRS = "Ais-Rebalance-Xattrs"   # JSON: the file's user xattrs (base64) and mtime
_UPLOAD_FILE = re.compile(r"part\.\d{5}|upload\.json")   # fullmatch only


def _upload_files(d: str) -> list[str]:
    """Blocking: the files to move, parts first and `upload.json` last."""
    try:
        return sorted((n for n in os.listdir(d) if _UPLOAD_FILE.fullmatch(n)), key=lambda n: (n == "upload.json", n))
    except FileNotFoundError:
        return []


def _open_upload_file(path: str) -> tuple[Any, int, str]:
    """Blocking: (open file, size, HDR_XATTRS value) of one file of an upload."""
    f = open(path, "rb")
    try:
        st = os.fstat(f.fileno())
        xattrs = {k: base64.b64encode(os.getxattr(f.fileno(), k)).decode() for k in os.listxattr(f.fileno())
                  if k.startswith("user.")}
    except BaseException:
        f.close()
        raise
    return f, st.st_size, json.dumps({"x": xattrs, "mtime": st.st_mtime_ns}, separators=(",", ":"))


async def send_upload(ctx: TargetContext, owner: Node, mp: str, upload_id: str, uname: str) -> bool:
    """Move the upload `upload_id` (on mountpath `mp`) to `owner`, then remove it here. False
    when it is not here (moved or finished meanwhile)."""
    d = ctx.mountpaths.mpu_dir(mp, upload_id)
    async with ctx.object_lock(f"%mp/{upload_id}"):
        files = await ctx.mountpaths.run(mp, _upload_files, d)
        if "upload.json" not in files:
            return False
        for name in files:
            f, size, xattrs = await ctx.mountpaths.run(mp, _open_upload_file, f"{d}/{name}")
            headers = ctx.http.headers({HDR_UPLOAD: quote(uname), HDR_XATTRS: xattrs, "Content-Length": str(size),
                                        apc.HDR_BACKGROUND: "true"})
            url = f"{owner.intra_url}{UPLOAD_PATH}/{upload_id}/{name}"
            try:
                await _send(ctx, owner, url, file_chunks(ctx, mp, f, size), headers, f"upload {upload_id}")
            finally:
                f.close()
        await ctx.mountpaths.run(mp, shutil.rmtree, d, True)
    log.info("multipart upload %s of %s moved to %s", upload_id, uname, owner.display)
    return True


async def receive_upload_file(request: web.Request) -> web.StreamResponse:
    """Intra `PUT /v1/rebalance-upload/<upload id>/<file>`: one file of a moving upload."""
    ctx = request.app[CTX]
    upload_id, name = request.match_info["upload"], request.match_info["file"]
    if not _UPLOAD_FILE.fullmatch(name):
        raise BadRequest(f"invalid upload file name {name!r}")
    bck, obj = names.parse_uname_object(unquote(request.headers.get(HDR_UPLOAD, "")))
    mp, d = _mpu_dir(ctx, bck, obj, upload_id)
    try:
        info = json.loads(request.headers.get(HDR_XATTRS, ""))
        xattrs = {str(k): base64.b64decode(v) for k, v in info["x"].items()}
        mtime_ns = int(info["mtime"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadMessage(f"malformed {HDR_XATTRS} header: {exc}") from exc
    if other := [k for k in xattrs if not k.startswith("user.")]:
        raise BadMessage(f"{HDR_XATTRS}: only user.* attributes move with an upload, not {other}")
    work = ctx.mountpaths.work_path(mp, "reb.")
    await write_work(ctx, mp, work, batches(body_chunks(request), ctx.cfg.target.write_buffer_bytes),
                     Received(), expected_bytes=request.content_length)
    try:
        await ctx.mountpaths.run(mp, _publish_upload_file, work, d, name, xattrs, mtime_ns, ctx.cfg.target.fsync)
    except OSError as exc:
        await ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work)
        raise fsmeta.translate_os_error(exc, bck.object_cname(obj)) from exc
    return web.Response(status=200)


def _publish_upload_file(work: str, d: str, name: str, xattrs: Mapping[str, bytes], mtime_ns: int, fsync: bool) -> None:
    """Blocking: a moved upload file into place, with its xattrs and mtime."""
    for k, v in xattrs.items():
        os.setxattr(work, k, v)
    os.utime(work, ns=(mtime_ns, mtime_ns))
    os.makedirs(d, exist_ok=True)
    os.replace(work, f"{d}/{name}")
    if fsync:
        fsmeta.fsync_dir(d)


async def hand_over_upload(request: web.Request) -> web.StreamResponse:
    """Intra `POST /v1/rebalance-upload/<upload id>?to=<target id>`: the new owner asks for an
    upload the rebalance has not moved yet; it is sent there now. 404 when it is not here."""
    ctx = request.app[CTX]
    upload_id = request.match_info["upload"]
    bck, obj = names.parse_uname_object(unquote(request.headers.get(HDR_UPLOAD, "")))
    await catch_up(request, ctx)   # the asking target may have joined in a map not here yet
    to = ctx.smap.targets.get(request.query.get("to", ""))
    if to is None:
        raise BadRequest(f"unknown target {request.query.get('to', '')!r}")
    mp, _ = _mpu_dir(ctx, bck, obj, upload_id)
    if not await send_upload(ctx, to, mp, upload_id, bck.object_uname(obj)):
        raise NotFound(f"multipart upload {upload_id} is not on {ctx.me.display}")
    return web.Response(status=200)


async def pull_upload(request: web.Request, ctx: TargetContext, bck: Bucket, obj: str, upload_id: str) -> None:
    """While a rebalance runs here: have the target that holds the upload `upload_id` (a valid
    ID, not found here) send it now; concurrent asks are one send there (`send_upload` holds
    the upload's lock), the rest find nothing. The caller looks for it again afterwards."""
    await catch_up(request, ctx)
    if not rebalance_pending(ctx):
        return
    headers = {HDR_UPLOAD: quote(bck.object_uname(obj)), apc.HDR_SMAP_VER: str(ctx.smap.version)}
    for node in neighbors(ctx, bck, obj):
        try:
            await ctx.http.call("POST", f"{node.intra_url}{UPLOAD_PATH}/{upload_id}", params={"to": ctx.me.id},
                                headers=headers, timeout_s=max(ctx.cfg.timeouts.control_s, 60))
            return
        except AisError as exc:
            if exc.status != 404:
                log.warning("pulling upload %s from %s: %s", upload_id, node.display, exc)


# --- progress between targets -----------------------------------------------------------------

def _seq(job_id: str) -> int:
    return int(job_id[1:]) if job_id[1:].isdigit() else 0


async def stage(request: web.Request) -> web.StreamResponse:
    """Intra `GET /v1/rebalance?id=g<N>`: how far this target is with rebalance `id`:
    "traverse" (still sending), "wait" (sent all, waiting for the others), "done", or "pending"."""
    ctx = request.app[CTX]
    job_id = request.query.get("id", "")
    if job_id in ctx.rebalancing:
        answer = ctx.rebalancing[job_id]
    elif ctx.rebalanced and _seq(ctx.rebalanced) >= _seq(job_id):
        answer = "done"
    else:
        answer = "pending"
    return web.json_response({"stage": answer})


def load_done(conf_dir: str) -> str:
    """Blocking, start-up only: the ID of the last rebalance this target sent in full."""
    try:
        with open(os.path.join(conf_dir, DONE_FILE), encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


async def mark_done(ctx: TargetContext, job_id: str) -> None:
    await asyncio.get_running_loop().run_in_executor(
        None, write_atomic, os.path.join(ctx.cfg.node.conf_dir, DONE_FILE), job_id.encode())
    ctx.rebalanced = job_id


def add_routes(app: web.Application) -> None:
    obj = PATH + "/{bucket}/{obj:.+}"
    app.router.add_put(obj, receive_object)
    app.router.add_get(obj, serve_local, allow_head=False)
    app.router.add_head(obj, serve_local)
    app.router.add_delete(obj, delete_local_copy)
    app.router.add_get(PATH, stage)
    app.router.add_put(UPLOAD_PATH + "/{upload}/{file}", receive_upload_file)
    app.router.add_post(UPLOAD_PATH + "/{upload}", hand_over_upload)

