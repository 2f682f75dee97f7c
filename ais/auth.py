"""Authentication and authorization: one module, the same checks on proxies and targets.

    request ──► auth middleware ─┬─ auth off, or a public route (health, metrics, smap) ──► handler
                                 ├─ signed by a proxy (redirect query or `Ais-Sig` header) ──► handler
                                 ├─ S3 route ──► the S3 front end authorizes (SigV4 key → Principal)
                                 └─ bearer JWT ──► TokenVerifier ──► Principal
                                                   └─ requirements(route, action) ⊆ permissions? ──► handler
                                                      else 401 (no/bad/expired/revoked token), 403 (not allowed)

- **Tokens** come from the AuthN service (`ais.authn`): JWTs signed HS256/384/512 (shared
  secret) or RS256/384/512 (its public key in `auth.signature_key`), with the claims `sub`,
  `exp`, `admin`, `clusters: [{id, perm}]` and `buckets: [{bck, perm}]`; `perm` is the uint64
  permission mask of reference §16 as a decimal string. A bucket entry overrides the cluster
  entry for that bucket; system buckets (`.sys-*`) need admin.
- **Revocation**: the AuthN service sends `DELETE /v1/tokens {"token"}` to a proxy; the primary
  records the token's hash in `AuthMD`, which every node receives by metasync and checks.
- **Redirects** (and proxy-to-node relays) are signed with the cluster's key from `AuthMD`:
  HMAC-SHA256 over the method, the decoded path and the sorted decoded query, with an expiry.
  HTTP clients drop `Authorization` on a redirect to another port, so a target accepts a
  redirected request on the proxy's signature; a request sent to a target directly needs its
  own token and passes the same permission checks as at a proxy.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Iterable, Mapping
from urllib.parse import quote

import jwt
from aiohttp import web
from yarl import URL

from ais import apc, moss, names
from ais.config import AuthSection
from ais.errors import AisError, Forbidden, Unauthorized
from ais.names import Bucket
from ais.web import BODY_READ, JSON_READ, action_msg, ci_get, parse_json, read_body


class Perm(enum.IntFlag):
    """Permission bits (AIStore's `apc.AccessAttrs`, the SDK's `AccessAttr`)."""
    GET = 1 << 0
    HEAD_OBJECT = 1 << 1
    PUT = 1 << 2
    APPEND = 1 << 3
    DELETE_OBJECT = 1 << 4
    MOVE_OBJECT = 1 << 5
    PROMOTE = 1 << 6
    UPDATE_OBJECT = 1 << 7
    HEAD_BUCKET = 1 << 8
    LIST_OBJECTS = 1 << 9
    PATCH = 1 << 10
    SET_BUCKET_ACL = 1 << 11
    LIST_BUCKETS = 1 << 12
    SHOW_CLUSTER = 1 << 13
    CREATE_BUCKET = 1 << 14
    DESTROY_BUCKET = 1 << 15
    MOVE_BUCKET = 1 << 16
    ADMIN = 1 << 17


RO = Perm.GET | Perm.HEAD_OBJECT | Perm.HEAD_BUCKET | Perm.LIST_OBJECTS
RW = RO | Perm.PUT | Perm.APPEND | Perm.DELETE_OBJECT | Perm.MOVE_OBJECT
CLUSTER_RO = Perm.LIST_BUCKETS | Perm.SHOW_CLUSTER
CLUSTER_RW = CLUSTER_RO | Perm.CREATE_BUCKET | Perm.DESTROY_BUCKET | Perm.MOVE_BUCKET
SU = Perm((1 << 18) - 1)
# Checked against the cluster entry only: they are about the cluster, not one bucket.
CLUSTER_ONLY = CLUSTER_RW | Perm.ADMIN

SYSTEM_BUCKET_PREFIX = ".sys-"


def perm_names(perm: int) -> str:
    return "|".join(p.name.lower() for p in Perm if p & perm and p.name) or "none"


# --- who is asking -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BucketGrant:
    name: str
    provider: str
    ns_uuid: str
    ns_name: str
    perm: int

    def matches(self, bck: Bucket, cluster_uuid: str) -> bool:
        if self.name != bck.name or self.provider != bck.provider or self.ns_name != bck.namespace.name:
            return False
        # AIStore scopes a grant to a cluster by the namespace uuid; ours: empty or this cluster
        if bck.namespace.uuid:
            return self.ns_uuid == bck.namespace.uuid
        return self.ns_uuid in ("", cluster_uuid)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller and what it may do, from a token's claims or an S3 key's binding."""
    user: str
    admin: bool = False
    exp: float = 0.0
    clusters: Mapping[str, int] = field(default_factory=dict)
    buckets: tuple[BucketGrant, ...] = ()
    token_id: str = ""        # hash of the token it came from (revocation)

    def allows(self, perm: int, cluster_uuid: str, bck: Bucket | None = None) -> bool:
        if self.admin:
            return True
        if perm & Perm.ADMIN:
            return False
        if bck is not None and bck.name.startswith(SYSTEM_BUCKET_PREFIX):
            return False
        if bck is not None and not perm & CLUSTER_ONLY:
            for grant in self.buckets:
                if grant.matches(bck, cluster_uuid):
                    return grant.perm & perm == perm
        return self.clusters.get(cluster_uuid, 0) & perm == perm

    def require(self, perm: int, cluster_uuid: str, bck: Bucket | None = None) -> None:
        if not self.allows(perm, cluster_uuid, bck):
            what = f" on {bck.cname}" if bck is not None else ""
            raise Forbidden(f"user {self.user!r} is not allowed to {perm_names(perm)}{what}")

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token_id: str = "") -> "Principal":
        """Build from JWT claims (or an S3 key's stored binding); malformed claims are a 401."""
        try:
            user = str(claims.get("sub") or claims.get("username") or "")
            clusters = {str(c["id"]): _perm(c["perm"]) for c in claims.get("clusters") or ()}
            grants = []
            for b in claims.get("buckets") or ():
                bck, ns = b["bck"], b["bck"].get("namespace") or {}
                grants.append(BucketGrant(str(bck["name"]), names.normalize_provider(str(bck.get("provider") or "")),
                                          str(ns.get("uuid") or ""), str(ns.get("name") or ""), _perm(b["perm"])))
            return cls(user=user, admin=bool(claims.get("admin")), exp=float(claims.get("exp") or 0),
                       clusters=clusters, buckets=tuple(grants), token_id=token_id)
        except (KeyError, TypeError, ValueError, AttributeError, AisError) as exc:
            raise Unauthorized(f"token claims are malformed: {type(exc).__name__}: {exc}") from exc

    def to_claims(self) -> dict[str, Any]:
        return {"sub": self.user, "admin": self.admin,
                "clusters": [{"id": k, "perm": str(v)} for k, v in self.clusters.items()],
                "buckets": [{"bck": {"name": g.name, "provider": g.provider,
                                     "namespace": {"uuid": g.ns_uuid, "name": g.ns_name}}, "perm": str(g.perm)}
                            for g in self.buckets]}


