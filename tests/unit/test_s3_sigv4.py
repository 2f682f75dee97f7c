"""SigV4/SigV2 parsing and verification (ais.s3.sigv4) and S3 errors (ais.s3.errors).

Requests are signed by botocore itself (its signers, and a real boto3 client whose requests are
captured before they are sent), and checked against the AWS documentation's worked examples.
"""

from __future__ import annotations

import calendar
import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import HmacV1Auth, S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from multidict import CIMultiDict

from ais import errors as native
from ais.s3 import errors, sigv4

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "http://127.0.0.1:9/s3"

Signed = tuple[str, str, str, dict[str, str]]


def _request_parts(method: str, url: str, headers: Any) -> Signed:
    parts = urlsplit(url)
    flat = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    flat.setdefault("Host", parts.netloc)
    return method, parts.path, parts.query, flat


def sign(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"",
         secret: str = SK) -> Signed:
    """A request signed with botocore's S3 SigV4 header signer."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    S3SigV4Auth(Credentials(AK, secret), "s3", "us-east-1").add_auth(request)
    return _request_parts(method, request.url, request.headers)


def presign(method: str, url: str, expires: int = 3600) -> Signed:
    """A presigned URL from botocore's S3 SigV4 query signer."""
    request = AWSRequest(method=method, url=url)
    S3SigV4QueryAuth(Credentials(AK, SK), "s3", "us-east-1", expires=expires).add_auth(request)
    return _request_parts(method, request.url, {})


def verify(signed: Signed, secret: str = SK, now: float | None = None) -> sigv4.SigV4Auth:
    auth = sigv4.parse(*signed)
    assert isinstance(auth, sigv4.SigV4Auth)
    sigv4.verify(auth, secret, now)
    return auth


