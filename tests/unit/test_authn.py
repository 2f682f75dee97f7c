"""AuthN's pieces in-process: permission parsing, wire validation, the claims a user's roles
add up to, password hashes, atomic state files (the service itself: tests/cluster/test_authn_service.py)."""

from __future__ import annotations

import os
from typing import Any

import jwt
import pytest

from ais.authn import access
from ais.authn.config import AuthnConfig, parse_args, parse_lifetime_s
from ais.authn.model import BucketPerm, BucketRef, Cluster, ClusterPerm, Role, User, UserChange
from ais.authn.registry import check_password, hash_password
from ais.authn.store import Store, write_atomic
from ais.authn.tokens import Signer, user_claims
from ais.errors import BadRequest

pytestmark = pytest.mark.timeout(20)


def test_permissions_parse_from_numbers_aliases_and_names() -> None:
    assert access.parse("771") == access.parse(771) == access.ACCESS_RO == 771
    assert access.parse("ro") == access.parse("GET,HEAD-OBJECT,HEAD-BUCKET,LIST-OBJECTS") == access.ACCESS_RO
    assert access.parse("rw|promote") == access.ACCESS_RW | access.PROMOTE
    assert access.parse("ACCESS_RW") == access.parse("access-rw") == access.ACCESS_RW   # the SDK's names
    assert access.parse("cluster_ro, get") == access.CLUSTER_ACCESS_RO | access.GET
    assert access.parse("su") == (1 << 18) - 1 and access.parse("") == 0
    for bad in ("fly", "ro,fly", True, -1, 1 << 64, str(1 << 64), 1.5, None, ["ro"]):
        with pytest.raises(ValueError):
            access.parse(bad)
    assert access.describe(access.ACCESS_RW) == "rw"
    assert access.describe(access.GET | access.PUT) == "GET,PUT"
    assert access.describe(0) == "none" and access.describe(1 << 40) == hex(1 << 40)


def test_wire_forms_validate_and_round_trip() -> None:
    sdk_role = {"name": "r", "desc": "d", "clusters": None, "admin": False,
                "buckets": [{"bck": {"name": "b", "provider": "s3", "namespace": {"uuid": "U", "name": ""}},
                             "perm": "3"}]}
    role = Role.from_wire(sdk_role)
    assert role.buckets == (BucketPerm(BucketRef("b", "aws", "U"), 3),) and role.clusters == ()
    assert Role.from_wire(role.to_wire()) == role
    assert role.to_wire()["buckets"][0]["perm"] == "3"
    change = UserChange.from_wire({"id": "u", "pass": "p", "roles": [sdk_role, "other"]})
    assert (change.id, change.password, change.roles, change.clusters) == ("u", "p", ("r", "other"), None)
    assert UserChange.from_wire({"roles": []}, "u").roles == ()
    assert Cluster.from_wire({"id": "C", "alias": None, "urls": ["http://h:1/"]}) == Cluster("C", "", ("http://h:1",))
    for bad, words in (
            ({"name": "a b"}, "invalid role name"), ({"name": "r", "clusters": {"id": "x"}}, "list"),
            ({"name": "r", "clusters": [{"perm": "1"}]}, "cluster id"),
            ({"name": "r", "buckets": [{"bck": {"name": "x", "provider": "nope"}, "perm": "1"}]}, "provider"),
            ({"name": "r", "desc": 5}, "desc")):
        with pytest.raises(BadRequest, match=words):
            Role.from_wire(bad)
    for bad_urls in ([], None, ["ftp://x"], ["http://"], [5], "http://h:1", ["http://[::1"]):
        with pytest.raises(BadRequest):
            Cluster.from_wire({"id": "C", "urls": bad_urls})
    with pytest.raises(BadRequest, match="does not match"):
        UserChange.from_wire({"id": "v"}, "u")
    with pytest.raises(BadRequest, match="pass"):
        UserChange.from_wire({"id": "u", "pass": " "})


