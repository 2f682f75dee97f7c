"""S3 access keys: managed with `ais s3 keys`, metasynced to every proxy, enforced with SigV4."""

import os
import subprocess
import sys

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

AK, SK = "AKTEST00000000000001", "secretsecretsecret0123"


def _s3(endpoint: str, ak: str = AK, sk: str = SK):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=f"{endpoint}/s3", aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1",
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def _ais(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ais.cli.main", "s3", "keys", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "AIS_ENDPOINT": endpoint})


def test_keys_enforce_sigv4_on_every_proxy(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c = make_cluster(proxies=2, targets=2, mountpaths=1)
    p0, p1 = (n.public_url for n in c.spec.nodes if n.role == "proxy")
    # no keys: anonymous access
    assert requests.get(f"{p0}/s3", timeout=10).status_code == 200
    assert "no S3 access keys" in _ais(p0, "ls").stdout
    # add a key through the non-primary proxy: forwarded to the primary, metasynced to all
    added = _ais(p1, "add", "--access-key", AK, "--secret-key", SK)
    assert added.returncode == 0 and AK in added.stdout, added.stderr
    assert AK in _ais(p0, "ls").stdout and SK not in _ais(p0, "ls", "--json").stdout
    dup = _ais(p0, "add", "--access-key", AK, "--secret-key", SK)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    for ep in (p0, p1):
        s3 = _s3(ep)
        s3.create_bucket(Bucket=f"authb-{ep[-5:]}")
        assert f"authb-{ep[-5:]}" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        # anonymous, wrong secret, unknown key: 403 with the S3 code
        r = requests.get(f"{ep}/s3", timeout=10)
        assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content
        with pytest.raises(ClientError) as e:
            _s3(ep, sk="wrong-secret-wrong-secret").list_buckets()
        assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        with pytest.raises(ClientError) as e:
            _s3(ep, ak="AKUNKNOWN00000000000").list_buckets()
        assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
        # presigned URLs fetched with plain HTTP; tampering breaks them
        url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": f"authb-{ep[-5:]}"}, ExpiresIn=60)
        assert requests.get(url, timeout=10).status_code == 200
        assert requests.get(url.replace("list-type=2", "list-type=2&prefix=x"), timeout=10).status_code == 403
    # SigV2: boto3's default presigning in us-east-1, and header-signed requests
    v2 = boto3.client("s3", endpoint_url=f"{p0}/s3", aws_access_key_id=AK, aws_secret_access_key=SK,
                      region_name="us-east-1", config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    assert f"authb-{p0[-5:]}" in [b["Name"] for b in v2.list_buckets()["Buckets"]]
    url = boto3.client("s3", endpoint_url=f"{p0}/s3", aws_access_key_id=AK, aws_secret_access_key=SK,
                       region_name="us-east-1").generate_presigned_url(
        "list_objects_v2", Params={"Bucket": f"authb-{p0[-5:]}"}, ExpiresIn=60)
    assert "Signature=" in url and requests.get(url, timeout=10).status_code == 200
    assert requests.get(url.replace("list-type=2", "list-type=1"), timeout=10).status_code == 200  # not signed
    assert requests.get(url.replace(f"authb-{p0[-5:]}", "other"), timeout=10).status_code == 403
    with pytest.raises(ClientError) as e:
        boto3.client("s3", endpoint_url=f"{p0}/s3", aws_access_key_id=AK, aws_secret_access_key="nope-nope-nope-nope",
                     region_name="us-east-1",
                     config=Config(signature_version="s3", s3={"addressing_style": "path"})).list_buckets()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # keys survive a restart of the primary
    c.restart("p0")
    assert AK in _ais(p0, "ls").stdout
    _s3(p0).list_buckets()
    # removing the last key returns to anonymous access
    assert _ais(p0, "rm", AK).returncode == 0
    assert requests.get(f"{p1}/s3", timeout=10).status_code == 200
    gone = _ais(p0, "rm", AK)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_signed_streaming_put_is_verified_chunk_by_chunk(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the seed at the proxy, every chunk at the target."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from ais.s3 import sigv4
    from tests.unit.test_s3_chunked import signed_body

    class StreamingSigner(S3SigV4Auth):  # type: ignore[misc]
        def payload(self, request: object) -> str:
            return sigv4.STREAMING_PAYLOAD

    c = make_cluster(targets=2, mountpaths=1)
    assert _ais(c.endpoint, "add", "--access-key", AK, "--secret-key", SK).returncode == 0
    _s3(c.endpoint).create_bucket(Bucket="streamed")
    payload = os.urandom(200_000)

    def put(body_for: object, key: str) -> requests.Response:
        url = f"{c.endpoint}/s3/streamed/{key}"
        req = AWSRequest(method="PUT", url=url, headers={"Content-Encoding": "aws-chunked",
                                                         "X-Amz-Decoded-Content-Length": str(len(payload))})
        StreamingSigner(Credentials(AK, SK), "s3", "us-east-1").add_auth(req)
        headers = {k: str(v) for k, v in req.headers.items()}
        auth = sigv4.parse("PUT", f"/s3/streamed/{key}", "", {**headers, "Host": url.split("/")[2]})
        assert isinstance(auth, sigv4.SigV4Auth)
        body = body_for(auth)  # type: ignore[operator]
        return requests.put(url, data=body, headers=headers, timeout=30)

    ok = put(lambda auth: signed_body(payload, 65536, auth, SK), "good")
    assert ok.status_code == 200, ok.text
    assert _s3(c.endpoint).get_object(Bucket="streamed", Key="good")["Body"].read() == payload

    def tampered(auth: object) -> bytes:
        body = bytearray(signed_body(payload, 65536, auth, SK))  # type: ignore[arg-type]
        body[70_000] ^= 0xFF  # inside the second chunk's data
        return bytes(body)
    bad = put(tampered, "bad")
    assert bad.status_code == 403 and b"SignatureDoesNotMatch" in bad.content
    with pytest.raises(ClientError):
        _s3(c.endpoint).head_object(Bucket="streamed", Key="bad")
    # a client cannot smuggle its own signing key past the proxy
    url = f"{c.endpoint}/s3/streamed/smuggled"
    r = requests.put(url, data=b"x", headers={"Ais-S3-Signing-Key": "00" * 32}, timeout=10)
    assert r.status_code == 403
