"""Pure helpers of the target's S3 handlers (target.s3): conditionals, copy sources, metadata,
ranges and CompleteMultipartUpload validation."""

from __future__ import annotations

import hashlib
from xml.etree import ElementTree

import pytest
from multidict import CIMultiDict

from ais.names import Bucket
from ais.s3.errors import (EntityTooSmall, InvalidArgument, InvalidPart, InvalidPartOrder, InvalidRange,
                           MalformedXML)
from target import s3

pytestmark = pytest.mark.timeout(10)

ETAG = "0123456789abcdef0123456789abcdef"
MTIME_NS = 1_700_000_000 * 1_000_000_000  # Tue, 14 Nov 2023 22:13:20 GMT
BEFORE, AT, AFTER = "Tue, 14 Nov 2023 22:13:19 GMT", "Tue, 14 Nov 2023 22:13:20 GMT", "Tue, 14 Nov 2023 22:13:21 GMT"


@pytest.mark.parametrize("headers, outcome", [
    ({}, 0),
    ({"If-Match": f'"{ETAG}"'}, 0),
    ({"If-Match": f'"other", "{ETAG}"'}, 0),
    ({"If-Match": "*"}, 0),
    ({"If-Match": '"other"'}, 412),
    ({"If-Unmodified-Since": AT}, 0),
    ({"If-Unmodified-Since": BEFORE}, 412),
    ({"If-Match": f'"{ETAG}"', "If-Unmodified-Since": BEFORE}, 0),   # If-Match wins
    ({"If-None-Match": f'W/"{ETAG}"'}, 304),
    ({"If-None-Match": '"other"'}, 0),
    ({"If-Modified-Since": AT}, 304),
    ({"If-Modified-Since": BEFORE}, 0),
    ({"If-None-Match": '"other"', "If-Modified-Since": AFTER}, 0),     # If-None-Match wins
    ({"If-None-Match": f'"{ETAG}"', "If-Modified-Since": BEFORE}, 304),
    ({"If-Match": '"other"', "If-None-Match": f'"{ETAG}"'}, 412),      # 412 before 304
    ({"If-Modified-Since": "not a date"}, 0),                          # unparseable: ignored
])
def test_preconditions(headers: dict[str, str], outcome: int) -> None:
    assert s3.preconditions(CIMultiDict(headers), ETAG, MTIME_NS + 123) == outcome


@pytest.mark.parametrize("value, expected", [
    ("b/k", ("b", "k")),
    ("/b/dir/k", ("b", "dir/k")),
    ("/b/a%20b%2Bc%3Fd", ("b", "a b+c?d")),
    ("b/k?versionId=null", ("b", "k")),
    ("b/%E2%82%AC", ("b", "€")),
])
def test_parse_copy_source(value: str, expected: tuple[str, str]) -> None:
    assert s3.parse_copy_source(value) == (Bucket(expected[0]), expected[1])


@pytest.mark.parametrize("value", ["b", "/b/", "", "b/../x", "bad bucket/k"])
def test_parse_copy_source_rejects(value: str) -> None:
    with pytest.raises(InvalidArgument):
        s3.parse_copy_source(value)


def test_metadata_from_headers() -> None:
    headers = CIMultiDict([("X-Amz-Meta-Color", "blue"), ("x-amz-meta-color", "red"), ("Content-Type", "text/csv"),
                           ("Content-Encoding", "aws-chunked, gzip"), ("Cache-Control", "no-store"),
                           ("x-amz-metadata-directive", "REPLACE"), ("Authorization", "AWS4 ...")])
    assert s3.metadata_from_headers(headers) == {"color": "blue,red", "s3:content-type": "text/csv",
                                                 "s3:content-encoding": "gzip", "s3:cache-control": "no-store"}
    assert s3.metadata_from_headers(CIMultiDict({"Content-Encoding": "aws-chunked"})) == {}
    with pytest.raises(s3.MetadataTooLarge):
        s3.metadata_from_headers(CIMultiDict({"x-amz-meta-k": "v" * 2048}))


def test_range() -> None:
    headers: dict[str, str] = {}
    assert s3._range(None, 10, headers) == (200, 0, 10)
    assert s3._range("bytes=0-1,4-5", 10, headers) == (200, 0, 10)   # multi-range: whole object
    assert s3._range("items=0-1", 10, headers) == (200, 0, 10)
    assert s3._range("bytes=2-", 10, headers) == (206, 2, 8) and headers["Content-Range"] == "bytes 2-9/10"
    headers = {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-type": "FULL_OBJECT", "ETag": '"e"'}
    assert s3._range("bytes=-3", 10, headers) == (206, 7, 3)
    assert headers == {"ETag": '"e"', "Content-Range": "bytes 7-9/10"}  # no whole-object checksums on a range
    with pytest.raises(InvalidRange) as e:
        s3._range("bytes=10-", 10, headers)
    assert e.value.headers["Content-Range"] == "bytes */10"


def _complete_doc(parts: list[tuple[int, str]], ns: bool = True) -> ElementTree.Element:
    xmlns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' if ns else ""
    body = "".join(f"<Part><ETag>\"{e}\"</ETag><PartNumber>{n}</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32>"
                   f"</Part>" for n, e in parts)
    return ElementTree.fromstring(f"<CompleteMultipartUpload{xmlns}>{body}</CompleteMultipartUpload>")


def _part(n: int, size: int) -> s3._Part:
    return s3._Part(n, size, 0, hashlib.md5(str(n).encode()).hexdigest(), {})


def test_complete_validation() -> None:
    parts = {1: _part(1, 5 << 20), 2: _part(2, 1), 3: _part(3, 1)}
    good = [(1, parts[1].md5), (2, parts[2].md5)]
    for ns in (True, False):
        wanted = s3._parse_complete(_complete_doc(good, ns))
        assert [w.number for w in wanted] == [1, 2] and wanted[0].checksums == {"x-amz-checksum-crc32": "AAAAAA=="}
        assert [p.number for p in s3._choose_parts(wanted, parts)] == [1, 2]
    cases = [([(1, parts[2].md5)], InvalidPart), ([(4, parts[1].md5)], InvalidPart),
             ([(2, parts[2].md5), (1, parts[1].md5)], InvalidPartOrder),
             ([(1, parts[1].md5), (1, parts[1].md5)], InvalidPartOrder),
             ([(2, parts[2].md5), (3, parts[3].md5)], EntityTooSmall), ([(1, "zz")], InvalidPart)]
    for listed, error in cases:
        with pytest.raises(error):
            s3._choose_parts(s3._parse_complete(_complete_doc(listed)), parts)
    for bad in ("<CompleteMultipartUpload/>", "<Other><Part><PartNumber>1</PartNumber></Part></Other>",
                "<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>"):
        with pytest.raises(MalformedXML):
            s3._parse_complete(ElementTree.fromstring(bad))