def test_claims_merge_roles_per_cluster_and_bucket() -> None:
    bck = BucketRef("data", "ais", "C1")
    roles = {
        "a": Role("a", clusters=(ClusterPerm("C1", access.GET),), buckets=(BucketPerm(bck, access.GET),)),
        "b": Role("b", clusters=(ClusterPerm("C1", access.PUT), ClusterPerm("C2", access.ACCESS_RO)),
                  buckets=(BucketPerm(bck, access.PUT),)),
        "boss": Role("boss", admin=True),
    }
    user = User("u", "hash", ("a", "b", "gone"), clusters=(ClusterPerm("C2", access.APPEND),))
    claims = user_claims(user, roles, now=1000, ttl_s=60)
    assert claims == {"sub": "u", "username": "u", "iat": 1000, "exp": 1060, "admin": False,
                      "clusters": [{"id": "C2", "perm": str(access.APPEND | access.ACCESS_RO)},
                                   {"id": "C1", "perm": str(access.GET | access.PUT)}],
                      "buckets": [{"bck": bck.to_wire(), "perm": str(access.GET | access.PUT)}]}
    assert user_claims(User("v", "h", ("a", "boss")), roles, 0, 1)["admin"] is True


def test_signer_hs256_and_rs256(tmp_path: Any) -> None:
    hs = Signer.from_config(AuthnConfig(secret_key="k" * 32))
    token = hs.sign({"sub": "u", "exp": 2**40})
    assert hs.verify(token)["sub"] == "u" and "iss" not in hs.verify(token)
    assert jwt.decode(token, "k" * 32, algorithms=["HS256"])["sub"] == "u"
    key_file = str(tmp_path / "keys" / "k.pem")
    rs = Signer.from_config(AuthnConfig(private_key_file=key_file, host="h", port=1))
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    again = Signer.from_config(AuthnConfig(private_key_file=key_file, host="h", port=1))
    assert again.kid == rs.kid and rs.jwks()["keys"][0]["kid"] == rs.kid
    token = rs.sign({"sub": "u", "exp": 2**40})
    assert again.verify(token)["iss"] == "http://h:1"
    public = jwt.PyJWK(rs.jwks()["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["RS256"])["sub"] == "u"
    service = jwt.decode(rs.service_token(60), public, algorithms=["RS256"])
    assert service["sub"] == "authn" and service["admin"] is True
    from ais.authn.errors import Unauthorized
    for bad in ("x.y.z", hs.sign({"sub": "u", "exp": 2**40}), rs.sign({"sub": "u", "exp": 1}), rs.sign({"exp": 2**40})):
        with pytest.raises(Unauthorized):
            rs.verify(bad)


def test_password_hashes() -> None:
    stored = hash_password("pässword")
    assert stored.startswith("scrypt$") and "pässword" not in stored
    assert check_password("pässword", stored) and not check_password("password", stored)
    assert hash_password("x") != hash_password("x")        # salted
    for damaged in ("", "scrypt$1$2", "md5$a$b$c$d$e", "scrypt$x$8$1$AAAA$AAAA"):
        assert not check_password("x", damaged)


def test_state_files_are_replaced_atomically_and_temp_files_removed(tmp_path: Any) -> None:
    store = Store(str(tmp_path / "conf"))
    assert store.load() == {"users": {}, "roles": {}, "clusters": {}, "revoked": {}}
    store.save_blocking({"roles": {"r": {"name": "r"}}})
    write_atomic(store.path("users"), b'{"u": 1}')
    with open(os.path.join(store.conf_dir, "users.json.123.tmp"), "w") as f:
        f.write("{half")
    docs = store.load()
    assert docs["roles"] == {"r": {"name": "r"}} and docs["users"] == {"u": 1}
    assert sorted(os.listdir(store.conf_dir)) == ["roles.json", "users.json"]
    assert os.stat(store.path("users")).st_mode & 0o777 == 0o600


def test_config_from_flags_and_environment() -> None:
    cfg = parse_args(["--conf-dir", "/x", "--token-ttl", "2h"], env={"AIS_AUTHN_PORT": "6000",
                                                                    "AIS_AUTHN_SU_NAME": "root"})
    assert (cfg.port, cfg.token_ttl_s, cfg.su_name, cfg.su_pass) == (6000, 7200, "root", "admin")
    assert cfg.algorithm == "RS256"
    assert cfg.key_path == "/x/private_key.pem" and cfg.issuer_url == "http://127.0.0.1:6000"
    assert parse_args(["--conf-dir", "/x"], env={"AIS_AUTHN_SECRET_KEY": "s"}).algorithm == "HS256"
    assert parse_args(["--token-ttl", "200d"], env={}).token_ttl_s == 90 * 86400       # capped at the maximum
    assert [parse_lifetime_s(t) for t in ("90", "1h30m", "7d", "0.5s")] == [90, 5400, 7 * 86400, 0.5]
    for argv in (["--port", "0"], ["--token-ttl", "soon"], ["--push-retry", "0"]):
        with pytest.raises(SystemExit):
            parse_args(argv, env={})
