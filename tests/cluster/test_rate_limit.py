"""Front-end rate limits per bucket (rate_limit.frontend): 429 with Retry-After at the proxy,
S3 SlowDown, and stock clients (the SDK, boto3) retrying through them."""

from __future__ import annotations

import boto3
import requests
from botocore.config import Config


def test_frontend_rate_limit_429_and_clients_retry(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        bucket.object(f"o{i}").get_writer().put_content(b"limited")
    r = requests.patch(f"{cluster.endpoint}/v1/buckets/{bucket.name}", timeout=10, json={
        "action": "set-bprops",
        "value": {"rate_limit": {"frontend": {"enabled": True, "max_tokens": 5, "interval": "1s", "burst_size": 5}}}})
    assert r.status_code == 200, r.text
    props = requests.head(f"{cluster.endpoint}/v1/buckets/{bucket.name}", timeout=10).headers["Ais-Bucket-Props"]
    assert '"max_tokens": 5' in props and '"num_retries"' in props     # nested merge kept the siblings
    url = f"{cluster.endpoint}/v1/objects/{bucket.name}/o0"
    with requests.Session() as s:
        codes = [s.get(url, allow_redirects=False, timeout=10) for _ in range(15)]
    limited = [c for c in codes if c.status_code == 429]
    assert limited and all(int(c.headers["Retry-After"]) >= 1 for c in limited)
    assert "rate limit" in limited[0].text
    assert sum(c.status_code == 301 for c in codes) >= 5
    # the SDK retries 429 (honouring Retry-After): every read succeeds
    for _ in range(12):
        assert bucket.object("o1").get_reader().read_all() == b"limited"
    # S3: 503 SlowDown, which boto3 retries
    s3 = boto3.client("s3", endpoint_url=f"{cluster.endpoint}/s3", aws_access_key_id="t", aws_secret_access_key="t",
                      region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                             retries={"mode": "standard", "max_attempts": 10}))
    for _ in range(8):
        assert s3.get_object(Bucket=bucket.name, Key="o2")["Body"].read() == b"limited"
    raw = requests.get(f"{cluster.endpoint}/s3/{bucket.name}/o2", timeout=10)
    while raw.status_code == 200:
        raw = requests.get(f"{cluster.endpoint}/s3/{bucket.name}/o2", timeout=10)
    assert raw.status_code == 503 and "<Code>SlowDown</Code>" in raw.text


def _backend_limited_bucket(moto, endpoint: str, conf: dict) -> str:  # type: ignore[no-untyped-def]
    import os
    name = f"bl-{os.urandom(4).hex()}"
    moto.client().create_bucket(Bucket=name)
    assert requests.head(f"{endpoint}/v1/buckets/{name}?provider=aws", timeout=30).status_code == 200
    r = requests.patch(f"{endpoint}/v1/buckets/{name}?provider=aws", timeout=10,
                       json={"action": "set-bprops", "value": {"rate_limit": {"backend": conf}}})
    assert r.status_code == 200, r.text
    return name


def test_backend_rate_limit_paces_cold_reads(moto, remote_cluster) -> None:  # type: ignore[no-untyped-def]
    """6 backend GETs per second shared by 3 targets: 24 cold objects cannot all be fetched at
    once (each target has a burst of 2, then 2 per second)."""
    import time
    name = _backend_limited_bucket(moto, remote_cluster.endpoint,
                                   {"enabled": True, "max_tokens": 6, "interval": "1s", "num_retries": 3})
    s3 = moto.client()
    for i in range(24):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=b"v%d" % i)
    body = {"in": [{"objname": f"k{i}", "bucket": name, "provider": "aws"} for i in range(24)]}
    t0 = time.monotonic()
    r = requests.get(f"{remote_cluster.endpoint}/v1/ml/moss", json=body, timeout=120)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert all(moto.count("GET", f"/{name}/k{i}") == 1 for i in range(24))
    # the busiest target has at least 8 of the 24 objects: (8 - 2 burst) / 2 per second = 3 s
    assert elapsed >= 2.0, f"24 cold GETs took {elapsed:.2f}s: not paced"


def test_backend_throttling_is_retried_with_backoff(moto, remote_cluster) -> None:  # type: ignore[no-untyped-def]
    """The cloud answers 503 more times than the backend's own retries absorb: with a backend
    limit the call backs off and retries, and the client gets its object."""
    name = _backend_limited_bucket(moto, remote_cluster.endpoint,
                                   {"enabled": True, "max_tokens": 1000, "interval": "1s", "num_retries": 3})
    moto.client().put_object(Bucket=name, Key="obj", Body=b"payload")
    moto.reset_count()
    moto.fail_next(7, status=503)          # the backend tries 5 times per call (max_retries 4)
    r = requests.get(f"{remote_cluster.endpoint}/v1/objects/{name}/obj?provider=aws", timeout=60)
    assert r.status_code == 200 and r.content == b"payload"
    assert moto.count("GET", f"/{name}/obj") == 8
