"""Local-disk data protection at a proxy: bucket props `mirror` validated against the targets'
mountpaths, the `make-n-copies` bucket action, and mountpath administration relayed to a
target (`/v1/reverse/daemon/...` with `Ais-Node-Id`; `GET /v1/cluster?what=mountpaths`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

import aiohttp
from aiohttp import web

from ais import apc
from ais.cmap import BucketMD, ClusterMap, default_bucket_props
from ais.errors import BadRequest, NotFound, ServiceUnavailable
from ais.names import Bucket
from ais.web import ActionMsg, read_body
from proxy.cluster import start_job
from proxy.context import CTX, ProxyContext
from proxy.membership import Primary
from proxy.remote import require_bucket

log = logging.getLogger(__name__)


async def mountpaths(ctx: ProxyContext) -> dict[str, Any]:
    """{target ID: MountpathList} of every active target (an unreachable one: {"error": ...})."""
    targets = ctx.smap.active_targets()
    results = await asyncio.gather(*(ctx.http.call_json("GET", f"{t.intra_url}/v1/daemon",
                                                        params={apc.Q_WHAT: apc.WHAT_MOUNTPATHS})
                                     for t in targets), return_exceptions=True)
    return {t.id: (r if isinstance(r, dict) else {"error": str(r)}) for t, r in zip(targets, results)}


async def _fewest_mountpaths(ctx: ProxyContext) -> tuple[int, str]:
    """The smallest number of available mountpaths of an active target, and that target."""
    counts = [(len(m.get("available") or []), tid) for tid, m in (await mountpaths(ctx)).items() if "error" not in m]
    return min(counts) if counts else (0, "")


def _copies(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).strip().isdigit():
        raise BadRequest(f"invalid bucket property 'mirror.copies' {raw!r}: expected a whole number of copies (1 or more)")
    n = int(raw)
    if n < 1:
        raise BadRequest(f"invalid bucket property 'mirror.copies' {n}: an object has at least 1 copy")
    return n


async def _check_copies(ctx: ProxyContext, n: int) -> None:
    if n <= 1:
        return
    fewest, tid = await _fewest_mountpaths(ctx)
    if fewest and n > fewest:
        raise BadRequest(f"invalid bucket property 'mirror.copies' {n}: target t[{tid}] has only {fewest} "
                         f"mountpath{'s' if fewest != 1 else ''} (each copy needs its own)")


async def validate_change(ctx: ProxyContext, bck: Bucket, change: Any) -> int | None:
    """Check the `mirror` section of a props change (create-bck or set-bprops) against the targets'
    mountpaths. Returns the copies objects should have from now on when it changes them, else None."""
    if not isinstance(change, Mapping) or not isinstance(change.get("mirror"), Mapping):
        return None
    props = ctx.bmd.get(bck) or default_bucket_props(bck, 0)
    old = props.get("mirror") or {}
    merged = {**old, **change["mirror"]}
    n = _copies(merged.get("copies", 1))
    enabled = bool(merged.get("enabled"))
    if enabled:
        await _check_copies(ctx, n)
    wanted, before = (n if enabled else 1), (_copies(old.get("copies", 1)) if old.get("enabled") else 1)
    return wanted if wanted != before else None


async def make_n_copies(request: web.Request, ctx: ProxyContext, primary: Primary, bck: Bucket,
                        msg: ActionMsg) -> web.StreamResponse:
    """`make-n-copies` (value n): the bucket's props become mirror {enabled: n > 1, copies: n},
    and a job on every target adds or removes copies of the objects it has."""
    n = _copies(msg.value)
    await require_bucket(request, bck)
    await _check_copies(ctx, n)

    async def change(smap: ClusterMap, bmd: BucketMD) -> tuple[ClusterMap | None, BucketMD | None]:
        props = bmd.get(bck)
        if props is None:
            raise NotFound(f"bucket {bck.cname} does not exist")
        mirror = {**(props.get("mirror") or {}), "enabled": n > 1, "copies": n}
        return None, bmd.with_bucket(bck, {**props, "mirror": mirror})
    await primary.update(change)
    job_id = await start_job(ctx, apc.ACT_MAKE_N_COPIES, bck, None, {"copies": n})
    return web.Response(text=job_id, content_type="text/plain")


# --- relayed to one node ------------------------------------------------------------------

async def reverse_daemon(request: web.Request) -> web.StreamResponse:
    """`/v1/reverse/daemon[/...]` with `Ais-Node-Id`: the same request to that node's
    `/v1/daemon[/...]` (reference §1.6), over the intra-cluster network."""
    ctx = request.app[CTX]
    node_id = request.headers.get(apc.HDR_NODE_ID, "")
    if not node_id:
        raise BadRequest(f"a reverse request needs the node in the {apc.HDR_NODE_ID} header")
    node = ctx.smap.get(node_id)
    if node is None:
        raise NotFound(f"node {node_id!r} is not in the cluster map")
    tail = request.match_info.get("tail", "")
    url = f"{node.intra_url}/v1/daemon" + (f"/{tail}" if tail else "")
    body = await read_body(request) if request.can_read_body else b""
    headers = ctx.http.headers({"Content-Type": apc.JSON})
    try:
        async with ctx.http.session.request(request.method, url, params=request.query, data=body or None,
                                            headers=headers, timeout=ctx.http.control_timeout(60),
                                            allow_redirects=False) as r:
            data = await r.read()
            out = web.Response(status=r.status, body=data)
            for h in ("Content-Type", apc.HDR_XACTION_ID):
                if h in r.headers:
                    out.headers[h] = r.headers[h]
            return out
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(f"cannot reach {node.display}: {exc}") from exc


def add_routes(app: web.Application) -> None:
    for path in ("/v1/reverse/daemon", "/v1/reverse/daemon/{tail:.*}"):
        app.router.add_route("GET", path, reverse_daemon)
        app.router.add_route("PUT", path, reverse_daemon)
