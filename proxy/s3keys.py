"""Management of S3 access keys (our extension of the native API), used by `ais s3 keys`.

    GET    /v1/s3/keys          -> [{"access_key"}]           (secrets are never listed)
    POST   /v1/s3/keys          {"access_key"?, "secret_key"?} -> {"access_key", "secret_key"}
    DELETE /v1/s3/keys/<key>

Keys live in a versioned metadata document owned by the primary and metasynced to every
node; a non-primary proxy forwards changes to the primary.
"""

from __future__ import annotations

import json
import re
import secrets as random

from aiohttp import web

from ais.cmap import AccessKeys
from ais.errors import BadMessage, BadRequest, Conflict, NotFound
from ais.web import read_json
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.context import CTX

_KEY_RE = re.compile(r"^[A-Za-z0-9]{16,128}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9/+=]{16,128}$")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


async def list_keys(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    keys = ctx.store.keys.keys if ctx.store.keys else {}
    return web.json_response([{"access_key": k} for k in sorted(keys)])


async def add_key(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    body = await read_json(request) or {}
    if not isinstance(body, dict):
        raise BadMessage("expected a JSON object {\"access_key\"?, \"secret_key\"?}")
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps(body).encode())
    ak = str(body.get("access_key") or "AK" + "".join(random.choice(_ALNUM) for _ in range(18)))
    sk = str(body.get("secret_key") or random.token_urlsafe(30).replace("-", "+").replace("_", "/"))
    if not _KEY_RE.match(ak):
        raise BadRequest("access key must be 16-128 letters or digits")
    if not _SECRET_RE.match(sk):
        raise BadRequest("secret key must be 16-128 characters of A-Z a-z 0-9 / + =")

    def add(keys: AccessKeys) -> AccessKeys:
        if ak in keys.keys:
            raise Conflict(f"access key {ak} already exists")
        return keys.with_key(ak, sk)
    await request.app[PRIMARY].update_keys(add)
    return web.Response(text=json.dumps({"access_key": ak, "secret_key": sk}), content_type="application/json")


async def remove_key(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    ak = request.match_info["key"]
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, b"")

    def remove(keys: AccessKeys) -> AccessKeys:
        if ak not in keys.keys:
            raise NotFound(f"access key {ak} does not exist")
        return keys.without_key(ak)
    await request.app[PRIMARY].update_keys(remove)
    return web.Response(status=200)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/s3/keys", list_keys)
    app.router.add_post("/v1/s3/keys", add_key)
    app.router.add_delete("/v1/s3/keys/{key}", remove_key)
