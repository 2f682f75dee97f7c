"""The fast lane (ais/fasthttp.py, proxy/fastpath.py, target/fastget.py) on a real cluster: it
answers exactly what the regular handlers answer, hands everything else over on the same
connection, and counts both in /metrics."""

from __future__ import annotations

import os
import re
from typing import Any

import requests

TIMEOUT = 20
VOLATILE = {"date", "ais-request-id", "x-amz-request-id", "server", "ais-atime"}


_scrapers: dict[str, requests.Session] = {}


def lane_count(url: str, outcome: str) -> float:
    """The node's lane counter. One keep-alive session per node: its first scrape is handed over
    (and counted before the answer is made), later ones change nothing."""
    text = _scrapers.setdefault(url, requests.Session()).get(f"{url}/metrics", timeout=TIMEOUT).text
    m = re.search(r'^ais_fast_lane_total\{outcome="%s"\} (\S+)$' % outcome, text, re.M)
    return float(m[1]) if m else 0.0


def stable(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in VOLATILE}


def test_lane_answers_as_the_handlers_do(cluster: Any, bucket: Any) -> None:
    data = os.urandom(20000)
    obj = bucket.object("dir/a b+c.bin")   # a space: percent-encoded, so answered by the handlers
    obj.get_writer().put_content(data)
    plain = bucket.object("dir/plain.bin")
    plain.get_writer().put_content(data)
    ep, b = cluster.endpoint, bucket.name
    proxy = cluster.node("p0").public_url

    # the proxy's 301: lane and handler give the same Location (markers aside)
    answered = lane_count(proxy, "answered")
    fast = requests.get(f"{ep}/v1/objects/{b}/dir/plain.bin?provider=ais", allow_redirects=False, timeout=TIMEOUT)
    slow = requests.get(f"{ep}/v1/objects/{b}/dir/plain.bin?provider=ais&x=%2F", allow_redirects=False,
                        timeout=TIMEOUT)
    assert fast.status_code == slow.status_code == 301
    assert lane_count(proxy, "answered") == answered + 1
    unmark = lambda loc: re.sub(r"&utm=[0-9a-z]+", "", loc.replace("&x=%2F", ""))  # noqa: E731
    assert unmark(fast.headers["Location"]) == unmark(slow.headers["Location"])
    assert "pid=" in fast.headers["Location"] and "&utm=" in fast.headers["Location"]

    # the target's GET: same status, headers and body as the regular handler (an unknown query
    # parameter makes the lane decline)
    owner_url = fast.headers["Location"].split("/v1/")[0]
    answered = lane_count(owner_url, "answered")
    lane = requests.get(fast.headers["Location"], timeout=TIMEOUT)
    handler = requests.get(fast.headers["Location"] + "&x=1", timeout=TIMEOUT)
    assert lane.status_code == handler.status_code == 200
    assert lane.content == handler.content == data
    assert stable(lane.headers) == stable(handler.headers)
    assert lane_count(owner_url, "answered") == answered + 1

    # what the lane declines is answered by the handlers: names to decode, ranges, misses
    assert obj.get_reader().read_all() == data
    r = requests.get(fast.headers["Location"], headers={"Range": "bytes=10-19"}, timeout=TIMEOUT)
    assert r.status_code == 206 and r.content == data[10:20]
    missing = requests.get(f"{ep}/v1/objects/{b}/dir/nope", timeout=TIMEOUT)
    assert missing.status_code == 404 and "dir/nope" in missing.json()["message"]


