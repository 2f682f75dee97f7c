"""Cluster side of token revocation: `DELETE /v1/tokens {"token"}` (admin; sent by the AuthN
service, or by hand) records the token's hash in the metasynced `AuthMD`, so that every node
refuses it from then on, until it would have expired anyway; S3 keys made with it are removed."""

from __future__ import annotations

import json
import time

from aiohttp import web

from ais.auth import AuthMD, token_id
from ais.cmap import AccessKeys
from ais.errors import BadMessage, BadRequest, Unauthorized
from ais.web import read_json
from proxy.buckets import PRIMARY, forward_to_primary
from proxy.context import CTX


async def revoke_token(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise BadMessage('expected a JSON object {"token": "<the token to revoke>"}')
    if ctx.gate is None:
        raise BadRequest("authentication is not enabled on this cluster: there are no tokens to revoke")
    token = body["token"]
    try:
        exp = ctx.gate.verifier.verify(token).exp
    except Unauthorized as exc:
        if "expired" in exc.message:
            return web.Response(status=200)   # refused everywhere already
        raise BadRequest(f"not a token of this cluster's issuer: {exc.message}") from exc
    if not ctx.is_primary:
        return await forward_to_primary(request, ctx, json.dumps(body).encode())
    tid = token_id(token)

    def revoke(md: AuthMD) -> AuthMD | None:
        return None if md.is_revoked(tid) else md.with_revoked(tid, exp, time.time())
    await request.app[PRIMARY].update_doc("auth", revoke)

    def drop_keys(keys: AccessKeys) -> AccessKeys | None:   # S3 keys made with it go too
        bound = [ak for ak, b in keys.bindings.items() if b.get("tid") == tid]
        for ak in bound:
            keys = keys.without_key(ak)
        return keys if bound else None
    await request.app[PRIMARY].update_doc("keys", drop_keys)
    return web.Response(status=200)


def add_routes(app: web.Application) -> None:
    app.router.add_delete("/v1/tokens", revoke_token)