def _perm(value: Any) -> int:
    perm = int(value)
    if perm < 0 or perm >= 1 << 64:
        raise ValueError(f"permission {value!r} out of range")
    return perm


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>' "
                           "(a token from the AuthN service, e.g. `ais auth login`)")
    return token.strip()


class TokenVerifier:
    """Checks a JWT's signature, expiry and audience by the `auth` config; remembers good ones."""

    CACHE = 4096

    def __init__(self, cfg: AuthSection) -> None:
        self.method = cfg.signature_method.upper()
        if self.method not in ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512"):
            raise ValueError(f"auth.signature_method {cfg.signature_method!r}: expected HS256/384/512 or RS256/384/512")
        key = cfg.signature_key
        if not key and cfg.signature_key_file:
            with open(cfg.signature_key_file, encoding="utf-8") as f:
                key = f.read()
        if not key:
            raise ValueError("auth is enabled but neither auth.signature_key nor auth.signature_key_file is set")
        self.key: Any = key
        if self.method.startswith("RS"):
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
            self.key = load_pem_public_key(key.encode())
        self.audience = cfg.required_audience or None
        self._cache: OrderedDict[str, Principal] = OrderedDict()

    def verify(self, token: str, now: float | None = None) -> Principal:
        now = time.time() if now is None else now
        hit = self._cache.get(token)
        if hit is not None:
            if hit.exp > now:
                self._cache.move_to_end(token)
                return hit
            del self._cache[token]
            raise Unauthorized("token expired")
        try:
            claims = jwt.decode(token, self.key, algorithms=[self.method], audience=self.audience,
                                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None})
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        principal = Principal.from_claims(claims, token_id(token))
        self._cache[token] = principal
        if len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)
        return principal


