"""Authentication and authorization on a real cluster (auth on, HS256 tokens): every permission
allowed and denied through the SDK, direct requests to targets, signed redirects, revocation,
expiry, and S3 keys bound to users (boto3)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator

import boto3
import jwt
import pytest
import requests
from aistore.sdk import Client
from aistore.sdk.errors import AISError
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from ais.auth import CLUSTER_RO, CLUSTER_RW, RO, RW, Perm
from tests.cluster.conftest import Cluster

SECRET = "auth-test-secret-0123456789abcdef"


def _token(sub: str, *, admin: bool = False, cluster: int = 0, buckets: dict[str, int] | None = None,
           uuid_: str = "", ttl: float = 3600, secret: str = SECRET) -> str:
    claims: dict[str, Any] = {"sub": sub, "username": sub, "iat": int(time.time()), "exp": int(time.time() + ttl),
                              "admin": admin}
    if cluster:
        claims["clusters"] = [{"id": uuid_, "perm": str(cluster)}]
    if buckets:
        claims["buckets"] = [{"bck": {"name": b, "provider": "ais", "namespace": {"uuid": "", "name": ""}},
                              "perm": str(p)} for b, p in buckets.items()]
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def auth_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(str(tmp_path_factory.mktemp("auth")), env={
        "AIS_AUTH_ENABLED": "true", "AIS_AUTH_SIGNATURE_METHOD": "HS256", "AIS_AUTH_SIGNATURE_KEY": SECRET,
        "AIS_CLUSTER_SECRET": "join-secret-for-tests"})
    try:
        yield c
    finally:
        c.down()


@pytest.fixture(scope="module")
def cluster_uuid(auth_cluster: Cluster) -> str:
    return str(requests.get(f"{auth_cluster.endpoint}/v1/daemon?what=smap", timeout=10).json()["uuid"])


@pytest.fixture(scope="module")
def admin(auth_cluster: Cluster) -> Client:
    return Client(auth_cluster.endpoint, token=_token("root", admin=True))


@pytest.fixture(scope="module")
def data(admin: Client) -> str:
    name = f"data-{uuid.uuid4().hex[:6]}"
    b = admin.bucket(name).create()
    for i in range(3):
        b.object(f"o{i}").get_writer().put_content(f"payload {i}".encode())
    return name


def test_no_token_is_401_but_health_and_smap_are_open(auth_cluster: Cluster) -> None:
    ep = auth_cluster.endpoint
    assert requests.get(f"{ep}/v1/health", timeout=10).status_code == 200
    assert requests.get(f"{ep}/v1/daemon?what=smap", timeout=10).status_code == 200
    r = requests.get(f"{ep}/v1/buckets", json={"action": "list"}, timeout=10)
    assert r.status_code == 401 and "token" in r.text, r.text
    r = requests.get(f"{ep}/v1/buckets", headers={"Authorization": "Bearer not.a.jwt"}, timeout=10)
    assert r.status_code == 401, r.text
    bad = _token("root", admin=True, secret="some-other-secret-entirely-000000")
    r = requests.get(f"{ep}/v1/buckets", headers={"Authorization": f"Bearer {bad}"}, timeout=10)
    assert r.status_code == 401 and "invalid token" in r.text, r.text
    with pytest.raises(AISError) as exc:
        Client(ep).cluster().list_buckets()
    assert exc.value.status_code == 401


def test_admin_round_trip_through_signed_redirects(admin: Client, data: str) -> None:
    b = admin.bucket(data)
    assert b.object("o1").get_reader().read_all() == b"payload 1"
    assert sorted(e.name for e in b.list_all_objects()) == ["o0", "o1", "o2"]
    b.object("new").get_writer().put_content(b"x" * 1000)
    assert b.object("new").head().size == 1000
    b.object("new").delete()


def test_bucket_read_only_user(auth_cluster: Cluster, admin: Client, data: str, cluster_uuid: str) -> None:
    ro = Client(auth_cluster.endpoint, token=_token("reader", buckets={data: int(RO)}))
    b = ro.bucket(data)
    assert b.object("o0").get_reader().read_all() == b"payload 0"
    assert len(b.list_all_objects()) >= 3
    assert b.object("o0").head().size == len(b"payload 0")
    for attempt in (lambda: b.object("w").get_writer().put_content(b"no"),
                    lambda: b.object("o0").delete(),
                    lambda: ro.bucket(f"new-{uuid.uuid4().hex[:6]}").create(),
                    lambda: b.delete(),
                    lambda: ro.cluster().list_buckets()):
        with pytest.raises(AISError) as exc:
            attempt()
        assert exc.value.status_code == 403, exc.value
        assert "reader" in str(exc.value)
    # another bucket: nothing
    other = admin.bucket(f"other-{uuid.uuid4().hex[:6]}").create()
    other.object("x").get_writer().put_content(b"x")
    with pytest.raises(AISError) as exc:
        ro.bucket(other.name).object("x").get_reader().read_all()
    assert exc.value.status_code == 403


def test_cluster_permissions(auth_cluster: Cluster, admin: Client, data: str, cluster_uuid: str) -> None:
    rw = Client(auth_cluster.endpoint, token=_token("owner", cluster=int(CLUSTER_RW | RW), uuid_=cluster_uuid))
    name = f"own-{uuid.uuid4().hex[:6]}"
    b = rw.bucket(name).create()
    b.object("a").get_writer().put_content(b"abc")
    assert b.object("a").get_reader().read_all() == b"abc"
    assert name in [x.name for x in rw.cluster().list_buckets()]
    # the same permissions for another cluster's uuid grant nothing here
    stranger = Client(auth_cluster.endpoint, token=_token("stranger", cluster=int(CLUSTER_RW | RW), uuid_="elsewhere"))
    with pytest.raises(AISError) as exc:
        stranger.bucket(name).object("a").get_reader().read_all()
    assert exc.value.status_code == 403
    # cluster-ro: list buckets, no create; config changes are admin-only
    viewer = Client(auth_cluster.endpoint, token=_token("viewer", cluster=int(CLUSTER_RO), uuid_=cluster_uuid))
    assert name in [x.name for x in viewer.cluster().list_buckets()]
    with pytest.raises(AISError) as exc:
        viewer.bucket(f"v-{uuid.uuid4().hex[:6]}").create()
    assert exc.value.status_code == 403
    tok = _token("owner", cluster=int(CLUSTER_RW | RW), uuid_=cluster_uuid)
    r = requests.put(f"{auth_cluster.endpoint}/v1/cluster", headers={"Authorization": f"Bearer {tok}"},
                     json={"action": "set-config", "value": {"load.max_inflight": 5000}}, timeout=10)
    assert r.status_code == 403, r.text
    b.delete()


def test_secrets_never_shown(auth_cluster: Cluster) -> None:
    tok = _token("root", admin=True)
    for node in (auth_cluster.endpoint, auth_cluster.targets[0].public_url):
        r = requests.get(f"{node}/v1/daemon?what=config", headers={"Authorization": f"Bearer {tok}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert SECRET not in r.text and "join-secret-for-tests" not in r.text


def test_direct_to_target(auth_cluster: Cluster, data: str) -> None:
    t = auth_cluster.targets[0].public_url
    url = f"{t}/v1/objects/{data}/o0"
    r = requests.get(url, timeout=10, allow_redirects=False)
    assert r.status_code == 401, r.text
    ok = _token("reader", buckets={data: int(RO)})
    r = requests.get(url, headers={"Authorization": f"Bearer {ok}"}, timeout=10)   # redirects to the owner, signed
    assert r.status_code == 200 and r.content == b"payload 0", r.text
    r = requests.put(url, data=b"no", headers={"Authorization": f"Bearer {ok}"}, timeout=10)
    assert r.status_code == 403, r.text
    # a forged or expired signature is not a pass
    for q in ("ais_sig_exp=9999999999&ais_sig=" + "0" * 64, f"ais_sig_exp={int(time.time()) - 5}&ais_sig=" + "0" * 64):
        r = requests.get(f"{url}?{q}", timeout=10, allow_redirects=False)
        assert r.status_code == 401, r.text
    r = requests.get(f"{url}", headers={"Ais-Sig": "9999999999." + "0" * 64}, timeout=10, allow_redirects=False)
    assert r.status_code == 401, r.text
    # S3 only through a proxy
    r = requests.get(f"{t}/s3/{data}/o0", timeout=10)
    assert r.status_code == 403, r.text


def test_signed_redirect_is_bound_to_method_path_and_body(auth_cluster: Cluster, data: str) -> None:
    tok = _token("reader", buckets={data: int(RO)})
    r = requests.get(f"{auth_cluster.endpoint}/v1/objects/{data}/o1", headers={"Authorization": f"Bearer {tok}"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 301
    loc = r.headers["Location"]
    assert requests.get(loc, timeout=10).content == b"payload 1"          # no token needed on the way
    assert requests.put(loc, data=b"evil", timeout=10).status_code == 401   # another method: not signed
    assert requests.get(loc.replace("/o1?", "/o2?"), timeout=10).status_code == 401   # another object
    # batch-get: the body the proxy authorized is the only one the target takes
    body = {"in": [{"objname": "o0"}], "mime": ".tar"}
    r = requests.get(f"{auth_cluster.endpoint}/v1/ml/moss/{data}", json=body, allow_redirects=False,
                     headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 307, r.text
    assert requests.get(r.headers["Location"], json=body, timeout=10).status_code == 200
    swapped = {"in": [{"objname": "x", "bucket": "other"}], "mime": ".tar"}
    r2 = requests.get(r.headers["Location"], json=swapped, timeout=10)
    assert r2.status_code == 403 and "differs" in r2.text, r2.text


def test_batch_get_checks_every_bucket_it_reads(auth_cluster: Cluster, admin: Client, data: str) -> None:
    other = admin.bucket(f"secret-{uuid.uuid4().hex[:6]}").create()
    other.object("x").get_writer().put_content(b"secret")
    tok = {"Authorization": f"Bearer {_token('reader', buckets={data: int(RO)})}"}
    url = f"{auth_cluster.endpoint}/v1/ml/moss/{data}"
    for entry in ({"objname": "x", "bucket": other.name}, {"objname": "x", "Bucket": other.name},
                  {"uname": f"ais/@#/{other.name}/x"}):
        r = requests.get(url, json={"in": [{"objname": "o0"}, entry]}, headers=tok, timeout=10)
        assert r.status_code == 403 and other.name in r.text, (entry, r.text)
    # a batch request bigger than a control body (1 MiB) is read whole, under the batch limit
    root = {"Authorization": f"Bearer {_token('root', admin=True)}"}
    entries = [{"objname": "o0", "opaque": f"{i:0100d}"} for i in range(12_000)]
    r = requests.get(url, json={"in": entries}, headers=root, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.content.count(b"payload 0") == 12_000


def test_expired_and_revoked_tokens(auth_cluster: Cluster, data: str) -> None:
    expired = _token("reader", buckets={data: int(RO)}, ttl=-10)
    r = requests.get(f"{auth_cluster.endpoint}/v1/objects/{data}/o0", headers={"Authorization": f"Bearer {expired}"},
                     timeout=10)
    assert r.status_code == 401 and "expired" in r.text, r.text
    tok = _token("soon-revoked", buckets={data: int(RO)})
    c = Client(auth_cluster.endpoint, token=tok)
    assert c.bucket(data).object("o0").get_reader().read_all() == b"payload 0"
    # only an admin revokes
    r = requests.delete(f"{auth_cluster.endpoint}/v1/tokens", json={"token": tok},
                        headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 403, r.text
    r = requests.delete(f"{auth_cluster.endpoint}/v1/tokens", json={"token": tok},
                        headers={"Authorization": f"Bearer {_token('root', admin=True)}"}, timeout=10)
    assert r.status_code == 200, r.text
    with pytest.raises(AISError) as exc:
        c.bucket(data).object("o0").get_reader().read_all()
    assert exc.value.status_code == 401 and "revoked" in str(exc.value)
    # every target knows too (metasynced), for requests sent to it directly
    deadline = time.monotonic() + 10
    for t in auth_cluster.targets:
        while True:
            r = requests.get(f"{t.public_url}/v1/objects/{data}/o0", headers={"Authorization": f"Bearer {tok}"},
                             timeout=10)
            if r.status_code == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 401 and "revoked" in r.text, r.text
    r = requests.delete(f"{auth_cluster.endpoint}/v1/tokens", json={"token": "garbage"},
                        headers={"Authorization": f"Bearer {_token('root', admin=True)}"}, timeout=10)
    assert r.status_code == 400, r.text


def test_etl_init_is_admin_only(auth_cluster: Cluster, data: str, cluster_uuid: str) -> None:
    tok = _token("owner", cluster=int(CLUSTER_RW | RW), uuid_=cluster_uuid)
    r = requests.post(f"{auth_cluster.endpoint}/v1/etl", headers={"Authorization": f"Bearer {tok}"},
                      json={"name": "nope", "communication": "hpush://", "runtime": "python3.11v2",
                            "code": "", "dependencies": ""}, timeout=10)
    assert r.status_code == 403, r.text
    r = requests.put(f"{auth_cluster.endpoint}/v1/etl", headers={"Authorization": f"Bearer {tok}"},
                     json={"name": "nope"}, timeout=10)
    assert r.status_code == 403, r.text


def _s3(endpoint: str, ak: str, sk: str) -> Any:
    return boto3.client("s3", endpoint_url=f"{endpoint}/s3", aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 1}))


def test_s3_keys_bound_to_users(auth_cluster: Cluster, admin: Client, data: str) -> None:
    ep = auth_cluster.endpoint
    anon = boto3.client("s3", endpoint_url=f"{ep}/s3", region_name="us-east-1",
                        config=BotoConfig(signature_version=__import__("botocore").UNSIGNED, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as exc:
        anon.get_object(Bucket=data, Key="o0")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    # a reader makes a key for themselves: it acts with their permissions
    tok = _token("s3reader", buckets={data: int(RO)})
    r = requests.post(f"{ep}/v1/s3/keys", json={}, headers={"Authorization": f"Bearer {tok}"}, timeout=10)
    assert r.status_code == 200, r.text
    key = r.json()
    assert key["user"] == "s3reader"
    s3 = _s3(ep, key["access_key"], key["secret_key"])
    assert s3.get_object(Bucket=data, Key="o2")["Body"].read() == b"payload 2"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=data)["Contents"]][:3] == ["o0", "o1", "o2"]
    for call in (lambda: s3.put_object(Bucket=data, Key="w", Body=b"no"),
                 lambda: s3.delete_object(Bucket=data, Key="o0"),
                 lambda: s3.create_bucket(Bucket=f"s3new-{uuid.uuid4().hex[:6]}"),
                 lambda: s3.list_buckets()):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, exc.value.response
    # a bad signature with a real key
    with pytest.raises(ClientError) as exc:
        _s3(ep, key["access_key"], "W" * 40).get_object(Bucket=data, Key="o0")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # users see their own keys; an admin sees all
    mine = requests.get(f"{ep}/v1/s3/keys", headers={"Authorization": f"Bearer {tok}"}, timeout=10).json()
    assert mine == [{"access_key": key["access_key"], "user": "s3reader"}]
    other = _token("someone", buckets={data: int(RO)})
    r = requests.delete(f"{ep}/v1/s3/keys/{key['access_key']}", headers={"Authorization": f"Bearer {other}"}, timeout=10)
    assert r.status_code == 403, r.text
    # revoking the token takes the key with it
    r = requests.delete(f"{ep}/v1/tokens", json={"token": tok},
                        headers={"Authorization": f"Bearer {_token('root', admin=True)}"}, timeout=10)
    assert r.status_code == 200
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=data, Key="o2")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_s3_key_of_a_writer(auth_cluster: Cluster, data: str) -> None:
    ep = auth_cluster.endpoint
    tok = _token("s3writer", buckets={data: int(RW)})
    key = requests.post(f"{ep}/v1/s3/keys", json={}, headers={"Authorization": f"Bearer {tok}"}, timeout=10).json()
    s3 = _s3(ep, key["access_key"], key["secret_key"])
    s3.put_object(Bucket=data, Key="s3w", Body=b"written")
    assert s3.get_object(Bucket=data, Key="s3w")["Body"].read() == b"written"
    s3.copy_object(Bucket=data, Key="s3w-copy", CopySource={"Bucket": data, "Key": "s3w"})
    s3.delete_object(Bucket=data, Key="s3w")
    s3.delete_object(Bucket=data, Key="s3w-copy")


def test_unsigned_join_and_metasync_are_refused(auth_cluster: Cluster) -> None:
    primary = auth_cluster.spec.primary
    intra = f"http://127.0.0.1:{primary.intra_port}"
    node = {"daemon_id": "intruder", "daemon_type": "target",
            "public_net": {"direct_url": "http://127.0.0.1:1"}, "intra_control_net": {"direct_url": "http://127.0.0.1:2"}}
    for secret in (None, "wrong-secret"):
        headers = {"Ais-Join-Sig": secret} if secret else {}
        r = requests.post(f"{intra}/v1/cluster/autoreg", json=node, headers=headers, timeout=10)
        assert r.status_code == 403 and "secret" in r.text, r.text
    t = auth_cluster.targets[0]
    r = requests.put(f"http://127.0.0.1:{t.intra_port}/v1/metasync", json={"smap": {}}, timeout=10)
    assert r.status_code == 403 and "secret" in r.text, r.text
    # the control plane is not on the public listener at all
    r = requests.post(f"{auth_cluster.endpoint}/v1/cluster/autoreg", json=node, timeout=10,
                      headers={"Authorization": f"Bearer {_token('root', admin=True)}"})
    assert r.status_code in (404, 405), r.text
    smap = requests.get(f"{auth_cluster.endpoint}/v1/daemon?what=smap", timeout=10).json()
    assert "intruder" not in smap["tmap"]
