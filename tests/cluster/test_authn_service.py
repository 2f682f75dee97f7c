"""The AuthN service as its users see it: a real `python -m ais.authn` process driven by the
official SDK's `AuthNClient`, by raw HTTP for what the SDK cannot send (bad input), and by the
`ais auth` CLI; revocations pushed to fake clusters (aiohttp servers in this process that
record `DELETE /v1/tokens`), including one that is down at first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator

import jwt
import pytest
import requests
from aiohttp import web
from aistore.sdk.authn import AuthNClient
from aistore.sdk.authn.access_attr import AccessAttr
from aistore.sdk.authn.errors import (AuthNError, ErrClusterAlreadyRegistered, ErrClusterNotFound, ErrRoleAlreadyExists,
                                      ErrRoleNotFound, ErrUserAlreadyExists, ErrUserInvalidCredentials,
                                      ErrUserNotFound)

from tests.authn_service import AuthnService, free_port

pytestmark = pytest.mark.timeout(120)

CLAIMS = {"sub", "username", "iat", "exp", "jti", "admin", "clusters", "buckets"}
DAY = 24 * 3600


# --- a fake cluster: records revocations, serves a cluster map for registration ---------------

class FakeCluster:
    """An aiohttp server on its own thread and loop, answering `DELETE /v1/tokens` (recorded)
    and `GET /v1/daemon?what=smap`; it can be stopped and started again on the same port."""

    def __init__(self, uuid: str, port: int | None = None) -> None:
        self.uuid = uuid
        self.port = port or free_port()
        self.revoked: list[tuple[str, str]] = []      # (token, Authorization header)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tokens(self) -> list[str]:
        return [t for t, _ in self.revoked]

    async def _revoke(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.revoked.append((body["token"], request.headers.get("Authorization", "")))
        return web.Response()

    async def _smap(self, request: web.Request) -> web.Response:
        assert request.query.get("what") == "smap"
        return web.json_response({"uuid": self.uuid, "tmap": {}, "pmap": {}, "version": 3,
                                  "proxy_si": {"daemon_id": "p1", "daemon_type": "proxy"}})

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> "FakeCluster":
        async def start() -> None:
            app = web.Application()
            app.router.add_delete("/v1/tokens", self._revoke)
            app.router.add_get("/v1/daemon", self._smap)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._run(start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._run(self._runner.cleanup())
            self._runner = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def fake_clusters() -> Iterator[Callable[..., FakeCluster]]:
    made: list[FakeCluster] = []

    def make(uuid: str, *, up: bool = True) -> FakeCluster:
        c = FakeCluster(uuid)
        made.append(c)
        return c.start() if up else c
    yield make
    for c in made:
        c.close()


def wait_for(what: str, cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def decoded(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- the SDK: login, users, roles, clusters (RS256) --------------------------------------------

def test_sdk_login_users_roles_clusters_rs256(make_authn: Callable[..., AuthnService],
                                              fake_clusters: Callable[..., FakeCluster]) -> None:
    svc = make_authn()
    client = AuthNClient(svc.url)
    admin_token = client.login("admin", "admin")

    # RS256: verified with the key published through OIDC discovery
    discovery = requests.get(f"{svc.url}/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == svc.url and discovery["jwks_uri"] == f"{svc.url}/.well-known/jwks.json"
    jwks = requests.get(discovery["jwks_uri"], timeout=5).json()
    key = jwt.PyJWK(jwks["keys"][0])
    assert jwt.get_unverified_header(admin_token)["kid"] == jwks["keys"][0]["kid"]
    claims = jwt.decode(admin_token, key.key, algorithms=["RS256"], issuer=svc.url)
    assert set(claims) == CLAIMS | {"iss"}
    assert claims["sub"] == claims["username"] == "admin" and claims["admin"] is True
    assert claims["exp"] - claims["iat"] == DAY and claims["clusters"] == [] and claims["buckets"] == []
    with open(svc.key_path, "rb") as f:
        assert b"PRIVATE KEY" in f.read() and stat.S_IMODE(os.stat(svc.key_path).st_mode) == 0o600

    # expires_in (seconds in the SDK, nanoseconds on the wire), capped at the 90-day maximum
    short = decoded(AuthNClient(svc.url).login("admin", "admin", expires_in=120))
    assert short["exp"] - short["iat"] == 120
    long = decoded(AuthNClient(svc.url).login("admin", "admin", expires_in=400 * DAY))
    assert long["exp"] - long["iat"] == 90 * DAY
    for user, password in (("admin", "wrong"), ("nobody", "admin")):
        with pytest.raises(ErrUserInvalidCredentials) as exc:
            AuthNClient(svc.url).login(user, password)
        assert exc.value.status_code == 401

    # clusters: the SDK reads the uuid from the cluster itself, then registers it
    prod = fake_clusters("PRODUUID1")
    clusters = client.cluster_manager()
    info = clusters.register("prod", [prod.url])
    assert (info.id, info.alias, info.urls) == ("PRODUUID1", "prod", [prod.url])
    assert clusters.get(cluster_alias="prod").id == clusters.get(cluster_id="PRODUUID1").id == "PRODUUID1"
    assert list(clusters.list().clusters) == ["PRODUUID1"]
    with pytest.raises(ErrClusterAlreadyRegistered):
        clusters.register("prod", [prod.url])
    with pytest.raises(ErrClusterNotFound):
        clusters.get(cluster_id="nope")
    roles = client.role_manager()
    names = {r.name for r in roles.list()}
    assert {"Admin", "ClusterOwner-prod", "BucketOwner-prod", "Guest-prod"} <= names
    assert roles.get("Guest-prod").clusters[0].perm == str(int(AccessAttr.ACCESS_RO))

    # roles: cluster-wide and per bucket, kept as given
    roles.create("listers", "list buckets", "prod", [AccessAttr.CLUSTER_ACCESS_RO])
    writers = roles.create("writers", "write one bucket", "prod", [AccessAttr.ACCESS_RW], bucket_name="data")
    assert writers.buckets[0].bck.name == "data" and writers.buckets[0].bck.namespace.uuid == "PRODUUID1"
    assert writers.buckets[0].perm == str(int(AccessAttr.ACCESS_RW))
    with pytest.raises(ErrRoleAlreadyExists):
        roles.create("writers", "again", "prod", [AccessAttr.GET])
    roles.update("listers", desc="list and show", cluster_alias="prod",
                 perms=[AccessAttr.CLUSTER_ACCESS_RO, AccessAttr.GET])
    listers = roles.get("listers")
    assert listers.desc == "list and show"
    assert listers.clusters[0].perm == str(int(AccessAttr.CLUSTER_ACCESS_RO | AccessAttr.GET))
    with pytest.raises(ErrRoleNotFound):
        roles.get("nope")

    # users: roles merged into the token (bits OR-ed per cluster), never a password in a reply
    users = client.user_manager()
    alice = users.create("alice", ["listers", "writers", "Guest-prod"], "alice-pass")
    assert [r.name for r in alice.roles] == ["listers", "writers", "Guest-prod"] and alice.password is None
    with pytest.raises(ErrUserAlreadyExists):
        users.create("alice", ["listers"], "x")
    with pytest.raises(ErrRoleNotFound):
        users.create("bob", ["no-such-role"], "x")
    assert set(users.list()) == {"admin", "alice"}
    assert "pass" not in requests.get(f"{svc.url}/v1/users", headers=svc.auth(admin_token), timeout=5).text
    token = decoded(AuthNClient(svc.url).login("alice", "alice-pass"))
    assert set(token) == CLAIMS | {"iss"} and token["admin"] is False
    merged = AccessAttr.CLUSTER_ACCESS_RO | AccessAttr.GET | AccessAttr.ACCESS_RO
    assert token["clusters"] == [{"id": "PRODUUID1", "perm": str(int(merged))}]
    data = {"name": "data", "provider": "ais", "namespace": {"uuid": "PRODUUID1", "name": ""}}
    assert token["buckets"] == [{"bck": data, "perm": str(int(AccessAttr.ACCESS_RW))}]

    # the SDK sends `roles: []` with a new password: the roles stay
    users.update("alice", password="new-pass")
    assert [r.name for r in users.get("alice").roles] == ["listers", "writers", "Guest-prod"]
    with pytest.raises(ErrUserInvalidCredentials):
        AuthNClient(svc.url).login("alice", "alice-pass")
    users.update("alice", roles=["Guest-prod"])
    assert decoded(AuthNClient(svc.url).login("alice", "new-pass"))["buckets"] == []

    # deleting a role takes it from its users; unregistering a cluster drops its default roles
    roles.delete("writers")
    users.update("alice", roles=["listers", "Guest-prod"])
    roles.delete("listers")
    assert [r.name for r in users.get("alice").roles] == ["Guest-prod"]
    clusters.update("PRODUUID1", cluster_alias="production")
    assert clusters.get(cluster_alias="production").urls == [prod.url]
    clusters.delete(cluster_alias="production")
    assert clusters.list().clusters == {}
    assert {r.name for r in roles.list()} == {"Admin"}
    assert users.get("alice").roles.root == []
    users.delete("alice")
    with pytest.raises(ErrUserNotFound):
        users.get("alice")
    users.delete("alice", missing_ok=True)

    # logout revokes the token the client holds
    client.logout()
    with pytest.raises(AuthNError) as exc:
        AuthNClient(svc.url, token=admin_token).user_manager().list()
    assert exc.value.status_code == 401


# --- HS256, bad input, permissions -------------------------------------------------------------

def test_hs256_bad_input_and_permissions(make_authn: Callable[..., AuthnService]) -> None:
    svc = make_authn(hs_secret="test-secret-0123456789abcdef0123456789")
    admin = svc.admin_token
    claims = jwt.decode(admin, "test-secret-0123456789abcdef0123456789", algorithms=["HS256"])
    assert set(claims) == CLAIMS and claims["admin"] is True
    assert requests.get(f"{svc.url}/.well-known/jwks.json", timeout=5).status_code == 404
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(admin, "another-secret-0123456789abcdef01234567", algorithms=["HS256"])

    h = svc.auth(admin)
    u = svc.url
    requests.post(f"{u}/v1/roles", json={"name": "readers", "desc": "r",
                                         "clusters": [{"id": "C1", "perm": "ro"}]}, headers=h, timeout=5)
    requests.post(f"{u}/v1/users", json={"id": "carol", "pass": "carol-pass", "roles": [{"name": "readers"}]},
                  headers=h, timeout=5).raise_for_status()
    carol = svc.login("carol", "carol-pass")
    assert decoded(carol)["clusters"] == [{"id": "C1", "perm": str(int(AccessAttr.ACCESS_RO))}]

    def status(method: str, path: str, *, token: str | None = admin, **kw: Any) -> tuple[int, str]:
        headers = svc.auth(token) if token else {}
        r = requests.request(method, f"{u}{path}", headers=headers, timeout=5, **kw)
        return r.status_code, r.text

    # bad input: a 4xx that says what was wrong, never a 500
    bad = [
        (("POST", "/v1/users"), {"data": b"{not json"}, 400, "malformed"),
        (("POST", "/v1/users"), {"json": ["a", "list"]}, 400, "JSON object"),
        (("POST", "/v1/users"), {}, 400, "missing JSON body"),
        (("POST", "/v1/users"), {"json": {"id": "dave"}}, 400, "password"),
        (("POST", "/v1/users"), {"json": {"id": "bad/name", "pass": "x"}}, 400, "invalid user name"),
        (("POST", "/v1/users"), {"json": {"id": "dave", "pass": "x", "roles": ["ghost"]}}, 404, "role 'ghost'"),
        (("POST", "/v1/users"), {"json": {"id": "dave", "pass": "x", "roles": "readers"}}, 400, "list"),
        (("POST", "/v1/users"), {"json": {"id": "carol", "pass": "x"}}, 409, "user 'carol' already exists"),
        (("POST", "/v1/roles"), {"json": {"name": "r2", "clusters": [{"id": "C1", "perm": "fly"}]}}, 400,
         "unknown permission"),
        (("POST", "/v1/roles"), {"json": {"name": "r2", "clusters": [{"id": "C1", "perm": str(1 << 64)}]}}, 400,
         "uint64"),
        (("POST", "/v1/roles"), {"json": {"name": "r2", "buckets": [{"bck": {"name": ""}, "perm": "1"}]}}, 400,
         "bucket"),
        (("POST", "/v1/roles"), {"json": {"name": "r2", "admin": "yes"}}, 400, "admin"),
        (("POST", "/v1/clusters"), {"json": {"id": "C1", "urls": []}}, 400, "urls"),
        (("POST", "/v1/clusters"), {"json": {"id": "C1", "urls": ["ftp://x"]}}, 400, "invalid cluster URL"),
        (("POST", "/v1/clusters"), {"json": {"alias": "x", "urls": ["http://h:1"]}}, 400, "cluster name"),
        (("PUT", "/v1/users/carol"), {"json": {"id": "carol"}}, 400, "nothing to update"),
        (("PUT", "/v1/users/carol"), {"json": {"id": "someone-else", "pass": "x"}}, 400, "does not match"),
        (("PUT", "/v1/roles/ghost"), {"json": {"desc": "x"}}, 404, "role 'ghost'"),
        (("DELETE", "/v1/users/admin"), {}, 400, "superuser"),
        (("DELETE", "/v1/roles/Admin"), {}, 400, "cannot be deleted"),
        (("DELETE", "/v1/clusters/ghost"), {}, 404, "cluster 'ghost'"),
        (("POST", "/v1/users/carol"), {"json": {"password": "carol-pass", "expires_in": -5}}, 400, "expires_in"),
        (("POST", "/v1/users/carol"), {"json": {"password": 7}}, 400, "password"),
        (("DELETE", "/v1/tokens"), {"json": {"token": "not-a-jwt"}}, 401, "invalid token"),
        (("DELETE", "/v1/tokens"), {"json": {}}, 400, "token"),
        (("POST", "/v1/users"), {"data": b"[" * 100_000}, 400, "malformed"),
        (("POST", "/v1/users"), {"data": b" " * (2 << 20)}, 413, "exceeds"),
        (("GET", "/v1/nothing-here"), {}, 404, "no such route"),
    ]
    for (method, path), kw, want, words in bad:
        got, text = status(method, path, **kw)
        assert (got, words in text) == (want, True), f"{method} {path} {kw!s:.80}: {got} {text}"

    # authentication and authorization
    assert status("GET", "/v1/users", token=None)[0] == 401
    assert status("GET", "/v1/users", token="garbage")[0] == 401
    forged = jwt.encode({"sub": "admin", "exp": int(time.time()) + 60, "admin": True}, "guess-" * 8, algorithm="HS256")
    assert status("GET", "/v1/users", token=forged)[0] == 401
    expired = svc.login("carol", "carol-pass", expires_in_s=1)
    for method, path, kw in (("GET", "/v1/users", {}), ("GET", "/v1/roles", {}), ("GET", "/v1/clusters", {}),
                             ("POST", "/v1/roles", {"json": {"name": "mine", "admin": True}}),
                             ("POST", "/v1/clusters", {"json": {"id": "X", "urls": ["http://h:1"]}}),
                             ("DELETE", "/v1/users/admin", {}), ("GET", "/v1/users/admin", {}),
                             ("PUT", "/v1/users/carol", {"json": {"roles": [{"name": "Admin"}]}}),
                             ("DELETE", "/v1/tokens", {"json": {"token": admin}})):
        got, text = status(method, path, token=carol, **kw)
        assert got == 403, f"carol {method} {path}: {got} {text}"
    assert status("GET", "/v1/users/carol", token=carol)[0] == 200           # itself
    assert status("PUT", "/v1/users/carol", token=carol, json={"pass": "carol-2"})[0] == 200   # own password
    carol2 = svc.login("carol", "carol-2")
    assert status("DELETE", "/v1/tokens", token=carol2, json={"token": carol})[0] == 200  # own token
    assert status("GET", "/v1/users/carol", token=carol)[1].count("revoked") == 1
    time.sleep(1.1)
    got, text = status("GET", "/v1/users/carol", token=expired)
    assert got == 401 and "expired" in text
    # a token of a user who lost the Admin role manages nothing
    requests.post(f"{u}/v1/users", json={"id": "eve", "pass": "eve-pass", "roles": [{"name": "Admin"}]},
                  headers=h, timeout=5).raise_for_status()
    eve = svc.login("eve", "eve-pass")
    assert status("GET", "/v1/users", token=eve)[0] == 200
    assert status("PUT", "/v1/users/eve", json={"roles": [{"name": "readers"}]})[0] == 200
    assert status("GET", "/v1/users", token=eve)[0] == 403
    assert "Traceback" not in svc.log() and " E " not in svc.log()


# --- persistence across kill -9 -----------------------------------------------------------------

def test_state_survives_kill9_and_restart(make_authn: Callable[..., AuthnService]) -> None:
    svc = make_authn(hs_secret="persist-secret-0123456789abcdef01234567")
    admin = svc.admin_token
    client = AuthNClient(svc.url, token=admin)
    requests.post(f"{svc.url}/v1/clusters", json={"id": "C9", "alias": "nine", "urls": ["http://127.0.0.1:9"]},
                  headers=svc.auth(admin), timeout=5).raise_for_status()
    client.role_manager().create("nine-ro", "read", "nine", [AccessAttr.ACCESS_RO])
    client.user_manager().create("frank", ["nine-ro"], "frank-pass")
    frank = svc.login("frank", "frank-pass")
    client.token_manager().revoke(frank)
    with open(os.path.join(svc.conf_dir, "users.json"), encoding="utf-8") as f:
        users_doc = f.read()
    assert "frank-pass" not in users_doc and "scrypt$" in users_doc

    svc.kill()
    svc.start()
    client = AuthNClient(svc.url, token=admin)       # tokens outlive restarts (same secret)
    assert [r.name for r in client.user_manager().get("frank").roles] == ["nine-ro"]
    assert client.cluster_manager().get(cluster_alias="nine").id == "C9"
    assert client.role_manager().get("nine-ro").clusters[0].id == "C9"
    r = requests.get(f"{svc.url}/v1/users/frank", headers=svc.auth(frank), timeout=5)
    assert r.status_code == 401 and "revoked" in r.text
    assert decoded(svc.login("frank", "frank-pass"))["clusters"] == [{"id": "C9",
                                                                      "perm": str(int(AccessAttr.ACCESS_RO))}]
    assert not [n for n in os.listdir(svc.conf_dir) if n.endswith(".tmp")]


# --- revocation pushed to clusters --------------------------------------------------------------

def test_revocations_reach_every_cluster(make_authn: Callable[..., AuthnService],
                                         fake_clusters: Callable[..., FakeCluster]) -> None:
    svc = make_authn()           # RS256: the clusters verify the push token with the public key
    admin = svc.admin_token
    public_key = jwt.PyJWK(requests.get(f"{svc.url}/.well-known/jwks.json", timeout=5).json()["keys"][0]).key
    up, late, joiner = fake_clusters("UP1"), fake_clusters("LATE1", up=False), fake_clusters("JOIN1")
    dead = f"http://127.0.0.1:{free_port()}"

    def register(cid: str, urls: list[str]) -> None:
        requests.post(f"{svc.url}/v1/clusters", json={"id": cid, "alias": cid.lower(), "urls": urls},
                      headers=svc.auth(admin), timeout=5).raise_for_status()

    register("UP1", [dead, up.url])             # the first URL answers nothing: the second one gets it
    register("LATE1", [late.url])               # down for now
    requests.post(f"{svc.url}/v1/users", json={"id": "gina", "pass": "gina-pass"}, headers=svc.auth(admin),
                  timeout=5).raise_for_status()
    victim = svc.login("gina", "gina-pass")
    AuthNClient(svc.url, token=admin).token_manager().revoke(victim)

    # the revoke call returns after one delivery round: the reachable cluster already has it
    assert up.tokens() == [victim]
    push_auth = up.revoked[0][1]
    assert push_auth.startswith("Bearer ")
    push = jwt.decode(push_auth.removeprefix("Bearer "), public_key, algorithms=["RS256"])
    assert push["sub"] == "authn" and push["admin"] is True and push["exp"] - push["iat"] <= 600
    assert jwt.decode(victim, svc.public_key_pem(), algorithms=["RS256"])["sub"] == "gina"   # what a cluster holds

    # the cluster that was down gets it once it is up (retried every 0.3 s here)
    time.sleep(0.5)
    assert late.tokens() == []
    late.start()
    wait_for("the revocation to reach the late cluster", lambda: late.tokens() == [victim])

    # a cluster registered later gets every unexpired revoked token
    register("JOIN1", [joiner.url])
    wait_for("the revocation to reach the new cluster", lambda: joiner.tokens() == [victim])

    # ... so does a cluster whose URLs change; and a revoke by the token's own user reaches all
    moved = fake_clusters("UP1-MOVED")
    r = requests.put(f"{svc.url}/v1/clusters/up1", json={"urls": [moved.url]}, headers=svc.auth(admin), timeout=5)
    assert r.status_code == 200, r.text
    wait_for("the revocation to reach the moved cluster", lambda: moved.tokens() == [victim])
    own = svc.login("gina", "gina-pass")
    AuthNClient(svc.url, token=own).logout()
    for c in (moved, late, joiner):
        assert c.tokens()[-1] == own, c.uuid
    assert up.tokens() == [victim]                # its old URL is no longer used
    time.sleep(0.7)
    assert late.tokens() == [victim, own]         # delivered is delivered: no repeats


# --- the CLI ------------------------------------------------------------------------------------

AIS = [sys.executable, "-m", "ais.cli.main"]


def test_cli_auth(make_authn: Callable[..., AuthnService], fake_clusters: Callable[..., FakeCluster],
                  tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = make_authn()
    config_home = str(tmp_path / "config")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    env.update(AIS_AUTHN_URL=svc.url, XDG_CONFIG_HOME=config_home)
    token_file = os.path.join(config_home, "ais", "cli", "auth.token")

    def ais(*args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*AIS, *args], capture_output=True, text=True, timeout=60, env=env,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == rc, f"ais {' '.join(args)}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def fails(*args: str) -> str:
        err = ais(*args, rc=1).stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ais: "), err
        return err[0]

    def get(path: str) -> Any:
        r = requests.get(f"{svc.url}{path}", headers=svc.auth(svc.admin_token), timeout=5)
        return r.json() if r.status_code == 200 else r.status_code

    assert "log in first" in fails("auth", "show", "user")
    assert "invalid credentials" in fails("auth", "login", "admin", "--password", "nope")
    assert "--password" in fails("auth", "login", "admin")           # no terminal to prompt on
    assert "logged in as admin" in ais("auth", "login", "admin", "--password", "admin", "--expires", "2h").stdout
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    with open(token_file, encoding="utf-8") as f:
        saved = json.load(f)["token"]
    assert decoded(saved)["exp"] - decoded(saved)["iat"] == 7200

    # clusters (the uuid read from the cluster, or given), roles, users
    prod = fake_clusters("CLIUUID1")
    assert "registered cluster CLIUUID1" in ais("auth", "add", "cluster", "prod", prod.url).stdout
    ais("auth", "add", "cluster", "other", "http://127.0.0.1:9", "--id", "OTHER1")
    shown = ais("auth", "show", "cluster").stdout.splitlines()
    assert shown[0].split() == ["CLUSTER", "ID", "ALIAS", "URLS"]
    assert shown[1].split() == ["CLIUUID1", "prod", prod.url] and shown[2].split()[:2] == ["OTHER1", "other"]
    ais("auth", "add", "role", "readers", "prod", "ro", "--bucket", "ais://data", "--desc", "read data")
    ais("auth", "add", "role", "ops", "prod", "cluster-rw,GET")
    assert "unknown permission 'fly'" in fails("auth", "add", "role", "bad", "prod", "fly")
    role = json.loads(ais("auth", "show", "role", "readers", "--json").stdout)
    assert role["buckets"] == [{"bck": {"name": "data", "provider": "ais",
                                        "namespace": {"uuid": "CLIUUID1", "name": ""}},
                                "perm": str(int(AccessAttr.ACCESS_RO))}]
    ais("auth", "add", "user", "hank", "readers", "ops", "--password", "hank-pass")
    assert ["hank", "readers,", "ops"] in [line.split() for line in ais("auth", "show", "user").stdout.splitlines()]
    assert "user 'hank' already exists" in fails("auth", "add", "user", "hank", "--password", "x")

    # updates
    ais("auth", "update", "user", "hank", "--password", "hank-2")
    ais("auth", "update", "role", "readers", "--desc", "read the data bucket")
    assert get("/v1/roles/readers")["desc"] == "read the data bucket"
    ais("auth", "update", "cluster", "prod", "--alias", "production")
    assert get("/v1/clusters/production")["clusters"]["CLIUUID1"]["alias"] == "production"
    hank = svc.login("hank", "hank-2")
    assert decoded(hank)["clusters"] == [{"id": "CLIUUID1",
                                          "perm": str(int(AccessAttr.CLUSTER_ACCESS_RW | AccessAttr.GET))}]

    # revoke (pushed to the cluster), removals
    assert "token revoked" in ais("auth", "revoke", hank).stdout
    assert prod.tokens() == [hank]
    ais("auth", "rm", "user", "hank")
    ais("auth", "rm", "role", "ops")
    ais("auth", "rm", "cluster", "OTHER1")
    assert get("/v1/users/hank") == 404 and get("/v1/roles/ops") == 404 and list(get("/v1/clusters")["clusters"]) == [
        "CLIUUID1"]

    # other `ais` commands send the saved token, unless AIS_AUTHN_TOKEN is set
    from ais.cli import common
    monkeypatch.setenv("XDG_CONFIG_HOME", config_home)
    monkeypatch.delenv("AIS_CLI_CONFIG", raising=False)
    for env_token, want in (("", saved), ("from-env", "from-env")):
        monkeypatch.setenv("AIS_AUTHN_TOKEN", env_token)
        try:
            c = common.client(argparse.Namespace(endpoint="http://127.0.0.1:9"))
            assert c.aio._headers.get("Authorization") == f"Bearer {want}"
        finally:
            common.close_clients()

    assert "logged out" in ais("auth", "logout").stdout
    assert not os.path.exists(token_file)
    r = requests.get(f"{svc.url}/v1/users", headers=svc.auth(saved), timeout=5)
    assert r.status_code == 401 and "revoked" in r.text
    assert "not logged in" in fails("auth", "logout")


# --- end to end: a real cluster with auth on, trusting this AuthN ---------------------------------

def test_tokens_and_revocation_on_a_real_cluster(make_authn: Callable[..., AuthnService],
                                                 make_cluster: Callable[..., Any]) -> None:
    from aistore.sdk import Client
    from aistore.sdk.errors import AISError

    secret = "e2e-secret-0123456789abcdef0123456789"
    svc = make_authn(hs_secret=secret)
    cluster = make_cluster(proxies=1, targets=1, mountpaths=1, fsync=False, env={
        "AIS_AUTH_ENABLED": "true", "AIS_AUTH_SIGNATURE_METHOD": "HS256", "AIS_AUTH_SIGNATURE_KEY": secret,
        "AIS_CLUSTER_SECRET": "join-secret-for-tests"})
    authn = AuthNClient(svc.url)
    authn.login("admin", "admin")
    info = authn.cluster_manager().register("e2e", [cluster.endpoint])     # the SDK reads the uuid
    authn.role_manager().create("e2e-reader", "list and read", "e2e",
                                [AccessAttr.CLUSTER_ACCESS_RO, AccessAttr.ACCESS_RO])
    authn.user_manager().create("reader", ["e2e-reader"], "reader-pass")

    admin = Client(cluster.endpoint, token=authn.client.token)
    bucket = f"e2e-{os.urandom(3).hex()}"
    admin.bucket(bucket).create()
    admin.bucket(bucket).object("o").get_writer().put_content(b"hello")

    reader_token = AuthNClient(svc.url).login("reader", "reader-pass")
    assert decoded(reader_token)["clusters"][0]["id"] == info.id
    reader = Client(cluster.endpoint, token=reader_token)
    assert reader.bucket(bucket).object("o").get_reader().read_all() == b"hello"
    with pytest.raises(AISError) as exc:
        reader.bucket(bucket).object("p").get_writer().put_content(b"no")
    assert exc.value.status_code == 403

    # revoked at AuthN: the cluster refuses the token as soon as the revoke call returns
    AuthNClient(svc.url, token=reader_token).logout()
    with pytest.raises(AISError) as exc:
        reader.bucket(bucket).object("o").get_reader().read_all()
    assert exc.value.status_code == 401 and "revoked" in exc.value.message
    admin.bucket(bucket).delete()