def _short_circuit(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    class _Raw:
        def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
            yield b""
    return AWSResponse(request.url, 200, {}, _Raw())


@pytest.fixture(scope="module")
def client() -> Any:
    """A real boto3 client whose requests are kept (in `client.sent`) instead of sent."""
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=AK, aws_secret_access_key=SK,
                      region_name="us-east-1",
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    sent: list[AWSPreparedRequest] = []

    def keep(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        return _short_circuit(request)

    s3.meta.events.register("before-send.s3", keep)
    s3.sent = sent
    return s3


def last_sent(client: Any) -> Signed:
    request = client.sent[-1]
    return _request_parts(request.method, request.url, request.headers)


KEYS = ["plain.txt", "dir/sub/file", "with space", "unicode-ü-日本", "plus+sign", "tilde~x",
        "!*'()", "percent%20literal", "eq=amp&semi;", "a//double", "colon:at@dollar$comma,",
        "trailing/"]


# Header auth ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", KEYS)
def test_boto3_object_requests_verify(client: Any, key: str) -> None:
    client.put_object(Bucket="bkt", Key=key, Body=b"data", Metadata={"m": "  spaced   value "})
    auth = verify(last_sent(client))
    assert auth.access_key == AK and auth.region == "us-east-1" and not auth.is_presigned
    assert auth.payload_hash == hashlib.sha256(b"data").hexdigest()
    sigv4.check_payload_sha256(auth, hashlib.sha256(b"data").hexdigest())
    client.get_object(Bucket="bkt", Key=key, Range="bytes=0-9")
    verify(last_sent(client))


def test_boto3_bucket_requests_verify(client: Any) -> None:
    client.list_objects_v2(Bucket="bkt", Prefix="a/b c", Delimiter="/", StartAfter="ü")
    assert "prefix=a%2Fb%20c" in last_sent(client)[2]
    verify(last_sent(client))
    client.create_multipart_upload(Bucket="bkt", Key="k")
    assert last_sent(client)[2] == "uploads"
    verify(last_sent(client))
    client.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    verify(last_sent(client))
    client.head_bucket(Bucket="bkt")
    verify(last_sent(client))


@pytest.mark.parametrize("query", ["uploads", "list-type=2&prefix=a%2Fb", "acl=&versionId=",
                                   "b=2&a=1&a=0", "prefix=%7Etilde&x=%e2%82%ac", "delete"])
def test_raw_query_strings_verify(query: str) -> None:
    verify(sign("GET", f"{ENDPOINT}/bkt?{query}"))


def test_repeated_headers_are_joined_with_commas() -> None:
    method, path, query, headers = sign("GET", f"{ENDPOINT}/bkt/k", {"X-Amz-Meta-A": "x"})
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/bkt/k", headers={"X-Amz-Meta-A": "1"})
    request.headers.add_header("X-Amz-Meta-A", "  2   3 ")
    S3SigV4Auth(Credentials(AK, SK), "s3", "us-east-1").add_auth(request)
    multi: CIMultiDict[str] = CIMultiDict(Host="127.0.0.1:9")
    for name, value in request.headers.raw_items():
        multi.add(name, value)
    verify(("GET", path, query, multi))  # type: ignore[arg-type]


def test_date_header_instead_of_x_amz_date() -> None:
    signed = sign("GET", f"{ENDPOINT}/bkt/k", {"Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert "X-Amz-Date" not in signed[3]
    auth = verify(signed)
    assert auth.amz_date[:8] == time.strftime("%Y%m%d", time.gmtime())


def test_literal_encoding_of_a_lenient_client_verifies() -> None:
    """A client that leaves `!` and `(` raw and signs them raw is still accepted."""
    verify(sign("GET", f"{ENDPOINT}/bkt/a!b(c)?prefix=x!y"))


@pytest.mark.parametrize("tamper", ["method", "path", "query", "header", "secret", "payload",
                                    "signature"])
def test_tampered_requests_fail(tamper: str) -> None:
    method, path, query, headers = sign("PUT", f"{ENDPOINT}/bkt/key?x=1", {"X-Amz-Meta-A": "v"},
                                        body=b"body")
    secret = SK
    if tamper == "method":
        method = "POST"
    elif tamper == "path":
        path = path.replace("key", "kez")
    elif tamper == "query":
        query = "x=2"
    elif tamper == "header":
        headers["X-Amz-Meta-A"] = "w"
    elif tamper == "secret":
        secret = SK + "x"
    elif tamper == "payload":
        headers["X-Amz-Content-SHA256"] = sigv4.UNSIGNED_PAYLOAD
    else:
        last = headers["Authorization"][-1]    # flip the last hex digit (never a no-op)
        headers["Authorization"] = headers["Authorization"][:-1] + ("1" if last == "0" else "0")
    with pytest.raises(errors.SignatureDoesNotMatch) as info:
        verify((method, path, query, headers), secret)
    assert info.value.status == 403 and info.value.code == "SignatureDoesNotMatch"
    if tamper != "signature":
        assert "CanonicalRequest" in info.value.details


def test_missing_signed_header_fails() -> None:
    method, path, query, headers = sign("GET", f"{ENDPOINT}/bkt/k", {"X-Amz-Meta-A": "v"})
    del headers["X-Amz-Meta-A"]
    with pytest.raises(errors.SignatureDoesNotMatch, match="x-amz-meta-a"):
        verify((method, path, query, headers))


def test_clock_skew() -> None:
    signed = sign("GET", f"{ENDPOINT}/bkt/k")
    verify(signed, now=time.time() + 14 * 60)
    for offset in (16 * 60, -16 * 60):
        with pytest.raises(errors.RequestTimeTooSkewed) as info:
            verify(signed, now=time.time() + offset)
        assert info.value.status == 403 and "ServerTime" in info.value.details


def test_payload_hash_mismatch() -> None:
    auth = verify(sign("PUT", f"{ENDPOINT}/bkt/k", body=b"body"))
    with pytest.raises(errors.XAmzContentSHA256Mismatch) as info:
        sigv4.check_payload_sha256(auth, hashlib.sha256(b"other").hexdigest())
    assert info.value.status == 400


# Presigned --------------------------------------------------------------------------------

@pytest.mark.parametrize("key", KEYS)
def test_boto3_presigned_urls_verify(client: Any, key: str) -> None:
    for op in ("get_object", "put_object"):
        url = client.generate_presigned_url(op, Params={"Bucket": "bkt", "Key": key}, ExpiresIn=600)
        auth = verify(_request_parts("GET" if op == "get_object" else "PUT", url, {}))
        assert auth.is_presigned and auth.expires_s == 600
        assert auth.payload_hash == sigv4.UNSIGNED_PAYLOAD and not auth.is_streaming


def test_presigned_with_extra_query_and_tampering() -> None:
    method, path, query, headers = presign("GET", f"{ENDPOINT}/bkt/k?versionId=v1&response-content-type=a%2Fb")
    verify((method, path, query, headers))
    for bad in (query.replace("versionId=v1", "versionId=v2"), query + "&extra=1",
                query.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601")):
        with pytest.raises(errors.SignatureDoesNotMatch):
            verify((method, path, bad, headers))
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(("PUT", path, query, headers))


def test_presigned_expiry() -> None:
    signed = presign("GET", f"{ENDPOINT}/bkt/k", expires=60)
    verify(signed, now=time.time() + 50)
    with pytest.raises(errors.RequestExpired) as info:
        verify(signed, now=time.time() + 120)
    assert info.value.status == 403 and info.value.code == "AccessDenied"
    assert b"<Message>Request has expired</Message>" in info.value.to_xml("rid")
    with pytest.raises(errors.AccessDenied, match="not valid yet"):
        verify(signed, now=time.time() - 3600)


def test_presigned_expires_bounds() -> None:
    method, path, query, headers = presign("GET", f"{ENDPOINT}/bkt/k", expires=7 * 24 * 3600)
    verify((method, path, query, headers))
    for bad in ("604801", "0", "-5", "abc", "٣"):
        with pytest.raises(errors.AuthorizationQueryParametersError):
            sigv4.parse(method, path, query.replace("X-Amz-Expires=604800", f"X-Amz-Expires={bad}"), headers)


def test_presigned_missing_params() -> None:
    method, path, query, headers = presign("GET", f"{ENDPOINT}/bkt/k")
    no_sig = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    with pytest.raises(errors.AuthorizationQueryParametersError, match="X-Amz-Signature"):
        sigv4.parse(method, path, no_sig, headers)


# The AWS documentation's worked examples (sig-v4-header-based-auth, sigv4-query-string-auth)

AWS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = calendar.timegm((2013, 5, 24, 0, 0, 0))
AWS_CREDENTIAL = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"


def test_aws_example_get_object() -> None:
    headers = {
        "Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256, "x-amz-date": "20130524T000000Z",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={AWS_CREDENTIAL},SignedHeaders=host;range;"
                         "x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed3"
                         "10bd44f0170aba48dd91039c6036bdb41"}
    verify(("GET", "/test.txt", "", headers), AWS_KEY, AWS_NOW)
    headers["Range"] = "bytes=0-10"
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(("GET", "/test.txt", "", headers), AWS_KEY, AWS_NOW)


def test_aws_example_presigned() -> None:
    query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
             "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
             "X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c"
             "265957d157751f604d404")
    signed = ("GET", "/test.txt", query, {"Host": "examplebucket.s3.amazonaws.com"})
    verify(signed, AWS_KEY, AWS_NOW + 86400)
    with pytest.raises(errors.RequestExpired):
        verify(signed, AWS_KEY, AWS_NOW + 86401)


# Other schemes and malformed auth ---------------------------------------------------------

def test_anonymous_is_none() -> None:
    assert sigv4.parse("GET", "/bkt/k", "list-type=2", {"Host": "h"}) is None


def test_sigv2_header_and_query_name_the_caller(client: Any) -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/bkt/k")
    HmacV1Auth(Credentials(AK, SK)).add_auth(request)
    auth = sigv4.parse(*_request_parts("GET", request.url, request.headers))
    assert isinstance(auth, sigv4.SigV2Auth) and auth.access_key == AK and not auth.is_presigned
    v2 = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=AK, aws_secret_access_key=SK,
                      region_name="us-east-1", config=Config(signature_version="s3"))
    url = v2.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"})
    auth = sigv4.parse(*_request_parts("GET", url, {}))
    assert isinstance(auth, sigv4.SigV2Auth) and auth.access_key == AK and auth.is_presigned


@pytest.mark.parametrize("authorization, error", [
    ("AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=host",
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=AK/2024/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab",
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=ab",
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab",
     errors.AuthorizationHeaderMalformed),
    ("AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=ab",
     errors.AuthorizationHeaderMalformed),
    ("Bearer token", errors.InvalidArgument),
    ("AWS nocolon", errors.AuthorizationHeaderMalformed),
])
def test_malformed_authorization(authorization: str, error: type[errors.S3Error]) -> None:
    headers = {"Host": "h", "X-Amz-Date": "20240101T000000Z", "Authorization": authorization,
               "X-Amz-Content-SHA256": sigv4.UNSIGNED_PAYLOAD}
    with pytest.raises(error) as info:
        sigv4.parse("GET", "/b/k", "", headers)
    assert info.value.status == 400


def test_header_requirements() -> None:
    method, path, query, headers = sign("GET", f"{ENDPOINT}/bkt/k")
    with pytest.raises(errors.InvalidRequest, match="x-amz-content-sha256"):
        sigv4.parse(method, path, query, {k: v for k, v in headers.items() if k != "X-Amz-Content-SHA256"})
    with pytest.raises(errors.InvalidArgument):
        sigv4.parse(method, path, query, {**headers, "X-Amz-Content-SHA256": "nope"})
    with pytest.raises(errors.AccessDenied, match="Date"):
        sigv4.parse(method, path, query, {k: v for k, v in headers.items() if k != "X-Amz-Date"})
    with pytest.raises(errors.InvalidArgument, match="Only one auth"):
        sigv4.parse(method, path, "X-Amz-Algorithm=AWS4-HMAC-SHA256", headers)


def test_parse_query_and_split_target() -> None:
    assert sigv4.split_target("/s3/b/k?uploads&x=a%2Fb+c") == ("/s3/b/k", "uploads&x=a%2Fb+c")
    assert sigv4.parse_query("uploads&x=a%2Fb+c&&y=") == [("uploads", ""), ("x", "a/b c"), ("y", "")]


# Errors -----------------------------------------------------------------------------------

def test_error_classes_carry_codes_and_statuses() -> None:
    expected = {
        errors.AccessDenied: 403, errors.SignatureDoesNotMatch: 403, errors.InvalidAccessKeyId: 403,
        errors.RequestTimeTooSkewed: 403, errors.RequestExpired: 403,
        errors.AuthorizationHeaderMalformed: 400, errors.InvalidArgument: 400, errors.InvalidRequest: 400,
        errors.MalformedXML: 400, errors.InvalidDigest: 400, errors.BadDigest: 400,
        errors.XAmzContentSHA256Mismatch: 400, errors.IncompleteBody: 400,
        errors.InvalidChunkSizeError: 400, errors.EntityTooLarge: 400, errors.InvalidPart: 400,
        errors.InvalidPartOrder: 400, errors.NoSuchBucket: 404, errors.NoSuchKey: 404,
        errors.NoSuchUpload: 404, errors.BucketAlreadyOwnedByYou: 409, errors.BucketNotEmpty: 409,
        errors.InvalidRange: 416, errors.PreconditionFailed: 412, errors.S3NotImplemented: 501,
        errors.SlowDown: 503, errors.S3MethodNotAllowed: 405, errors.ExpiredToken: 400,
    }
    for cls, status in expected.items():
        err = cls()
        assert isinstance(err, native.AisError) and err.status == status and err.message
        assert err.code == err.s3_code
    assert errors.S3NotImplemented.s3_code == "NotImplemented"
    assert errors.error_class("NoSuchKey") is errors.NoSuchKey
    assert errors.error_class("AccessDenied") is errors.AccessDenied
    assert errors.error_class("Whatever") is errors.S3Error


def test_error_xml() -> None:
    body = errors.s3_error_xml("NoSuchKey", "a <b> & \x01c", "/bkt/k&y", "rid-1", extra={"Key": "k&y"})
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>')
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["Code", "Message", "Key", "Resource", "RequestId"]
    assert root.findtext("Message") == "a <b> & \ufffdc" and root.findtext("Resource") == "/bkt/k&y"
    err = errors.NoSuchBucket(resource="/bkt")
    assert ET.fromstring(err.to_xml("r")).findtext("Code") == "NoSuchBucket"


def test_native_errors_translate() -> None:
    cases = [(native.BucketNotFound("ais://b"), errors.NoSuchBucket),
             (native.ObjectNotFound("ais://b/o"), errors.NoSuchKey),
             (native.BucketExists("ais://b"), errors.BucketAlreadyOwnedByYou),
             (native.InvalidName("bad"), errors.InvalidArgument),
             (native.RangeNotSatisfiable("r"), errors.InvalidRange),
             (native.TooManyRequests("t"), errors.SlowDown),
             (native.NotImplementedErr("n"), errors.S3NotImplemented),
             (native.AisError("boom"), errors.S3Error)]
    for err, cls in cases:
        s3 = errors.s3_error_from(err)
        assert type(s3) is cls and s3.message == err.message
    same = errors.NoSuchKey()
    assert errors.s3_error_from(same) is same


def test_non_hex_signatures_fail_cleanly() -> None:
    method, path, query, headers = sign("GET", f"{ENDPOINT}/bkt/k")
    for bad in ("é" * 64, "0" * 63, "Z" * 64):
        forged = headers | {"Authorization": headers["Authorization"].rsplit("=", 1)[0] + "=" + bad}
        with pytest.raises(errors.SignatureDoesNotMatch):
            verify((method, path, query, forged))
