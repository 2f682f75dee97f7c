"""ais.client error mapping: status and message -> one class of the tree (errors.py)."""

from __future__ import annotations

import json

import pytest

from ais.client import errors as e
from ais.client.core import to_bucket


def wire(message: str, status: int) -> bytes:
    return json.dumps({"tcode": "x", "message": message, "node": "t[abc]", "status": status}).encode()


@pytest.mark.parametrize("status,message,cls", [
    (404, 'p[x]: bucket "ais://abc" does not exist', e.BucketNotFound),
    (404, "t[x]: ais://abc/dir/obj does not exist", e.ObjectNotFound),
    (404, "t[x]: s3://abc/obj does not exist", e.ObjectNotFound),
    (404, "p[x]: etl job my-etl does not exist", e.EtlNotFound),
    (404, "no such route: Not Found", e.NotFound),
    (409, 'p[x]: bucket "ais://abc" already exists', e.BucketExists),
    (409, "p[x]: etl job my-etl already exists", e.EtlExists),
    (409, "version mismatch", e.Conflict),
    (400, "invalid object name", e.BadRequest),
    (403, "forbidden", e.AccessDenied),
    (401, "no token", e.AccessDenied),
    (416, "range not satisfiable", e.RangeNotSatisfiable),
    (429, "rate limit", e.Throttled),
    (503, "not ready", e.Throttled),
    (507, "out of space", e.InsufficientStorage),
    (500, "boom", e.ServerError),
    (502, "bad gateway", e.ServerError),
])
def test_status_and_message_pick_the_class(status: int, message: str, cls: type[e.StatusError]) -> None:
    err = e.from_response(status, wire(message, status), {}, "http://x/v1/objects/abc/obj")
    assert type(err) is cls
    assert err.status == status and err.message == message and err.node == "t[abc]"
    assert isinstance(err, e.StatusError) and isinstance(err, e.ClientError)


def test_head_errors_come_in_the_hdr_error_header() -> None:
    hdr = wire("t[x]: ais://b/o does not exist", 404).decode()
    err = e.from_response(404, b"", {"hdr-error": hdr})
    assert isinstance(err, e.ObjectNotFound) and "ais://b/o" in err.message


def test_non_json_bodies_keep_their_text() -> None:
    err = e.from_response(502, b"<html>upstream died</html>", {})
    assert isinstance(err, e.ServerError) and "upstream died" in err.message
    assert e.from_response(500, b"", {}).message == "HTTP 500"


def test_throttled_carries_retry_after() -> None:
    err = e.from_response(429, wire("slow down", 429), {"retry-after": "3"})
    assert isinstance(err, e.Throttled) and err.retry_after_s == 3.0
    assert e.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert e.parse_retry_after("-1") is None and e.parse_retry_after("0.5") == 0.5


def test_the_tree_is_one_tree() -> None:
    for name in ("ConnectError", "RequestTimeout", "ReadError"):
        assert issubclass(getattr(e, name), e.TransportError)
    for name in ("BucketNotFound", "ObjectNotFound", "EtlNotFound"):
        assert issubclass(getattr(e, name), e.NotFound)
    for cls in (e.StreamConsumed, e.DecodeError, e.WaitTimeout, e.InvalidName, e.StatusError, e.TransportError):
        assert issubclass(cls, e.ClientError)
    # every class in the module is drawn in the docstring
    drawn = e.__doc__ or ""
    classes = [n for n, v in vars(e).items() if isinstance(v, type) and issubclass(v, e.ClientError)]
    assert classes and all(n in drawn for n in classes)


def test_bucket_names_parse_and_bad_ones_raise_invalid_name() -> None:
    assert to_bucket("abc").provider == "ais"
    assert to_bucket("s3://abc").provider == "aws"
    b = to_bucket("ais://@uu#ns/abc")
    assert (b.name, b.namespace.uuid, b.namespace.name) == ("abc", "uu", "ns")
    with pytest.raises(e.InvalidName):
        to_bucket("bad name!")
    with pytest.raises(ValueError):      # InvalidName is also a ValueError
        to_bucket("nope://abc")