# --- cluster-wide auth metadata ------------------------------------------------------------------

@dataclass(frozen=True)
class AuthMD:
    """Metasynced: the key that signs redirects, and revoked tokens (hash -> expiry) until they expire."""
    version: int
    key: str = ""
    revoked: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def new(cls) -> "AuthMD":
        return cls(version=1, key=os.urandom(32).hex())

    def with_revoked(self, tid: str, exp: float, now: float | None = None) -> "AuthMD":
        now = time.time() if now is None else now
        kept = {k: v for k, v in self.revoked.items() if v > now}
        kept[tid] = exp
        return replace(self, version=self.version + 1, revoked=kept)

    def is_revoked(self, tid: str) -> bool:
        return tid in self.revoked

    def to_wire(self) -> dict[str, Any]:
        return {"version": str(self.version), "key": self.key, "revoked": dict(self.revoked)}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "AuthMD":
        return cls(version=int(d["version"]), key=str(d.get("key") or ""),
                   revoked={str(k): float(v) for k, v in (d.get("revoked") or {}).items()})


# --- signed redirects and relays -------------------------------------------------------------------

Q_SIG = "ais_sig"
Q_SIG_EXP = "ais_sig_exp"
Q_SIG_BODY = "ais_sig_body"
HDR_SIG = "Ais-Sig"


def _mac(key: str, method: str, path: str, items: Iterable[tuple[str, str]]) -> str:
    query = "&".join(sorted(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in items if k != Q_SIG))
    msg = f"{method.upper()}\n{path}\n{query}".encode()
    return hmac.new(bytes.fromhex(key), msg, hashlib.sha256).hexdigest()


def sign_location(key: str, method: str, location: str, ttl_s: float, body: bytes | None = None,
                  now: float | None = None) -> str:
    """`location` with an expiry and a signature appended to its query (raw text kept as is).
    `body`: a control body the proxy authorized; its hash is signed too, so that the client
    cannot send another one to the target."""
    exp = str(int((time.time() if now is None else now) + ttl_s))
    sep = "&" if "?" in location else "?"
    location = f"{location}{sep}{Q_SIG_EXP}={exp}"
    if body is not None:
        location += f"&{Q_SIG_BODY}={hashlib.sha256(body).hexdigest()}"
    url = URL(location, encoded=True)
    return f"{location}&{Q_SIG}={_mac(key, method, url.path, url.query.items())}"


def sign_header(key: str, method: str, url: str | URL, ttl_s: float, now: float | None = None) -> str:
    """`Ais-Sig` for a proxy-to-node call of `method url`: `<expiry>.<mac>`."""
    exp = str(int((time.time() if now is None else now) + ttl_s))
    u = url if isinstance(url, URL) else URL(url)
    return f"{exp}.{_mac(key, method, u.path, [*u.query.items(), (Q_SIG_EXP, exp)])}"


