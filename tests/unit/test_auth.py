"""ais.auth without a cluster: permission checks, route requirements, redirect signatures."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import make_mocked_request

from ais import names
from ais.auth import (CLUSTER_RO, RO, RW, SU, AuthMD, Perm, Principal, TokenVerifier, body_limit, requirements,
                      sign_header, sign_location, verify_signed)
from ais.config import AuthSection
from ais.errors import BadRequest, Forbidden, Unauthorized

UUID = "clu5ter"
KEY = "ab" * 32


def _principal(**claims: Any) -> Principal:
    return Principal.from_claims({"sub": "u", **claims})


def test_bucket_grant_overrides_cluster_and_admin_sees_all() -> None:
    data, other = names.make_bucket("data"), names.make_bucket("other")
    p = _principal(clusters=[{"id": UUID, "perm": str(int(CLUSTER_RO | RW))}],
                   buckets=[{"bck": {"name": "data", "provider": "ais"}, "perm": str(int(RO))}])
    assert p.allows(Perm.GET, UUID, data) and not p.allows(Perm.PUT, UUID, data)   # the bucket's grant wins
    assert p.allows(Perm.PUT, UUID, other)                                          # the cluster's applies elsewhere
    assert not p.allows(Perm.PUT, "another-cluster", other)
    assert p.allows(Perm.LIST_BUCKETS, UUID) and not p.allows(Perm.CREATE_BUCKET, UUID)
    assert not p.allows(Perm.ADMIN, UUID)
    assert not p.allows(Perm.GET, UUID, names.make_bucket(".sys-inventory"))        # system buckets: admin only
    root = _principal(admin=True)
    assert root.allows(SU, UUID, names.make_bucket(".sys-inventory"))
    with pytest.raises(Forbidden, match="not allowed to put on ais://data"):
        p.require(Perm.PUT, UUID, data)


@pytest.mark.parametrize("claims", [{"clusters": [{"id": "x"}]}, {"clusters": [{"id": "x", "perm": "-1"}]},
                                    {"buckets": [{"perm": "1"}]}, {"buckets": [{"bck": {"name": "b"}, "perm": "lots"}]},
                                    {"clusters": "nope"}])
def test_malformed_claims_are_401(claims: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        _principal(**claims)


def test_token_verifier() -> None:
    secret = "s" * 32
    v = TokenVerifier(AuthSection(enabled=True, signature_key=secret))
    good = jwt.encode({"sub": "a", "exp": int(time.time()) + 60, "admin": True}, secret, algorithm="HS256")
    assert v.verify(good).admin and v.verify(good).user == "a"          # the second one from the cache
    for bad, why in ((jwt.encode({"sub": "a", "exp": int(time.time()) - 1}, secret, algorithm="HS256"), "expired"),
                     (jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, "x" * 32, algorithm="HS256"), "invalid"),
                     (jwt.encode({"sub": "a"}, secret, algorithm="HS256"), "invalid"),
                     (jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, secret, algorithm="HS512"), "invalid"),
                     ("a.b.c", "invalid")):
        with pytest.raises(Unauthorized, match=why):
            v.verify(bad)
    assert v.verify(good, now=time.time()).exp > 0
    with pytest.raises(Unauthorized, match="expired"):
        v.verify(good, now=time.time() + 3600)                         # a cached token expires too
    with pytest.raises(ValueError):
        TokenVerifier(AuthSection(enabled=True))                       # no key
    with pytest.raises(ValueError):
        TokenVerifier(AuthSection(enabled=True, signature_method="none", signature_key="k"))


def _needs(method: str, path: str, query: dict[str, str] | None = None, action: Any = None) -> list[tuple[int, str]]:
    return [(n.perm, n.bucket.name if n.bucket else "") for n in requirements(method, path, query or {}, action)]


def test_requirements_per_route_and_action() -> None:
    assert _needs("GET", "/v1/objects/b/o") == [(Perm.GET, "b")]
    assert _needs("HEAD", "/v1/objects/b/o") == [(Perm.HEAD_OBJECT, "b")]
    assert _needs("PUT", "/v1/objects/b/o", {"append_type": "append"}) == [(Perm.APPEND, "b")]
    assert _needs("PUT", "/v1/objects/b/o", {"object_to": "ais/@#/c/o2"}) == [(Perm.GET, "b"), (Perm.PUT, "c")]
    assert _needs("POST", "/v1/objects/b/o", action={"action": "rename-obj"}) == [(Perm.MOVE_OBJECT, "b")]
    assert _needs("POST", "/v1/objects/b/o", action={"action": "whatever"}) == [(Perm.ADMIN, "b")]
    assert _needs("GET", "/v1/buckets") == [(Perm.LIST_BUCKETS, "")]
    assert _needs("GET", "/v1/buckets/b", action={"action": "list"}) == [(Perm.LIST_OBJECTS, "b")]
    assert _needs("POST", "/v1/buckets/b", action={"action": "create-bck"}) == [(Perm.CREATE_BUCKET, "")]
    assert _needs("POST", "/v1/buckets/b", {"bck_to": "ais/@#/c/"}, {"action": "copy-bck"}) == \
        [(Perm.GET | Perm.LIST_OBJECTS, "b"), (Perm.PUT, "c")]
    assert _needs("DELETE", "/v1/buckets/b", action={"action": "destroy-bck"}) == [(Perm.DESTROY_BUCKET, "")]
    assert _needs("PATCH", "/v1/buckets/b", action={"value": {"access": "1"}}) == [(Perm.PATCH | Perm.SET_BUCKET_ACL, "b")]
    assert _needs("GET", "/v1/ml/moss/b", action={"in": [{"objname": "x"}, {"objname": "y", "bucket": "c"}]}) == \
        [(Perm.GET, "b"), (Perm.GET, "c")]
    # the body is read the way its handler reads it: keys in any case, entries by uname too
    assert _needs("GET", "/v1/ml/moss/b", action={"in": [{"objname": "x", "Bucket": "c"}, {"uname": "ais/@#/d/y"}]}) == \
        [(Perm.GET, "c"), (Perm.GET, "d")]
    assert _needs("DELETE", "/v1/buckets/b", action={"Action": "destroy-bck"}) == [(Perm.DESTROY_BUCKET, "")]
    assert _needs("PATCH", "/v1/buckets/b", action={"Value": {"Access": "1"}}) == [(Perm.PATCH | Perm.SET_BUCKET_ACL, "b")]
    with pytest.raises(BadRequest):
        _needs("POST", "/v1/objects/b/o", action=["not", "an", "action"])
    assert body_limit("GET", "/v1/ml/moss") > body_limit("POST", "/v1/buckets/b") > 0
    assert body_limit("PUT", "/v1/objects/b/o") == body_limit("GET", "/v1/cluster") == 0
    assert _needs("GET", "/v1/cluster") == [(Perm.SHOW_CLUSTER, "")]
    for method, path in (("PUT", "/v1/cluster"), ("POST", "/v1/etl"), ("PUT", "/v1/etl"), ("DELETE", "/v1/tokens"),
                         ("GET", "/v1/sort"), ("PUT", "/v1/cluster/set-config")):
        assert _needs(method, path) == [(Perm.ADMIN, "")], (method, path)


def _request(method: str, url: str, headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request(method, url, headers=headers or {})


def test_signed_location_binds_method_path_query_and_time() -> None:
    loc = sign_location(KEY, "GET", "http://t:1/v1/objects/b/o%20x?provider=ais&pid=p", 60)
    path_qs = loc.split("http://t:1", 1)[1]
    assert verify_signed(_request("GET", path_qs), KEY)
    assert not verify_signed(_request("PUT", path_qs), KEY)
    assert not verify_signed(_request("GET", path_qs.replace("/o%20x", "/o%20y")), KEY)
    assert not verify_signed(_request("GET", path_qs.replace("provider=ais", "provider=aws")), KEY)
    assert not verify_signed(_request("GET", path_qs + "&extra=1"), KEY)
    assert not verify_signed(_request("GET", path_qs), "cd" * 32)
    assert not verify_signed(_request("GET", path_qs), KEY, now=time.time() + 120)
    # a requoted URL (e.g. %7E -> ~ by requests) still verifies: the MAC is over decoded values
    loc2 = sign_location(KEY, "GET", "http://t:1/v1/objects/b/a%7Eb?x=%7E", 60)
    assert verify_signed(_request("GET", loc2.split("http://t:1", 1)[1].replace("%7E", "~")), KEY)


def test_signed_header_for_node_calls() -> None:
    hdr = sign_header(KEY, "DELETE", "http://t:1/v1/objects/b/o?provider=ais", 60)
    assert verify_signed(_request("DELETE", "/v1/objects/b/o?provider=ais", {"Ais-Sig": hdr}), KEY)
    assert not verify_signed(_request("GET", "/v1/objects/b/o?provider=ais", {"Ais-Sig": hdr}), KEY)
    assert not verify_signed(_request("DELETE", "/v1/objects/b/o2?provider=ais", {"Ais-Sig": hdr}), KEY)
    assert not verify_signed(_request("DELETE", "/v1/objects/b/o?provider=ais", {"Ais-Sig": "garbage"}), KEY)


def test_auth_md_revocations_expire() -> None:
    md = AuthMD.new()
    assert len(md.key) == 64 and md.version == 1
    now = time.time()
    md = md.with_revoked("t1", now + 10, now).with_revoked("t2", now + 1000, now)
    assert md.is_revoked("t1") and md.is_revoked("t2") and md.version == 3
    later = md.with_revoked("t3", now + 1000, now + 100)        # t1 has expired: dropped
    assert not later.is_revoked("t1") and later.is_revoked("t2")
    assert AuthMD.from_wire(later.to_wire()) == later
