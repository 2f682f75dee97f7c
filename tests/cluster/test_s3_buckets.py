"""Bucket-level S3 operations with stock boto3 (path style, default configuration)."""

import os
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError


@pytest.fixture
def s3(cluster):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=f"{cluster.endpoint}/s3", aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _fill(client, name: str, keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    b = client.bucket(name)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: b.object(k).get_writer().put_content(b"x" * (len(k) % 7)), keys))


def test_bucket_lifecycle(s3, client) -> None:  # type: ignore[no-untyped-def]
    name = "s3-life-" + os.urandom(3).hex()
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert _code(e) == "BucketAlreadyOwnedByYou"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") is None
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    # the same bucket through the native API
    assert name in [b.name for b in client.cluster().list_buckets()]
    client.bucket(name).object("k").get_writer().put_content(b"v")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert _code(e) == "BucketNotEmpty"
    s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "k"}], "Quiet": True})
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert _code(e) == "NoSuchBucket"


def test_paging_5000_keys_by_100(s3, client, bucket) -> None:  # type: ignore[no-untyped-def]
    keys = [f"k/{i:05d}" for i in range(5000)]
    _fill(client, bucket.name, keys)
    pages, got = 0, []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, PaginationConfig={"PageSize": 100}):
        assert page["KeyCount"] <= 100 and page["MaxKeys"] == 100
        got += [c["Key"] for c in page.get("Contents", [])]
        pages += 1
    assert got == keys and pages == 50
    v1 = [c["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=bucket.name,
                                                                      PaginationConfig={"PageSize": 100})
          for c in p.get("Contents", [])]
    assert v1 == keys
    after = s3.list_objects_v2(Bucket=bucket.name, StartAfter="k/04990")
    assert [c["Key"] for c in after["Contents"]] == keys[4991:]
    entry = s3.list_objects_v2(Bucket=bucket.name, MaxKeys=1)["Contents"][0]
    assert entry["Size"] == len("k/00000") % 7 and entry["ETag"].startswith('"') and entry["LastModified"]


def test_delimiters_and_common_prefixes(s3, client, bucket) -> None:  # type: ignore[no-untyped-def]
    keys = ["a/1", "a/2", "a/b/3", "a/b/4", "c", "d/5", "e", "f/g/h/6"]
    _fill(client, bucket.name, keys)
    r = s3.list_objects_v2(Bucket=bucket.name, Delimiter="/")
    assert [c["Key"] for c in r["Contents"]] == ["c", "e"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "d/", "f/"]
    r = s3.list_objects_v2(Bucket=bucket.name, Prefix="a/", Delimiter="/")
    assert [c["Key"] for c in r["Contents"]] == ["a/1", "a/2"] and r["CommonPrefixes"] == [{"Prefix": "a/b/"}]
    # prefixes count against max-keys and page correctly
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, Delimiter="/",
                                                             PaginationConfig={"PageSize": 2}):
        seen += sorted([c["Key"] for c in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])])
    assert seen == ["a/", "c", "d/", "e", "f/"]
    r = s3.list_objects_v2(Bucket=bucket.name, Prefix="f/", Delimiter="/")
    assert r["CommonPrefixes"] == [{"Prefix": "f/g/"}] and "Contents" not in r


def test_url_encoding_type(s3, client, bucket) -> None:  # type: ignore[no-untyped-def]
    _fill(client, bucket.name, ["sp ace/ü+x"])
    r = s3.list_objects_v2(Bucket=bucket.name)  # boto3 asks for encoding-type=url and decodes
    assert [c["Key"] for c in r["Contents"]] == ["sp ace/ü+x"]


def test_malformed_requests_get_s3_errors(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    ep = f"{cluster.endpoint}/s3/{bucket.name}"
    r = requests.post(f"{ep}?delete", data=b"<Delete><Object><Key>a</Key>", timeout=10)
    assert r.status_code == 400 and b"<Code>MalformedXML</Code>" in r.content and b"<RequestId>" in r.content
    bomb = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b"<Delete><Object><Key>&b;</Key></Object></Delete>")
    r = requests.post(f"{ep}?delete", data=bomb, timeout=10)
    assert r.status_code == 400 and b"MalformedXML" in r.content
    r = requests.get(ep, params={"max-keys": "many"}, timeout=10)
    assert r.status_code == 400 and b"<Code>InvalidArgument</Code>" in r.content
    r = requests.get(ep, params={"list-type": "2", "continuation-token": "!!!"}, timeout=10)
    assert r.status_code == 400 and b"InvalidArgument" in r.content
    r = requests.get(f"{ep}?policy", timeout=10)
    assert r.status_code == 501 and b"<Code>NotImplemented</Code>" in r.content
    r = requests.get(f"{cluster.endpoint}/s3/no-such-bucket-xyz", timeout=10)
    assert r.status_code == 404 and b"<Code>NoSuchBucket</Code>" in r.content
    assert r.headers["Content-Type"] == "application/xml" and r.headers["x-amz-request-id"]


def test_virtual_host_style(make_cluster) -> None:  # type: ignore[no-untyped-def]
    """`Host: <bucket>.<domain>` addresses the bucket; the path is the key."""
    c = make_cluster(targets=2, mountpaths=1, env={"AIS_S3_VIRTUAL_HOST_DOMAIN": "s3.local"})
    port = c.endpoint.rsplit(":", 1)[1]
    host = {"Host": f"vhb.s3.local:{port}"}
    assert requests.put(f"{c.endpoint}/s3/vhb", timeout=10).status_code == 200  # path style creates it
    assert requests.put(f"{c.endpoint}/dir/obj.txt", data=b"virtual", headers=host, timeout=10).status_code == 200
    r = requests.get(f"{c.endpoint}/dir/obj.txt", headers=host, timeout=10)
    assert r.status_code == 200 and r.content == b"virtual"
    listing = requests.get(f"{c.endpoint}/", params={"list-type": "2"}, headers=host, timeout=10)
    assert listing.status_code == 200 and b"<Key>dir/obj.txt</Key>" in listing.content
    assert requests.get(f"{c.endpoint}/s3/vhb/dir/obj.txt", timeout=10).content == b"virtual"  # path style too
    assert requests.head(f"{c.endpoint}/", headers=host, timeout=10).status_code == 200  # HeadBucket
    missing = requests.get(f"{c.endpoint}/x", headers={"Host": f"nope.s3.local:{port}"}, timeout=10)
    assert missing.status_code == 404 and b"NoSuchBucket" in missing.content
    # without the domain, the root is path-style S3 again
    assert b"<Name>vhb</Name>" in requests.get(f"{c.endpoint}/", timeout=10).content
