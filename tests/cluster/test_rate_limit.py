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
