"""Object-level S3 operations with stock boto3 (path style, default configuration), through the
proxy's reverse proxy to the owning target; plus aws-chunked bodies and malformed XML sent by hand."""

import base64
import gzip
import hashlib
import io
import os
import time
import zlib
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import requests
import xxhash
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from ais.cmap import ClusterMap
from ais.names import Bucket
from target.objects import SMALL_PUT_BYTES

MiB = 1 << 20


@pytest.fixture
def s3(cluster):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=f"{cluster.endpoint}/s3", aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket2(client):  # type: ignore[no-untyped-def]
    b = client.bucket("s3-objects-dst-" + os.urandom(3).hex())
    b.create()
    yield b
    b.delete(missing_ok=True)


def _owner(cluster, bucket: str, key: str) -> str:  # type: ignore[no-untyped-def]
    """The ID of the target that owns `ais://bucket/key` (to steer copies within or across targets)."""
    smap = ClusterMap.from_wire(requests.get(f"{cluster.endpoint}/v1/daemon?what=smap", timeout=10).json())
    node = smap.owner(Bucket(bucket).object_uname(key))
    assert node is not None
    return node.id


def _keys(cluster, bucket: str, like: tuple[str, str], same: bool, n: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    """`n` keys in `bucket` whose owner is (`same`) or is not the owner of `like` = (bucket, key)."""
    ref = _owner(cluster, *like)
    keys = (f"k{i}" for i in range(1000))
    return [k for k in keys if (_owner(cluster, bucket, k) == ref) == same][:n]


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --- put / get / head / delete ----------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, MiB, 20 * MiB])
def test_put_get_head_delete(s3, bucket, size: int) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(size)
    key = f"dir/obj-{size}"
    put = s3.put_object(Bucket=bucket.name, Key=key, Body=data)
    assert put["ETag"] == f'"{_md5(data)}"'
    assert put["ResponseMetadata"]["RequestId"]
    got = s3.get_object(Bucket=bucket.name, Key=key)
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{_md5(data)}"' and got["ContentLength"] == size
    assert got["ContentType"] == "binary/octet-stream" and got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket.name, Key=key)
    assert head["ContentLength"] == size and head["ETag"] == put["ETag"]
    assert abs(head["LastModified"].timestamp() - time.time()) < 120
    assert s3.delete_object(Bucket=bucket.name, Key=key)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket.name, Key=key)
    assert _code(e) == "NoSuchKey" and _status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket.name, Key=key)
    assert _status(e) == 404


def test_delete_missing_is_204(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    r = s3.delete_object(Bucket=bucket.name, Key="never/was")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_head_error_has_no_body(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    r = requests.head(f"{cluster.endpoint}/s3/{bucket.name}/missing", timeout=10)
    assert r.status_code == 404 and r.content == b"" and r.headers["x-amz-request-id"]
    r = requests.get(f"{cluster.endpoint}/s3/{bucket.name}/missing", timeout=10)
    assert r.status_code == 404 and b"<Code>NoSuchKey</Code>" in r.content
    assert r.headers["Content-Type"] == "application/xml"


def test_odd_keys(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    for key in ["a b/c+d", "ümlaut/€", "q?x=1&y#z", "%41%2F"]:
        s3.put_object(Bucket=bucket.name, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=bucket.name, Key=key)["Body"].read() == key.encode()
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket.name)["Contents"])
    assert listed == sorted(["a b/c+d", "ümlaut/€", "q?x=1&y#z", "%41%2F"])


# --- ranges, conditionals, overrides --------------------------------------------------------------------

@pytest.mark.parametrize("size", [300, 300_000])  # in-memory path and sendfile path
def test_ranges(s3, bucket, size: int) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(size)
    s3.put_object(Bucket=bucket.name, Key="r", Body=data)

    def get(rng: str) -> bytes:
        r = s3.get_object(Bucket=bucket.name, Key="r", Range=rng)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert r["ContentRange"].endswith(f"/{size}")
        return bytes(r["Body"].read())
    assert get("bytes=0-0") == data[:1]
    assert get("bytes=100-199") == data[100:200]
    assert get("bytes=-5") == data[-5:]
    assert get(f"bytes={size - 10}-") == data[-10:]
    assert get(f"bytes=10-{size * 2}") == data[10:]  # clipped to the size
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket.name, Key="r", Range=f"bytes={size}-")
    assert _code(e) == "InvalidRange" and _status(e) == 416
    whole = s3.get_object(Bucket=bucket.name, Key="r", Range="bytes=0-1,5-6")  # multi-range: ignored, as S3 does
    assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200 and whole["Body"].read() == data
    head = s3.head_object(Bucket=bucket.name, Key="r", Range="bytes=0-9")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206 and head["ContentLength"] == 10