def verify_signed(request: web.Request, key: str, now: float | None = None) -> bool:
    """Whether a proxy signed this request (redirect query, or relay header), and not too long ago."""
    if not key:
        return False
    q = request.rel_url.query
    header = request.headers.get(HDR_SIG)
    if header:
        exp, _, mac = header.partition(".")
        items = [*q.items(), (Q_SIG_EXP, exp)]
    elif Q_SIG in q:
        exp, mac = q.get(Q_SIG_EXP, ""), q[Q_SIG]
        items = list(q.items())
    else:
        return False
    try:
        if int(exp) < (time.time() if now is None else now):
            return False
    except ValueError:
        return False
    return hmac.compare_digest(mac, _mac(key, request.method, request.rel_url.path, items))


# --- what a route needs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Need:
    perm: int
    bucket: Bucket | None = None


def _bucket(name: str, query: Mapping[str, str]) -> Bucket:
    return names.make_bucket(name, query.get(apc.Q_PROVIDER, ""), query.get(apc.Q_NAMESPACE, ""))


def _bucket_to(query: Mapping[str, str]) -> Bucket | None:
    uname = query.get(apc.Q_BCK_TO)
    return names.parse_uname_bucket(uname) if uname else None


# Actions on a bucket: permission on the bucket itself, and on the destination (`bck_to`) if any.
BUCKET_ACTIONS: dict[str, tuple[int, int]] = {
    apc.ACT_LIST: (Perm.LIST_OBJECTS, 0),
    apc.ACT_SUMMARY_BCK: (Perm.HEAD_BUCKET, 0),
    apc.ACT_CREATE_BCK: (Perm.CREATE_BUCKET, 0),
    apc.ACT_DESTROY_BCK: (Perm.DESTROY_BUCKET, 0),
    apc.ACT_EVICT_REMOTE_BCK: (Perm.DESTROY_BUCKET, 0),
    apc.ACT_MOVE_BCK: (Perm.MOVE_BUCKET, Perm.CREATE_BUCKET),
    apc.ACT_COPY_BCK: (Perm.GET | Perm.LIST_OBJECTS, Perm.PUT),
    "etl-bck": (Perm.GET | Perm.LIST_OBJECTS, Perm.PUT),
    apc.ACT_COPY_LIST: (Perm.GET, Perm.PUT),
    "etl-listrange": (Perm.GET, Perm.PUT),
    apc.ACT_PREFETCH_LIST: (Perm.GET, 0),
    apc.ACT_BLOB_DOWNLOAD: (Perm.GET, 0),
    apc.ACT_DELETE_LIST: (Perm.DELETE_OBJECT, 0),
    apc.ACT_EVICT_LIST: (Perm.DELETE_OBJECT, 0),
    apc.ACT_ARCHIVE: (Perm.GET | Perm.PUT, Perm.PUT),
    apc.ACT_SET_BPROPS: (Perm.PATCH, 0),
    apc.ACT_RESET_BPROPS: (Perm.PATCH, 0),
    "create-inventory": (Perm.LIST_OBJECTS, 0),
    "show-inventory": (Perm.LIST_OBJECTS, 0),
    "destroy-inventory": (Perm.PATCH, 0),
    "make-n-copies": (Perm.PATCH, 0),
}
OBJECT_ACTIONS: dict[str, int] = {
    apc.ACT_RENAME_OBJ: Perm.MOVE_OBJECT,
    apc.ACT_MPT_UPLOAD: Perm.PUT,
    apc.ACT_MPT_COMPLETE: Perm.PUT,
    apc.ACT_MPT_ABORT: Perm.PUT,
    apc.ACT_CHECK_LOCK: Perm.HEAD_OBJECT,
    "promote": Perm.PROMOTE,
}
OBJECT_VERBS = {"GET": Perm.GET, "HEAD": Perm.HEAD_OBJECT, "PUT": Perm.PUT,
                "DELETE": Perm.DELETE_OBJECT, "PATCH": Perm.UPDATE_OBJECT}


