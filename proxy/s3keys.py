"""Management of S3 access keys (our extension of the native API), used by `ais s3 keys`.

    GET    /v1/s3/keys          -> [{"access_key", "user"?}]   (secrets are never listed)
    POST   /v1/s3/keys          {"access_key"?, "secret_key"?} -> {"access_key", "secret_key", "user"?}
    DELETE /v1/s3/keys/<key>

Keys live in a versioned metadata document owned by the primary and metasynced to every
node; a non-primary proxy forwards changes to the primary.

With auth on, a key is bound to the user whose token made it, with that token's permissions
(an admin may bind it to another user's claims: `{"user", "claims"}`); S3 requests signed with
it pass the same permission checks as the user's native requests, and stop working when that
token is revoked. Users see and remove their own keys; admins all of them.
"""

from __future__ import annotations

import json
import re
import secrets as random
from typing import Any

from aiohttp import web

from ais.auth import PRINCIPAL, Principal
from ais.cmap import AccessKeys
from ais.errors import BadMessage, BadRequest, Conflict, Forbidden, NotFound
from ais.web import read_json
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.context import CTX

_KEY_RE = re.compile(r"[A-Za-z0-9]{16,128}")        # fullmatch: `$` would admit a final newline
_SECRET_RE = re.compile(r"[A-Za-z0-9/+=]{16,128}")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _caller(request: web.Request) -> Principal | None:
    """The authenticated caller; None when auth is off or a proxy vouched for the request."""
    return request.get(PRINCIPAL) if request.app[CTX].gate is not None else None


def _visible(request: web.Request, keys: AccessKeys, ak: str) -> bool:
    caller = _caller(request)
    return caller is None or caller.admin or keys.owner(ak) == caller.user


async def list_keys(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    keys = ctx.store.keys or AccessKeys(version=0)
    out = []
    for ak in sorted(keys.keys):
        if _visible(request, keys, ak):
            owner = keys.owner(ak)
            out.append({"access_key": ak, **({"user": owner} if owner else {})})
    return web.json_response(out)


def _binding(request: web.Request, body: dict[str, Any]) -> dict[str, Any] | None:
    """Who the new key acts as: the caller (their token's claims), or whom an admin names."""
    caller = _caller(request)
    if caller is None:
        binding = body.get("binding")   # decided by the proxy that took the request, or auth is off
        return dict(binding) if isinstance(binding, dict) and request.app[CTX].gate is not None else None
    if body.get("user") or body.get("claims"):
        if not caller.admin:
            raise Forbidden(f"user {caller.user!r} may only make keys for themselves")
        claims = body.get("claims") or {"sub": body.get("user")}
        if not isinstance(claims, dict):
            raise BadMessage("'claims' must be an object {sub, admin, clusters, buckets}")
        claims = {**claims, "sub": str(body.get("user") or claims.get("sub") or "")}
        if not claims["sub"]:
            raise BadRequest("a key needs a user: give 'user' or 'claims.sub'")
        Principal.from_claims(claims)   # validates the shape
        return claims
    return {**caller.to_claims(), "tid": caller.token_id}


async def add_key(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    body = await read_json(request) or {}
    if not isinstance(body, dict):
        raise BadMessage("expected a JSON object {\"access_key\"?, \"secret_key\"?}")
    binding = _binding(request, body)
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps({**body, "binding": binding}).encode())
    ak = str(body.get("access_key") or "AK" + "".join(random.choice(_ALNUM) for _ in range(18)))
    sk = str(body.get("secret_key") or random.token_urlsafe(30).replace("-", "+").replace("_", "/"))
    if not _KEY_RE.fullmatch(ak):
        raise BadRequest("access key must be 16-128 letters or digits")
    if not _SECRET_RE.fullmatch(sk):
        raise BadRequest("secret key must be 16-128 characters of A-Z a-z 0-9 / + =")

    def add(keys: AccessKeys) -> AccessKeys:
        if ak in keys.keys:
            raise Conflict(f"access key {ak} already exists")
        return keys.with_key(ak, sk, binding)
    await request.app[PRIMARY].update_keys(add)
    user = {"user": binding["sub"]} if binding else {}
    return web.Response(text=json.dumps({"access_key": ak, "secret_key": sk, **user}), content_type="application/json")


async def remove_key(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    ak = request.match_info["key"]
    if ctx.store.keys is not None and ak in ctx.store.keys.keys and not _visible(request, ctx.store.keys, ak):
        raise Forbidden(f"access key {ak} belongs to another user")
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