def test_conditionals(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    data = b"conditional"
    etag = s3.put_object(Bucket=bucket.name, Key="c", Body=data)["ETag"]
    past = datetime.now(timezone.utc) - timedelta(days=1)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    for op in (s3.get_object, s3.head_object):
        assert op(Bucket=bucket.name, Key="c", IfMatch=etag)["ETag"] == etag
        assert op(Bucket=bucket.name, Key="c", IfNoneMatch='"0123"')["ETag"] == etag
        assert op(Bucket=bucket.name, Key="c", IfModifiedSince=past)["ETag"] == etag
        assert op(Bucket=bucket.name, Key="c", IfUnmodifiedSince=future)["ETag"] == etag
        # If-Match wins over a failing If-Unmodified-Since
        assert op(Bucket=bucket.name, Key="c", IfMatch=etag, IfUnmodifiedSince=past)["ETag"] == etag
        for kw in ({"IfMatch": '"nope"'}, {"IfUnmodifiedSince": past}):
            with pytest.raises(ClientError) as e:
                op(Bucket=bucket.name, Key="c", **kw)
            assert _status(e) == 412
            if op is s3.get_object:
                assert _code(e) == "PreconditionFailed"
        for kw in ({"IfNoneMatch": etag}, {"IfNoneMatch": "*"}, {"IfModifiedSince": future}):
            with pytest.raises(ClientError) as e:
                op(Bucket=bucket.name, Key="c", **kw)
            assert _status(e) == 304


def test_response_overrides(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket.name, Key="o", Body=b"x", ContentType="text/plain")
    r = s3.get_object(Bucket=bucket.name, Key="o", ResponseContentType="application/json",
                      ResponseContentDisposition='attachment; filename="o.json"', ResponseCacheControl="no-cache",
                      ResponseContentLanguage="de", ResponseExpires=datetime(2030, 1, 1, tzinfo=timezone.utc),
                      ResponseContentEncoding="identity")
    assert r["ContentType"] == "application/json" and r["ContentDisposition"] == 'attachment; filename="o.json"'
    assert r["CacheControl"] == "no-cache" and r["ContentLanguage"] == "de" and r["ContentEncoding"] == "identity"
    assert r["ResponseMetadata"]["HTTPHeaders"]["expires"].startswith("Tue, 01 Jan 2030")
    assert s3.get_object(Bucket=bucket.name, Key="o")["ContentType"] == "text/plain"


def test_user_metadata_round_trip(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket.name, Key="m", Body=b"meta", Metadata={"Color": "blue", "x-y": "a=b,c"},
                  ContentType="text/csv", CacheControl="max-age=60", ContentDisposition="inline",
                  ContentLanguage="en")
    for r in (s3.get_object(Bucket=bucket.name, Key="m"), s3.head_object(Bucket=bucket.name, Key="m")):
        assert r["Metadata"] == {"color": "blue", "x-y": "a=b,c"}
        assert r["ContentType"] == "text/csv" and r["CacheControl"] == "max-age=60"
        assert r["ContentDisposition"] == "inline" and r["ContentLanguage"] == "en"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket.name, Key="big-md", Body=b"", Metadata={"k": "v" * 3000})
    assert _code(e) == "MetadataTooLarge"