def body_limit(method: str, path: str) -> int:
    """For a route whose permission depends on its JSON body (an action message, a batch
    request), the most bytes that body may have (its handler's own limit); 0 for the rest."""
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != apc.VERSION:
        return 0
    area = parts[2]
    if area == "ml":
        return moss.MAX_BODY_BYTES if method == "GET" else 0
    if (area == "buckets" and (len(parts) > 3 or method == "GET")) or (area == "objects" and method == "POST"):
        return apc.MAX_CONTROL_BODY_BYTES
    return 0


def requirements(method: str, path: str, query: Mapping[str, str], body: Any) -> list[Need]:
    """The permissions `method path` needs; `body` is the parsed JSON body of a route that has a
    `body_limit`, read the way its handler reads it. Anything not listed here is admin-only
    (deny by default)."""
    parts = path.split("/")
    area = parts[2] if len(parts) > 2 and parts[1] == apc.VERSION else ""
    if area == "ml":                                                        # GetBatch: GET on every bucket
        return [Need(Perm.GET, b) for b in _batch_buckets(parts, query, body)]
    msg = action_msg(body) if body is not None else None
    act = msg.action if msg is not None else ""
    if area == "objects" and len(parts) > 3 and parts[3]:
        bck = _bucket(parts[3], query)
        if len(parts) == 4 or (len(parts) == 5 and not parts[4]):     # POST /v1/objects/<bucket>
            return [Need(BUCKET_ACTIONS.get(act, (Perm.ADMIN, 0))[0], bck)]
        if method == "POST":
            return [Need(OBJECT_ACTIONS.get(act, Perm.ADMIN), bck)]
        perm = OBJECT_VERBS.get(method, Perm.ADMIN)
        if method == "PUT" and query.get(apc.Q_APPEND_TYPE):
            perm = Perm.APPEND
        needs = [Need(perm, bck)]
        if method == "PUT" and query.get(apc.Q_OBJ_TO):                  # copy: read here, write there
            needs = [Need(Perm.GET, bck), Need(Perm.PUT, names.parse_uname_object(query[apc.Q_OBJ_TO])[0])]
        return needs
    if area == "buckets":
        if len(parts) < 4 or not parts[3]:                                  # all buckets
            return [Need(Perm.LIST_BUCKETS)]
        bck = _bucket(parts[3], query)
        if method == "HEAD":
            return [Need(Perm.HEAD_BUCKET, bck)]
        if method == "PATCH":
            value = msg.value if msg is not None else None
            extra = Perm.SET_BUCKET_ACL if isinstance(value, dict) and ci_get(value, "access") is not None else 0
            return [Need(Perm.PATCH | extra, bck)]
        if method == "GET" and not act:
            return [Need(Perm.LIST_OBJECTS, bck)]
        own, dst = BUCKET_ACTIONS.get(act, (Perm.ADMIN, 0))
        needs = [Need(own, None if own & CLUSTER_ONLY else bck)]
        to = _bucket_to(query)
        if dst and to is not None:
            needs.append(Need(dst, to))
        return needs
    if area == "s3" and parts[3:4] == ["keys"]:     # any user: keys of their own (the handler checks)
        return []
    if area in ("cluster", "daemon", "reverse", "etl") and method == "GET":
        return [Need(Perm.SHOW_CLUSTER)]
    return [Need(Perm.ADMIN)]


def _batch_buckets(parts: list[str], query: Mapping[str, str], body: Any) -> list[Bucket]:
    """The buckets a batch request reads, by the parser its handler uses (entries by name or
    uname, keys in any case): what is checked is exactly what will be read."""
    default = _bucket(parts[4], query) if len(parts) > 4 and parts[4] else None
    return moss.parse_request(body, default).buckets


