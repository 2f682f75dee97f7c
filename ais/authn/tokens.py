"""Signing and verifying AuthN's JWTs, and the claims a user's roles add up to.

HS256 with a shared secret, or RS256 with a private key (generated on first start) whose public
half is published as a JWKS for OIDC-style discovery. The claims, which clusters verify:

    {"sub", "username", "iat", "exp", "jti", "admin": bool,
     "clusters": [{"id": "<cluster uuid>", "perm": "<uint64>"}],
     "buckets": [{"bck": {"name", "provider", "namespace": {"uuid", "name"}}, "perm": "<uint64>"}]}

RS256 tokens also carry `iss` (the service's URL) and a `kid` header naming the JWKS key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from typing import Any, Iterable, Mapping

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ais.authn.config import AuthnConfig
from ais.authn.errors import Unauthorized
from ais.authn.model import BucketPerm, BucketRef, ClusterPerm, Role, User
from ais.authn.store import write_atomic

log = logging.getLogger(__name__)

SERVICE_SUBJECT = "authn"     # `sub` of the tokens the service mints for itself (revocation pushes)
RSA_KEY_BITS = 2048
MIN_HS256_SECRET_BYTES = 32


class Signer:
    def __init__(self, algorithm: str, signing_key: Any, verifying_key: Any, issuer: str, kid: str = "") -> None:
        self.algorithm = algorithm
        self._signing_key = signing_key
        self._verifying_key = verifying_key
        self.issuer = issuer
        self.kid = kid

    @classmethod
    def from_config(cls, cfg: AuthnConfig) -> "Signer":
        """HS256 with the configured secret, else RS256 with the key file (created when missing).
        Blocking (file I/O, key generation): call once at start-up, off the event loop."""
        if cfg.secret_key:
            if len(cfg.secret_key.encode()) < MIN_HS256_SECRET_BYTES:
                log.warning("the HS256 secret is %d bytes: use at least %d (RFC 7518 §3.2)",
                            len(cfg.secret_key.encode()), MIN_HS256_SECRET_BYTES)
            return cls("HS256", cfg.secret_key, cfg.secret_key, cfg.issuer_url)
        key = load_or_create_key(cfg.key_path)
        return cls("RS256", key, key.public_key(), cfg.issuer_url, kid=key_id(key.public_key()))

    @property
    def is_asymmetric(self) -> bool:
        return self.algorithm == "RS256"

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Every token unique (`jti`): two logins within the same second would otherwise sign the
        same bytes, and revoking one would revoke the other."""
        payload = dict(claims)
        payload.setdefault("jti", secrets.token_hex(8))
        headers = None
        if self.is_asymmetric:
            payload.setdefault("iss", self.issuer)
            headers = {"kid": self.kid}
        return jwt.encode(payload, self._signing_key, algorithm=self.algorithm, headers=headers)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this service signed and that has not expired; Unauthorized else."""
        try:
            claims: dict[str, Any] = jwt.decode(token, self._verifying_key, algorithms=[self.algorithm],
                                                options={"require": ["exp", "sub"], "verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        return claims

    def decode_expired_ok(self, token: str) -> dict[str, Any]:
        """Verify the signature but accept an expired token (revoking one is a no-op, not an error)."""
        try:
            claims: dict[str, Any] = jwt.decode(token, self._verifying_key, algorithms=[self.algorithm],
                                                options={"require": ["exp", "sub"], "verify_exp": False,
                                                         "verify_aud": False})
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        return claims

    def service_token(self, ttl_s: float) -> str:
        """An admin token for the service's own calls to clusters."""
        now = int(time.time())
        return self.sign({"sub": SERVICE_SUBJECT, "username": SERVICE_SUBJECT, "iat": now,
                          "exp": now + int(ttl_s), "admin": True, "clusters": [], "buckets": []})

    def jwks(self) -> dict[str, Any]:
        if not self.is_asymmetric:
            return {"keys": []}
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._verifying_key))
        jwk.update(kid=self.kid, use="sig", alg=self.algorithm)
        return {"keys": [jwk]}

    def openid_configuration(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": [self.algorithm],
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "claims_supported": ["sub", "username", "iat", "exp", "jti", "iss", "admin", "clusters", "buckets"]}


def load_or_create_key(path: str) -> rsa.RSAPrivateKey:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        log.info("generating a %d-bit RSA signing key in %s", RSA_KEY_BITS, path)
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        write_atomic(path, pem, mode=0o600)
        return key
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot load the RSA private key {path}: {exc}") from exc
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    return loaded


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint of the public key."""
    numbers = public_key.public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    canonical = json.dumps({"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def user_claims(user: User, roles: Mapping[str, Role], now: int, ttl_s: float) -> dict[str, Any]:
    """The claims of a login: the user's own permissions merged with its roles' (bits OR-ed per
    cluster and per bucket); admin when any role is."""
    granted = [roles[name] for name in user.roles if name in roles]
    return {"sub": user.id, "username": user.id, "iat": now, "exp": now + int(ttl_s),
            "admin": any(r.admin for r in granted),
            "clusters": [c.to_wire() for c in merge_clusters([user.clusters, *(r.clusters for r in granted)])],
            "buckets": [b.to_wire() for b in merge_buckets([user.buckets, *(r.buckets for r in granted)])]}


def merge_clusters(groups: Iterable[Iterable[ClusterPerm]]) -> list[ClusterPerm]:
    merged: dict[str, int] = {}
    for group in groups:
        for c in group:
            merged[c.id] = merged.get(c.id, 0) | c.perm
    return [ClusterPerm(cid, perm) for cid, perm in merged.items()]


def merge_buckets(groups: Iterable[Iterable[BucketPerm]]) -> list[BucketPerm]:
    merged: dict[BucketRef, int] = {}
    for group in groups:
        for b in group:
            merged[b.bck] = merged.get(b.bck, 0) | b.perm
    return [BucketPerm(bck, perm) for bck, perm in merged.items()]