def test_one_connection_moves_from_the_lane_to_the_handlers(cluster: Any, bucket: Any) -> None:
    """A keep-alive session: lane answers, then a request the lane declines (the connection is
    handed over, bytes intact), then more requests on the same connection."""
    objs = {f"k{i}": os.urandom(100 + i) for i in range(4)}
    for name, data in objs.items():
        bucket.object(name).get_writer().put_content(data)
    with requests.Session() as s:
        urls = {}
        for name in objs:
            r = s.get(f"{cluster.endpoint}/v1/objects/{bucket.name}/{name}", allow_redirects=False, timeout=TIMEOUT)
            urls[name] = r.headers["Location"]
        owner = urls["k0"].split("/v1/")[0]
        same = [n for n in objs if urls[n].startswith(owner + "/")]
        handed = lane_count(owner, "handed_over")
        assert s.get(urls["k0"], timeout=TIMEOUT).content == objs["k0"]
        put = s.put(urls["k0"].split("?")[0], data=b"new", timeout=TIMEOUT)   # a body: handed over
        assert put.status_code == 200, put.text
        assert lane_count(owner, "handed_over") == handed + 1
        for n in same:
            want = b"new" if n == "k0" else objs[n]
            assert s.get(urls[n], timeout=TIMEOUT).content == want


AK, SK = "AKLANE00000000000001", "lanesecretlanesecret01"


def s3_cluster(make_cluster: Any, bucket: str) -> tuple[Any, str, Any]:
    """A 2-target cluster with an S3 access key, its proxy's URL, and boto3 on it with `bucket` made."""
    import boto3
    from botocore.config import Config

    c = make_cluster(targets=2, mountpaths=1, env={"AIS_S3_ACCESS_KEYS": f"{AK}:{SK}"})
    proxy = c.node("p0").public_url
    s3 = boto3.client("s3", endpoint_url=f"{proxy}/s3", aws_access_key_id=AK, aws_secret_access_key=SK,
                      region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=bucket)
    return c, proxy, s3