def is_public(method: str, path: str, query: Mapping[str, str]) -> bool:
    """Open to anyone: health (probes), metrics (scrapers), the cluster map (client bootstrap)."""
    if path in ("/v1/health", "/metrics"):
        return True
    return path == "/v1/daemon" and method == "GET" and query.get(apc.Q_WHAT) == apc.WHAT_SMAP


# --- the middleware -----------------------------------------------------------------------------------

PRINCIPAL = "ais.principal"   # the request's Principal; None when a proxy vouched for it


@dataclass
class Gate:
    """What a node checks requests with: built from `auth` config, refreshed as metadata changes."""
    cfg: AuthSection
    verifier: TokenVerifier
    cluster_uuid: Callable[[], str]
    authmd: Callable[[], AuthMD | None]

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        principal = self.verifier.verify(bearer(headers))
        md = self.authmd()
        if md is not None and md.is_revoked(principal.token_id):
            raise Unauthorized("token revoked")
        return principal

    def key(self) -> str:
        md = self.authmd()
        return md.key if md is not None else ""

    def sign_location(self, request: web.Request, location: str) -> str:
        key = self.key()
        if not key:
            return location
        body = request.get(BODY_READ)
        return sign_location(key, request.method, location, self.cfg.redirect_ttl_s,
                             None if body is None else bytes(body))

    def sign_header(self, method: str, url: str | URL) -> dict[str, str]:
        """`Ais-Sig` for a node-to-node call (see IntraClient.signer)."""
        key = self.key()
        return {HDR_SIG: sign_header(key, method, url, self.cfg.redirect_ttl_s)} if key else {}


def gate_for(cfg: AuthSection, cluster_uuid: Callable[[], str], authmd: Callable[[], AuthMD | None]) -> Gate | None:
    """The node's gate when auth is enabled (a bad `auth` config fails start-up), else None."""
    return Gate(cfg, TokenVerifier(cfg), cluster_uuid, authmd) if cfg.enabled else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(gate: Callable[[], Gate | None], *, s3_prefix: str | None,
               s3_direct_refused: bool = False) -> Any:
    """The auth middleware of a public listener. `s3_prefix`: paths the S3 front end owns ("" for
    everything outside /v1 and /metrics); `s3_direct_refused`: a target, which takes S3 requests
    only as relays signed by a proxy."""

    @web.middleware
    async def mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        g = gate()
        path = request.path
        if g is None or is_public(request.method, path, request.query):
            return await handler(request)
        if verify_signed(request, g.key()):
            digest = request.rel_url.query.get(Q_SIG_BODY)
            if digest is not None:   # a body the proxy read under the same route's limit
                body = await read_body(request, body_limit(request.method, path) or apc.MAX_CONTROL_BODY_BYTES)
                if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), digest):
                    raise Forbidden("the request body differs from the one the proxy authorized")
                request[BODY_READ] = body
            request[PRINCIPAL] = None   # vouched for by a proxy
            return await handler(request)
        if s3_prefix is not None and _is_s3(path, s3_prefix):
            if s3_direct_refused:
                raise Forbidden("with authentication on, send S3 requests to a proxy")
            return await handler(request)
        principal = g.authenticate(request.headers)
        parsed = None
        limit = body_limit(request.method, path)
        if limit:
            body = await read_body(request, limit)
            parsed = parse_json(body) if body.strip() else None   # malformed: the 400 its handler would send
            request[BODY_READ], request[JSON_READ] = body, parsed
        needs = requirements(request.method, path, request.query, parsed)
        uuid = g.cluster_uuid()
        for need in needs:
            principal.require(need.perm, uuid, need.bucket)
        request[PRINCIPAL] = principal
        return await handler(request)

    return mw


def _is_s3(path: str, prefix: str) -> bool:
    if prefix:
        return path == prefix or path.startswith(prefix + "/")
    return not (path.startswith("/v1/") or path == "/v1" or path == "/metrics")