def test_content_encoding_is_stored_verbatim(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    """A gzip body is an object's bytes, not a transfer detail: stored and served as sent."""
    data = gzip.compress(b"hello " * 1000)
    r = s3.put_object(Bucket=bucket.name, Key="gz", Body=data, ContentEncoding="gzip")
    assert r["ETag"] == f'"{_md5(data)}"'
    got = s3.get_object(Bucket=bucket.name, Key="gz")
    assert got["ContentEncoding"] == "gzip" and got["Body"].read() == data


# --- checksums ----------------------------------------------------------------------------------------

def test_content_md5_and_checksums(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(100_000)
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=bucket.name, Key="md5", Body=data, ContentMD5=good)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket.name, Key="md5", Body=data + b"!", ContentMD5=good)
    assert _code(e) == "BadDigest"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket.name, Key="md5", Body=data, ContentMD5="not-base64")
    assert _code(e) == "InvalidDigest"
    assert s3.get_object(Bucket=bucket.name, Key="md5")["Body"].read() == data  # the failed PUTs left it alone
    # boto3 sends x-amz-checksum-crc32 by default; we store it and echo it with checksum mode on
    r = s3.put_object(Bucket=bucket.name, Key="crc", Body=data)
    assert r["ChecksumCRC32"] == _crc32_b64(data)
    got = s3.get_object(Bucket=bucket.name, Key="crc", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == _crc32_b64(data) and got["Body"].read() == data  # botocore validated it
    r = s3.put_object(Bucket=bucket.name, Key="sha", Body=data, ChecksumAlgorithm="SHA256")
    assert r["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket.name, Key="crc", Body=data, ChecksumCRC32=_crc32_b64(b"other"))
    assert _code(e) == "BadDigest"


def _aws_chunked(data: bytes, trailer: str | None, chunk: int = 64 * 1024) -> bytes:
    out = b""
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    out += b"0\r\n"
    if trailer:
        out += trailer.encode() + b"\r\n"
    return out + b"\r\n"


def test_aws_chunked_unsigned_trailer(cluster, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    """What recent boto3 sends over HTTPS: aws-chunked, unsigned, a CRC32 trailer."""
    data = os.urandom(300_000)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": str(len(data)),
               "Content-Type": "text/plain"}
    url = f"{cluster.endpoint}/s3/{bucket.name}/chunked"
    body = _aws_chunked(data, f"x-amz-checksum-crc32:{_crc32_b64(data)}")
    r = requests.put(url, data=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == f'"{_md5(data)}"' and r.headers["x-amz-checksum-crc32"] == _crc32_b64(data)
    got = s3.get_object(Bucket=bucket.name, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == _crc32_b64(data)
    assert got["ContentType"] == "text/plain" and "ContentEncoding" not in got  # aws-chunked is not stored
    # a wrong trailer, a truncated body: 400 and nothing stored
    bad = _aws_chunked(data, f"x-amz-checksum-crc32:{_crc32_b64(b'x')}")
    r = requests.put(url + "2", data=bad, headers=headers, timeout=30)
    assert r.status_code == 400 and b"<Code>BadDigest</Code>" in r.content
    r = requests.put(url + "2", data=body[:-40], headers=headers, timeout=30)
    assert r.status_code == 400
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket.name, Key="chunked2")
    assert _status(e) == 404


def test_aws_chunked_as_botocore_frames_it(cluster, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    """The exact body botocore sends over HTTPS (its own AwsChunkedWrapper, 1 MiB chunks, CRC32
    trailer), with a Content-Length and, streamed from a generator, without one."""
    data = os.urandom(3 * MiB + 17)
    headers = {"Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": str(len(data))}

    def framed() -> bytes:
        wrapper = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=Crc32Checksum,
                                    checksum_name="x-amz-checksum-crc32")
        return bytes(wrapper.read())
    body = framed()
    url = f"{cluster.endpoint}/s3/{bucket.name}/framed"
    assert requests.put(url, data=body, headers=headers, timeout=60).status_code == 200
    assert requests.put(url + "-streamed", data=(body[i:i + 100_000] for i in range(0, len(body), 100_000)),
                        headers=headers, timeout=60).status_code == 200
    for key in ("framed", "framed-streamed"):
        got = s3.get_object(Bucket=bucket.name, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == data and got["ETag"] == f'"{_md5(data)}"'
        assert got["ChecksumCRC32"] == _crc32_b64(data)


def test_aws_chunked_signed_framing(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    """Signed framing (chunk signatures) is decoded; the signatures are the proxy's to verify."""
    data = os.urandom(100_000)
    sig = "0" * 64
    body = b""
    for i in range(0, len(data), 40_000):
        piece = data[i:i + 40_000]
        body += f"{len(piece):x};chunk-signature={sig}\r\n".encode() + piece + b"\r\n"
    body += f"0;chunk-signature={sig}\r\n\r\n".encode()
    r = requests.put(f"{cluster.endpoint}/s3/{bucket.name}/signed", data=body, timeout=30,
                     headers={"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
                              "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
    assert r.status_code == 200, r.text
    assert requests.get(f"{cluster.endpoint}/s3/{bucket.name}/signed", timeout=30).content == data


# --- copy -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("same_target", [True, False])
def test_copy_object_copy_and_replace(cluster, s3, bucket, bucket2, same_target: bool) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(200_000)
    s3.put_object(Bucket=bucket.name, Key="src", Body=data, Metadata={"n": "1"}, ContentType="image/png")
    dst, rep = _keys(cluster, bucket2.name, (bucket.name, "src"), same_target, 2)
    r = s3.copy_object(Bucket=bucket2.name, Key=dst, CopySource={"Bucket": bucket.name, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == f'"{_md5(data)}"'
    got = s3.get_object(Bucket=bucket2.name, Key=dst, ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["Metadata"] == {"n": "1"} and got["ContentType"] == "image/png"
    assert got["ChecksumCRC32"] == _crc32_b64(data)
    s3.copy_object(Bucket=bucket2.name, Key=rep, CopySource=f"/{bucket.name}/src",
                   MetadataDirective="REPLACE", Metadata={"new": "yes"}, ContentType="text/plain")
    got = s3.get_object(Bucket=bucket2.name, Key=rep)
    assert got["Body"].read() == data and got["Metadata"] == {"new": "yes"} and got["ContentType"] == "text/plain"


@pytest.mark.parametrize("same_target", [True, False])
def test_copy_object_errors(cluster, s3, bucket, same_target: bool) -> None:  # type: ignore[no-untyped-def]
    etag = s3.put_object(Bucket=bucket.name, Key="a", Body=b"abc")["ETag"]
    [dst] = _keys(cluster, bucket.name, (bucket.name, "a"), same_target)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket.name, Key="a", CopySource={"Bucket": bucket.name, "Key": "a"})
    assert _code(e) == "InvalidRequest"
    s3.copy_object(Bucket=bucket.name, Key="a", CopySource={"Bucket": bucket.name, "Key": "a"},
                   MetadataDirective="REPLACE", Metadata={"k": "v"})
    assert s3.head_object(Bucket=bucket.name, Key="a")["Metadata"] == {"k": "v"}
    etag = s3.head_object(Bucket=bucket.name, Key="a")["ETag"]
    with pytest.raises(ClientError) as e:  # a missing source (where `dst` will be) onto "a"
        s3.copy_object(Bucket=bucket.name, Key="a", CopySource={"Bucket": bucket.name, "Key": dst})
    assert _code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket.name, Key=dst, CopySource={"Bucket": "no-such-bucket-xyz", "Key": "a"})
    assert _code(e) == "NoSuchBucket"
    for cond in ({"CopySourceIfMatch": '"different"'}, {"CopySourceIfNoneMatch": etag},
                 {"CopySourceIfModifiedSince": datetime.now(timezone.utc) + timedelta(days=1)},
                 {"CopySourceIfUnmodifiedSince": datetime.now(timezone.utc) - timedelta(days=1)}):
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket.name, Key=dst, CopySource={"Bucket": bucket.name, "Key": "a"}, **cond)
        assert _code(e) == "PreconditionFailed" and _status(e) == 412
    s3.copy_object(Bucket=bucket.name, Key=dst, CopySource={"Bucket": bucket.name, "Key": "a", "VersionId": "null"},
                   CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=bucket.name, Key=dst)["Body"].read() == b"abc"


# --- multipart ------------------------------------------------------------------------------------------

def _upload_parts(s3, bucket: str, key: str, upload_id: str, parts: list[bytes]) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    out = []
    for n, data in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)
        assert r["ETag"] == f'"{_md5(data)}"'
        out.append({"PartNumber": n, "ETag": r["ETag"]})
    return out


def _mpu_etag(parts: list[bytes]) -> str:
    return f'"{hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()}-{len(parts)}"'


def test_multipart_upload(s3, client, bucket) -> None:  # type: ignore[no-untyped-def]
    key = "mpu/obj"
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=bucket.name, Key=key, Metadata={"who": "mpu"}, ContentType="video/mp4")
    uid = up["UploadId"]
    assert up["Bucket"] == bucket.name and up["Key"] == key and len(uid) == 32
    done = _upload_parts(s3, bucket.name, key, uid, parts)
    listed = s3.list_multipart_uploads(Bucket=bucket.name, Prefix="mpu/")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [(key, uid)]
    page = s3.list_parts(Bucket=bucket.name, Key=key, UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2] and page["IsTruncated"]
    assert page["Parts"][0]["Size"] == 5 * MiB and page["Parts"][0]["ETag"] == done[0]["ETag"]
    page = s3.list_parts(Bucket=bucket.name, Key=key, UploadId=uid, PartNumberMarker=page["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in page["Parts"]] == [3] and not page["IsTruncated"]
    r = s3.complete_multipart_upload(Bucket=bucket.name, Key=key, UploadId=uid, MultipartUpload={"Parts": done})
    assert r["ETag"] == _mpu_etag(parts) and r["Key"] == key
    got = s3.get_object(Bucket=bucket.name, Key=key)
    assert got["Body"].read() == b"".join(parts) and got["ETag"] == _mpu_etag(parts)
    assert got["Metadata"] == {"who": "mpu"} and got["ContentType"] == "video/mp4"
    assert s3.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket.name, Key=key, UploadId=uid)
    assert _code(e) == "NoSuchUpload"
    # the same object through the native API
    assert client.bucket(bucket.name).object(key).get_reader().read_all() == b"".join(parts)


def test_multipart_errors(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    key = "mpu/bad"
    parts = [os.urandom(5 * MiB), os.urandom(100), os.urandom(100)]
    uid = s3.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
    done = _upload_parts(s3, bucket.name, key, uid, parts)
    cases = [
        ([{**done[0], "ETag": '"' + "0" * 32 + '"'}, done[1]], "InvalidPart"),
        ([done[0], {"PartNumber": 7, "ETag": done[1]["ETag"]}], "InvalidPart"),
        ([done[1], done[0]], "InvalidPartOrder"),
        ([done[0], done[1], done[2]], "EntityTooSmall"),
    ]
    for listed, code in cases:
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket.name, Key=key, UploadId=uid,
                                         MultipartUpload={"Parts": listed})
        assert _code(e) == code and _status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket.name, Key=key, UploadId=uid, PartNumber=10001, Body=b"x")
    assert _code(e) == "InvalidArgument"
    # only the listed parts make the object (part 3 is dropped)
    s3.complete_multipart_upload(Bucket=bucket.name, Key=key, UploadId=uid, MultipartUpload={"Parts": done[:2]})
    assert s3.get_object(Bucket=bucket.name, Key=key)["Body"].read() == parts[0] + parts[1]

    uid = s3.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
    _upload_parts(s3, bucket.name, key, uid, [b"x"])
    assert s3.abort_multipart_upload(Bucket=bucket.name, Key=key, UploadId=uid)["ResponseMetadata"][
        "HTTPStatusCode"] == 204
    for call in (lambda: s3.abort_multipart_upload(Bucket=bucket.name, Key=key, UploadId=uid),
                 lambda: s3.upload_part(Bucket=bucket.name, Key=key, UploadId=uid, PartNumber=1, Body=b"x"),
                 lambda: s3.list_parts(Bucket=bucket.name, Key=key, UploadId=uid),
                 lambda: s3.list_parts(Bucket=bucket.name, Key=key, UploadId="not-an-id")):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e) == "NoSuchUpload" and _status(e) == 404


def test_upload_file_multipart(s3, bucket, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """s3transfer: CRC32 checksums per part (its default), concurrent parts, ranged download."""
    src = tmp_path / "src.bin"
    data = os.urandom(30 * MiB)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(str(src), bucket.name, "big/file", Config=cfg)
    head = s3.head_object(Bucket=bucket.name, Key="big/file", ChecksumMode="ENABLED")
    chunks = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert head["ETag"] == _mpu_etag(chunks) and head["ContentLength"] == len(data)
    assert head["ChecksumCRC32"].endswith("-6")
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket.name, "big/file", str(dst), Config=cfg)
    assert dst.read_bytes() == data


@pytest.mark.parametrize("same_target", [True, False])
def test_upload_part_copy(cluster, s3, bucket, bucket2, same_target: bool) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket.name, Key="copy-src", Body=data)
    [key] = _keys(cluster, bucket2.name, (bucket.name, "copy-src"), same_target)
    uid = s3.create_multipart_upload(Bucket=bucket2.name, Key=key)["UploadId"]
    cut = 5 * MiB
    source = {"Bucket": bucket.name, "Key": "copy-src"}
    p1 = s3.upload_part_copy(Bucket=bucket2.name, Key=key, UploadId=uid, PartNumber=1, CopySource=source,
                             CopySourceRange=f"bytes=0-{cut - 1}")
    p2 = s3.upload_part_copy(Bucket=bucket2.name, Key=key, UploadId=uid, PartNumber=2, CopySource=source,
                             CopySourceRange=f"bytes={cut}-{len(data) - 1}")
    assert p1["CopyPartResult"]["ETag"] == f'"{_md5(data[:cut])}"'
    for bad in (f"bytes=0-{len(data)}", "bytes=5-1", "bytes=-5", "bytes=0-"):
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=bucket2.name, Key=key, UploadId=uid, PartNumber=3, CopySource=source,
                                CopySourceRange=bad)
        assert _code(e) == "InvalidArgument", bad
    p3 = s3.upload_part_copy(Bucket=bucket2.name, Key=key, UploadId=uid, PartNumber=3, CopySource=source)
    assert p3["CopyPartResult"]["ETag"] == f'"{_md5(data)}"'
    parts = [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
             {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]
    r = s3.complete_multipart_upload(Bucket=bucket2.name, Key=key, UploadId=uid, MultipartUpload={"Parts": parts})
    assert r["ETag"] == _mpu_etag([data[:cut], data[cut:]])
    assert s3.get_object(Bucket=bucket2.name, Key=key)["Body"].read() == data


def test_complete_rejects_bad_xml(cluster, s3, bucket) -> None:  # type: ignore[no-untyped-def]
    key = "xml"
    uid = s3.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
    url = f"{cluster.endpoint}/s3/{bucket.name}/{key}?uploadId={uid}"
    bomb = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&b;</ETag></Part>"
            b"</CompleteMultipartUpload>")
    huge = b"<CompleteMultipartUpload>" + b"<Part></Part>" * 100_000 + b"</CompleteMultipartUpload>"
    for body in (bomb, huge, b"<CompleteMultipartUpload><Part>", b"<CompleteMultipartUpload/>",
                 b"<Other/>", b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part>"
                             b"</CompleteMultipartUpload>"):
        r = requests.post(url, data=body, timeout=30)
        assert r.status_code == 400 and b"<Code>MalformedXML</Code>" in r.content, body[:60]
    s3.abort_multipart_upload(Bucket=bucket.name, Key=key, UploadId=uid)


# --- both APIs, unsupported -------------------------------------------------------------------------------

def test_native_and_s3_see_the_same_objects(s3, client, bucket) -> None:  # type: ignore[no-untyped-def]
    native = os.urandom(150_000)
    bucket.object("from/native").get_writer().put_content(native)
    got = s3.get_object(Bucket=bucket.name, Key="from/native")
    assert got["Body"].read() == native and got["ETag"]
    assert s3.head_object(Bucket=bucket.name, Key="from/native")["ETag"] == got["ETag"]
    viaS3 = os.urandom(150_000)
    s3.put_object(Bucket=bucket.name, Key="from/s3", Body=viaS3, Metadata={"k": "v"}, ContentType="text/x")
    obj = client.bucket(bucket.name).object("from/s3")
    assert obj.get_reader().read_all() == viaS3
    props = obj.head(props="custom,etag")
    assert props.custom_metadata == {"k": "v", "s3:content-type": "text/x"}
    obj.delete()
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket.name, Key="from/s3")
    assert _status(e) == 404


def test_unsupported_subresources(s3, bucket) -> None:  # type: ignore[no-untyped-def]
    s3.put_object(Bucket=bucket.name, Key="u", Body=b"u")
    for call in (lambda: s3.get_object_acl(Bucket=bucket.name, Key="u"),
                 lambda: s3.get_object_tagging(Bucket=bucket.name, Key="u"),
                 lambda: s3.put_object_tagging(Bucket=bucket.name, Key="u", Tagging={"TagSet": []}),
                 lambda: s3.get_object(Bucket=bucket.name, Key="u", VersionId="3")):
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e) == "NotImplemented" and _status(e) == 501