def signed(method: str, url: str, body: bytes = b"", secret: str = SK, **extra: str) -> dict[str, str]:
    """SigV4 headers botocore signs for a request (over http: the payload's SHA-256 included)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method=method, url=url, data=body, headers=extra)
    S3SigV4Auth(Credentials(AK, secret), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def test_s3_get_through_the_lanes(make_cluster: Any) -> None:
    """S3 GetObject with keys configured: the proxy's lane checks the signature and relays to the
    target's lane; a query (here `x-id`, as recent botocore sends) takes the regular handlers,
    which answer the same; a bad signature is the handler's 403; a body over the relay limit is
    asked again by the handlers (and spliced), on the same client connection."""
    c, proxy, s3 = s3_cluster(make_cluster, "lane")
    small, big = os.urandom(30000), os.urandom(3 << 20)
    s3.put_object(Bucket="lane", Key="d/small", Body=small, Metadata={"kind": "small"})
    s3.put_object(Bucket="lane", Key="d/big", Body=big)

    def get_signed(key: str, query: str = "", secret: str = SK) -> dict[str, str]:
        return signed("GET", f"{proxy}/s3/lane/{key}" + (f"?{query}" if query else ""), secret=secret)

    answered = lane_count(proxy, "answered")
    targets = lambda: sum(lane_count(t.public_url, "answered") for t in c.targets)  # noqa: E731
    at_targets = targets()
    with requests.Session() as s:
        lane = s.get(f"{proxy}/s3/lane/d/small", headers=get_signed("d/small"), timeout=TIMEOUT)
        assert lane_count(proxy, "answered") == answered + 1 and targets() == at_targets + 1
        handler = requests.get(f"{proxy}/s3/lane/d/small?x-id=GetObject", headers=get_signed("d/small", "x-id=GetObject"),
                               timeout=TIMEOUT)
        assert lane.status_code == handler.status_code == 200 and lane.content == handler.content == small
        assert stable(lane.headers) == stable(handler.headers)
        assert lane.headers["x-amz-meta-kind"] == "small" and lane.headers["x-amz-request-id"]
        assert lane.headers["ETag"] == handler.headers["ETag"] == s3.head_object(Bucket="lane", Key="d/small")["ETag"]
        bad = s.get(f"{proxy}/s3/lane/d/small", headers=get_signed("d/small", secret="wrong-secret-0000000000"),
                    timeout=TIMEOUT)
        assert bad.status_code == 403 and b"SignatureDoesNotMatch" in bad.content
        assert s.get(f"{proxy}/s3/lane/d/big", headers=get_signed("d/big"), timeout=TIMEOUT).content == big
        assert s.get(f"{proxy}/s3/lane/d/small", headers=get_signed("d/small"), timeout=TIMEOUT).content == small
    assert s3.get_object(Bucket="lane", Key="d/small")["Body"].read() == small   # boto3's defaults (checksum mode)


def test_s3_put_through_the_lanes(make_cluster: Any) -> None:
    """S3 PutObject with keys configured: the proxy's lane takes a small body whole, checks the
    signature and relays it, and the target's lane stores it; the answer is the one the handlers
    give (a query takes them); the payload's hashes are still checked (a failed check is the
    handler's S3 error); what the lane declines (a bad signature, a body
    over its limit, a copy) gets the handlers' answers on the same connection."""
    c, proxy, s3 = s3_cluster(make_cluster, "lanep")

    def put_signed(key: str, body: bytes, query: str = "", secret: str = SK, **extra: str) -> dict[str, str]:
        return signed("PUT", f"{proxy}/s3/lanep/{key}" + (f"?{query}" if query else ""), body, secret, **extra)

    small, other, big = os.urandom(30000), os.urandom(1000), os.urandom(300 << 10)
    answered = lane_count(proxy, "answered")
    targets = lambda: sum(lane_count(t.public_url, "answered") for t in c.targets)  # noqa: E731
    at_targets = targets()
    with requests.Session() as s:
        def put(key: str, body: bytes, query: str = "", session: Any = s, **kw: Any) -> requests.Response:
            return session.put(f"{proxy}/s3/lanep/{key}" + (f"?{query}" if query else ""), data=body, timeout=TIMEOUT,
                         headers=kw.pop("headers", None) or put_signed(key, body, query), **kw)

        lane = put("d/small", small, headers=put_signed("d/small", small, **{"x-amz-meta-kind": "small"}))
        assert lane.status_code == 200, lane.text
        assert lane_count(proxy, "answered") == answered + 1 and targets() == at_targets + 1   # both lanes
        handler = put("d/small2", small, "x-id=PutObject", session=requests)   # a connection of its own
        assert handler.status_code == 200 and lane_count(proxy, "answered") == answered + 1
        assert stable(lane.headers) == stable(handler.headers)
        assert lane.headers["ETag"] == '"%s"' % __import__("hashlib").md5(small).hexdigest()
        # the target checks the body against the signed hash and Content-MD5, through the lane too
        wrong = put_signed("d/x", other)
        bad = put("d/x", other[:-1] + b"!", headers=wrong)
        assert bad.status_code == 400 and b"XAmzContentSHA256Mismatch" in bad.content, bad.text
        digest = put_signed("d/x", other, **{"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
        bad = put("d/x", other, headers=digest)
        assert bad.status_code == 400 and b"BadDigest" in bad.content, bad.text
        assert lane_count(proxy, "answered") == answered + 3
        # declined: a bad signature (the handler's 403), a body over the lane's limit, then the lane's again
        assert put("d/x", other, headers=put_signed("d/x", other, secret="wrong-secret-0000000000")).status_code == 403
        assert put("d/big", big).status_code == 200
        assert put("d/other", other).status_code == 200
    got = {k: s3.get_object(Bucket="lanep", Key=k) for k in ("d/small", "d/small2", "d/big", "d/other")}
    assert got["d/small"]["Body"].read() == small and got["d/small"]["Metadata"] == {"kind": "small"}
    assert got["d/big"]["Body"].read() == big and got["d/other"]["Body"].read() == other
    assert "d/x" not in [o["Key"] for o in s3.list_objects_v2(Bucket="lanep")["Contents"]]
    s3.put_object(Bucket="lanep", Key="d/boto", Body=small)   # boto3's defaults (a CRC32 checksum)
    assert s3.get_object(Bucket="lanep", Key="d/boto")["Body"].read() == small
