"""AuthN's HTTP API, as the `aistore` SDK's `AuthNClient` and the `ais auth` CLI call it.

    POST   /v1/users/<id>           log in {"password", "expires_in": ns} -> {"token"}   (anyone)
    GET    /v1/users[/<id>]         list ({id: user}) / one user        (admin; a user: itself)
    POST   /v1/users                add {"id", "pass", "roles"}          (admin)
    PUT    /v1/users/<id>           change password, roles               (admin; a user: own password)
    DELETE /v1/users/<id>                                                (admin)
    GET    /v1/roles[/<name>]       list ([role]) / one role             (admin)
    POST   /v1/roles, PUT|DELETE /v1/roles/<name>                        (admin)
    GET    /v1/clusters[/<id|alias>]  {"clusters": {id: info}}           (admin)
    POST   /v1/clusters {"id", "alias", "urls"}, PUT|DELETE /v1/clusters/<id|alias>  (admin)
    DELETE /v1/tokens {"token"}     revoke; pushed to every cluster      (admin; a user: own tokens)
    GET    /v1/daemon               the service's (public) settings      (admin)
    GET    /v1/health, /metrics
    GET    /.well-known/openid-configuration, /.well-known/jwks.json     (RS256 only)

Errors are AIStore's JSON error body, rendered by the shared middleware (ais.web).
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from ais.authn.config import AuthnConfig
from ais.authn.errors import Unauthorized
from ais.authn.model import Cluster, Role, UserChange, check_name
from ais.authn.registry import Registry
from ais.authn.revocation import RevocationPusher
from ais.authn.tokens import Signer
from ais.errors import BadRequest, Forbidden, NotFound
from ais.metrics import NodeMetrics
from ais.tasks import TaskOwner
from ais.web import metrics_handler, middlewares, read_json

log = logging.getLogger(__name__)

NODE_NAME = "authn"
_NS_PER_S = 1_000_000_000


class AuthnApi:
    def __init__(self, cfg: AuthnConfig, registry: Registry, signer: Signer) -> None:
        self.cfg, self.registry, self.signer = cfg, registry, signer
        self.pusher: RevocationPusher | None = None

    # --- request plumbing ------------------------------------------------------------------

    def caller(self, request: web.Request) -> dict[str, Any]:
        """The claims of the request's bearer token (401 without a valid one)."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>' (log in with "
                               "POST /v1/users/<user>)")
        return self.registry.authenticate(token.strip())

    def admin(self, request: web.Request) -> dict[str, Any]:
        claims = self.caller(request)
        if not self.registry.is_admin(claims):
            raise Forbidden(f"user {claims.get('sub')!r} is not an admin: this needs an admin token")
        return claims

    @staticmethod
    async def body(request: web.Request) -> dict[str, Any]:
        doc = await read_json(request)
        if doc is None:
            raise BadRequest(f"{request.method} {request.path}: missing JSON body")
        if not isinstance(doc, dict):
            raise BadRequest(f"{request.method} {request.path}: expected a JSON object, got {type(doc).__name__}")
        return doc

    # --- users -----------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        uid = request.match_info["id"]
        msg = await self.body(request)
        password = msg.get("password", msg.get("pass"))
        if not isinstance(password, str) or not password:
            raise BadRequest("login: 'password' is missing or not a string")
        expires_in = msg.get("expires_in")
        if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, (int, float))
                                       or expires_in < 0):
            raise BadRequest(f"login: 'expires_in' must be a non-negative duration in nanoseconds, got {expires_in!r}")
        token = await self.registry.login(uid, password, expires_in / _NS_PER_S if expires_in else None)
        return web.json_response({"token": token})

    async def list_users(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        roles = self.registry.roles
        return web.json_response({uid: u.to_wire(roles) for uid, u in sorted(self.registry.users.items())})

    async def get_user(self, request: web.Request) -> web.StreamResponse:
        uid = request.match_info["id"]
        claims = self.caller(request)
        if claims.get("sub") != uid and not self.registry.is_admin(claims):
            raise Forbidden(f"user {claims.get('sub')!r} may see only itself: this needs an admin token")
        return web.json_response(self.registry.get_user(uid).to_wire(self.registry.roles))

    async def add_user(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        user = await self.registry.add_user(UserChange.from_wire(await self.body(request)))
        return web.json_response(user.to_wire(self.registry.roles), status=201)

    async def update_user(self, request: web.Request) -> web.StreamResponse:
        claims = self.caller(request)
        change = UserChange.from_wire(await self.body(request), check_name("user", request.match_info["id"]))
        user = await self.registry.update_user(change, claims)
        return web.json_response(user.to_wire(self.registry.roles))

    async def delete_user(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        await self.registry.delete_user(request.match_info["id"])
        return web.Response()

    # --- roles -----------------------------------------------------------------------------

    async def list_roles(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        return web.json_response([r.to_wire() for _, r in sorted(self.registry.roles.items())])

    async def get_role(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        return web.json_response(self.registry.get_role(request.match_info["name"]).to_wire())

    async def add_role(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        role = await self.registry.add_role(Role.from_wire(await self.body(request)))
        return web.json_response(role.to_wire(), status=201)

    async def update_role(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        role = await self.registry.update_role(request.match_info["name"], await self.body(request))
        return web.json_response(role.to_wire())

    async def delete_role(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        await self.registry.delete_role(request.match_info["name"])
        return web.Response()

    # --- clusters --------------------------------------------------------------------------

    async def list_clusters(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        return web.json_response({"clusters": {cid: c.to_wire() for cid, c in sorted(self.registry.clusters.items())}})

    async def get_cluster(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        c = self.registry.find_cluster(request.match_info["id"])
        return web.json_response({"clusters": {c.id: c.to_wire()}})

    async def register_cluster(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        cluster = await self.registry.register_cluster(Cluster.from_wire(await self.body(request)))
        return web.json_response(cluster.to_wire(), status=201)

    async def update_cluster(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        cluster = await self.registry.update_cluster(request.match_info["id"], await self.body(request))
        return web.json_response(cluster.to_wire())

    async def delete_cluster(self, request: web.Request) -> web.StreamResponse:
        self.admin(request)
        await self.registry.delete_cluster(request.match_info["id"])
        return web.Response()

    # --- tokens and the rest ---------------------------------------------------------------

    async def revoke(self, request: web.Request) -> web.StreamResponse:
        """Revoke, then wait for one delivery round to the clusters (bounded; what fails is
        retried in the background) so a cluster refuses the token once this returns."""
        claims = self.caller(request)
        token = (await self.body(request)).get("token")
        if not isinstance(token, str) or not token.strip():
            raise BadRequest("revoke: 'token' is missing or not a string")
        if await self.registry.revoke(token.strip(), claims) and self.pusher is not None:
            await self.pusher.push_now(self.cfg.push_timeout_s)
        return web.Response()

    async def daemon(self, request: web.Request) -> web.StreamResponse:
        """Settings without secrets, and how many revocations each cluster has yet to receive."""
        self.admin(request)
        cfg = self.cfg
        pending = self.pusher.pending if self.pusher else {}
        return web.json_response({"algorithm": self.signer.algorithm, "issuer": self.signer.issuer,
                                  "token_ttl_s": cfg.token_ttl_s, "max_token_ttl_s": cfg.max_token_ttl_s,
                                  "su_name": cfg.su_name, "conf_dir": cfg.conf_dir, "push_retry_s": cfg.push_retry_s,
                                  "pending_revocations": {cid: len(tokens) for cid, tokens in pending.items()}})

    async def health(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def openid_configuration(self, _: web.Request) -> web.StreamResponse:
        self._asymmetric_only()
        return web.json_response(self.signer.openid_configuration())

    async def jwks(self, _: web.Request) -> web.StreamResponse:
        self._asymmetric_only()
        return web.json_response(self.signer.jwks())

    def _asymmetric_only(self) -> None:
        if not self.signer.is_asymmetric:
            raise NotFound("no public keys: this AuthN signs tokens with HS256 (a shared secret)")


def build_app(cfg: AuthnConfig, registry: Registry, signer: Signer) -> web.Application:
    api = AuthnApi(cfg, registry, signer)
    metrics = NodeMetrics(NODE_NAME, NODE_NAME)
    app = web.Application(middlewares=middlewares(lambda: NODE_NAME, metrics))
    r = app.router
    r.add_post("/v1/users/{id}", api.login)
    r.add_get("/v1/users", api.list_users)
    r.add_post("/v1/users", api.add_user)
    r.add_get("/v1/users/{id}", api.get_user)
    r.add_put("/v1/users/{id}", api.update_user)
    r.add_delete("/v1/users/{id}", api.delete_user)
    r.add_get("/v1/roles", api.list_roles)
    r.add_post("/v1/roles", api.add_role)
    r.add_get("/v1/roles/{name}", api.get_role)
    r.add_put("/v1/roles/{name}", api.update_role)
    r.add_delete("/v1/roles/{name}", api.delete_role)
    r.add_get("/v1/clusters", api.list_clusters)
    r.add_post("/v1/clusters", api.register_cluster)
    r.add_get("/v1/clusters/{id}", api.get_cluster)
    r.add_put("/v1/clusters/{id}", api.update_cluster)
    r.add_delete("/v1/clusters/{id}", api.delete_cluster)
    r.add_delete("/v1/tokens", api.revoke)
    r.add_get("/v1/daemon", api.daemon)
    r.add_get("/v1/health", api.health)
    r.add_get("/metrics", metrics_handler(metrics))
    r.add_get("/.well-known/openid-configuration", api.openid_configuration)
    r.add_get("/.well-known/jwks.json", api.jwks)

    async def revocation_push(app: web.Application) -> AsyncIterator[None]:
        """One client session and the push loop, for the life of the app."""
        owner = TaskOwner()
        async with aiohttp.ClientSession() as session:
            pusher = RevocationPusher(cfg, signer, session, lambda: registry.clusters, lambda: registry.revoked)
            registry.on_revoked = pusher.token_revoked
            registry.on_cluster_changed = pusher.cluster_changed
            api.pusher = pusher
            pusher.all_to_all()
            owner.spawn(pusher.run(), "revocation-push")
            try:
                yield
            finally:
                api.pusher = None
                await owner.cancel_all()

    app.cleanup_ctx.append(revocation_push)
    return app
