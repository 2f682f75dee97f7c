"""TLS on every listener (`net.use_https`), end to end: the official SDK (including its
two-leg HTTPS PUT: the proxy answers a body-less first leg with a signed redirect), boto3 through
the S3 front end, our own client, and node-to-node traffic (joining, metasync, rebalance-free
placement) all over HTTPS with a CA made for the cluster; auth on at the same time."""

from __future__ import annotations

import ssl
import socket
import time
import urllib.request
import uuid
from typing import Iterator

import boto3
import jwt
import pytest
import requests
from aistore.sdk import Client
from botocore.config import Config as BotoConfig

from ais.client import Client as OurClient
from tests.cluster.conftest import Cluster

SECRET = "tls-test-secret-0123456789abcdef"


def _admin_token() -> str:
    return jwt.encode({"sub": "root", "admin": True, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(str(tmp_path_factory.mktemp("tls")), https=True, env={
        "AIS_AUTH_ENABLED": "true", "AIS_AUTH_SIGNATURE_KEY": SECRET})
    try:
        yield c
    finally:
        c.down()


def test_every_node_speaks_tls_only(tls_cluster: Cluster) -> None:
    ca = tls_cluster.spec.ca_cert
    assert tls_cluster.endpoint.startswith("https://")
    smap = requests.get(f"{tls_cluster.endpoint}/v1/daemon?what=smap", verify=ca, timeout=10).json()
    urls = [n["public_net"]["direct_url"] for m in ("pmap", "tmap") for n in smap[m].values()]
    urls += [n["intra_control_net"]["direct_url"] for m in ("pmap", "tmap") for n in smap[m].values()]
    assert len(urls) == 8 and all(u.startswith("https://") for u in urls), urls
    ctx = ssl.create_default_context(cafile=ca)
    for u in urls:
        with urllib.request.urlopen(f"{u}/v1/health", context=ctx, timeout=10) as r:
            assert r.status == 200
    # plain HTTP on a TLS port gets nowhere
    host, port = tls_cluster.endpoint.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            answer = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200"), answer
    # a client that does not trust the CA is refused
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_cluster.endpoint}/v1/health", timeout=10)


def test_sdk_two_leg_put_and_get(tls_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's CA (psf/requests#3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = Client(tls_cluster.endpoint, ca_cert=tls_cluster.spec.ca_cert, token=_admin_token())
    b = client.bucket(f"tls-{uuid.uuid4().hex[:6]}").create()
    payload = bytes(range(256)) * 4096   # 1 MiB: the body travels only on the second leg
    b.object("big").get_writer().put_content(payload)
    assert b.object("big").get_reader().read_all() == payload
    b.object("small").get_writer().put_content(b"hello")
    assert sorted(e.name for e in b.list_all_objects()) == ["big", "small"]
    assert b.object("small").head().size == 5


def test_boto3_and_our_client_over_tls(tls_cluster: Cluster) -> None:
    ca = tls_cluster.spec.ca_cert
    tok = _admin_token()
    name = f"tls3-{uuid.uuid4().hex[:6]}"
    # an admin makes an S3 key (bound to them) for boto3
    key = requests.post(f"{tls_cluster.endpoint}/v1/s3/keys", json={}, verify=ca, timeout=10,
                        headers={"Authorization": f"Bearer {tok}"}).json()
    s3 = boto3.client("s3", endpoint_url=f"{tls_cluster.endpoint}/s3", verify=ca, region_name="us-east-1",
                      aws_access_key_id=key["access_key"], aws_secret_access_key=key["secret_key"],
                      config=BotoConfig(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"x" * 300_000)
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"x" * 300_000
    ours = OurClient(tls_cluster.endpoint, ca_cert=ca, token=tok)
    try:
        ours.put_object(name, "ours", b"from ais.client")
        assert ours.get_object(name, "ours") == b"from ais.client"
        assert s3.get_object(Bucket=name, Key="ours")["Body"].read() == b"from ais.client"
    finally:
        ours.close()