@pytest.mark.parametrize("size", [SMALL_PUT_BYTES, SMALL_PUT_BYTES + 1, 8 * MiB + 3])
def test_put_payload_hash_and_etag_in_one_hop_or_streamed(cluster, s3, client, bucket, size: int) -> None:  # type: ignore[no-untyped-def]
    """A PutObject body up to SMALL_PUT_BYTES is stored in one pool hop, above it streamed: the
    x-amz-content-sha256 is verified, the ETag is the MD5 and the native checksum the xxhash,
    either way; a body that does not match its declared SHA-256 leaves the object as it was."""
    data = os.urandom(size)
    key = f"hop/{size}"
    put = s3.put_object(Bucket=bucket.name, Key=key, Body=data)   # boto3 signs the payload's SHA-256 over http
    assert put["ETag"] == f'"{_md5(data)}"'
    url = f"{cluster.endpoint}/s3/{bucket.name}/{key}"
    other = os.urandom(size)
    r = requests.put(url, data=other, headers={"x-amz-content-sha256": hashlib.sha256(data).hexdigest()}, timeout=60)
    assert r.status_code == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in r.content, r.text
    got = s3.get_object(Bucket=bucket.name, Key=key)
    assert got["Body"].read() == data and got["ETag"] == put["ETag"]
    r = requests.put(url, data=other, headers={"x-amz-content-sha256": hashlib.sha256(other).hexdigest()}, timeout=60)
    assert r.status_code == 200 and r.headers["ETag"] == f'"{_md5(other)}"', r.text
    r = requests.put(url, data=data, headers={"x-amz-content-sha256": "not-a-hash"}, timeout=60)   # anonymous too
    assert r.status_code == 400 and b"<Code>InvalidArgument</Code>" in r.content, r.text
    props = client.bucket(bucket.name).object(key).head(props="checksum,version,size")
    assert (props.checksum_value, props.obj_version, props.size) == (xxhash.xxh64(other).hexdigest(), "2", size)
    assert s3.get_object(Bucket=bucket.name, Key=key)["Body"].read() == other
