"""Batch-get request parsing (ais.moss) and the streaming archive writers (target.archive.write)."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest
import zstandard

from ais.errors import BadRequest
from ais.moss import BatchEntry, RangeError, normalize_mime, parse_coloc, parse_request
from ais.names import make_bucket
from target.archive.write import ArchiveWriter


def test_defaults_and_bucket_resolution() -> None:
    req = parse_request({"in": [{"objname": "a"}, {"objname": "b", "bucket": "other", "provider": "s3"}]},
                        default=make_bucket("dflt"))
    assert (req.mime, req.coer, req.onob, req.strm, req.coloc) == (".tar", False, False, True, 0)
    assert [e.bck.cname for e in req.entries] == ["ais://dflt", "s3://other"]
    assert req.buckets == [make_bucket("dflt"), make_bucket("other", "aws")]


def test_uname_overrides_bucket_and_name() -> None:
    req = parse_request({"in": [{"objname": "ignored", "bucket": "x", "uname": "gcp/@#/gb/dir/obj"}]})
    assert req.entries[0].bck.cname == "gs://gb" and req.entries[0].obj == "dir/obj"


@pytest.mark.parametrize("body, needle", [
    (None, "'in'"), ([], "'in'"), ({"in": {}}, "'in'"), ({"in": [1]}, "in[0]"),
    ({"in": [{"bucket": "b"}]}, "in[0].objname"),
    ({"in": [{"objname": "a", "bucket": "b"}, {"objname": "/abs", "bucket": "b"}]}, "in[1]"),
    ({"in": [{"objname": "a", "bucket": "b", "start": -1, "length": 2}]}, "in[0].start"),
    ({"in": [{"objname": "a", "bucket": "b", "start": 3}]}, "needs a length"),
    ({"in": [{"objname": "a", "bucket": "b", "length": True}]}, "in[0].length"),
    ({"in": [{"objname": "a", "bucket": "b"}], "mime": ".tar.lz4"}, "mime"),
    ({"in": [{"objname": "a", "bucket": "b"}], "strm": 1}, "strm"),
    ({"in": [{"objname": "a", "bucket": "b"}], "coloc": 7}, "coloc"),
])
def test_bad_requests_name_the_field(body: object, needle: str) -> None:
    with pytest.raises(BadRequest) as ei:
        parse_request(body)
    assert needle in ei.value.message


def test_coloc_spellings() -> None:
    assert [parse_coloc(v) for v in ("", None, 0, "1", 1, "Colocation.TARGET_AWARE", "2")] == [0, 0, 0, 1, 1, 1, 2]


def test_ranges() -> None:
    b = make_bucket("b")
    assert BatchEntry(b, "o").resolve_range(10) == (0, 10)
    assert BatchEntry(b, "o", start=4, length=-1).resolve_range(10) == (4, 6)
    assert BatchEntry(b, "o", start=4, length=6).resolve_range(10) == (4, 6)
    assert BatchEntry(b, "o", start=10, length=-1).resolve_range(10) == (10, 0)
    for e in (BatchEntry(b, "o", start=4, length=7), BatchEntry(b, "o", start=11, length=-1)):
        with pytest.raises(RangeError):
            e.resolve_range(10)


def test_member_names() -> None:
    e = BatchEntry(make_bucket("b"), "dir/o", archpath="in/x.jpg")
    assert e.member_name(False) == "b/dir/o/in/x.jpg" and e.member_name(True) == "dir/o/in/x.jpg"
    assert e.missing_name(False) == "__404__/b/dir/o/in/x.jpg"


def test_mime_aliases() -> None:
    assert [normalize_mime(m) for m in ("", "tar", ".TGZ", "tar.gz", "zip", ".tar.zst")] == \
        [".tar", ".tar", ".tgz", ".tar.gz", ".zip", ".tar.zst"]


def _write(mime: str, members: list[tuple[str, bytes]]) -> bytes:
    w = ArchiveWriter(mime)
    out = b""
    for name, data in members:
        out += w.begin(name, len(data), 1_700_000_000)
        for k in range(0, len(data), 7000):
            out += w.data(data[k:k + 7000])
        out += w.end()
    return out + w.finish()


MEMBERS = [("b/small", b"x"), ("b/" + "long-name/" * 20 + "f", bytes(range(256)) * 100), ("__404__/b/gone", b""),
           ("b/ünïcode", b"\x00" * 1024)]


@pytest.mark.parametrize("mime", [".tar", ".tgz", ".tar.gz", ".tar.zst"])
def test_tar_writers_read_back_with_tarfile(mime: str) -> None:
    raw = _write(mime, MEMBERS)
    if mime == ".tar.zst":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as t:
        got = [(m.name, t.extractfile(m).read(), m.mtime) for m in t]  # type: ignore[union-attr]
    assert [(n, d) for n, d, _ in got] == MEMBERS
    assert {mt for *_, mt in got} == {1_700_000_000}


def test_zip_writer_reads_back_with_zipfile() -> None:
    with zipfile.ZipFile(io.BytesIO(_write(".zip", MEMBERS))) as z:
        assert z.testzip() is None
        assert [(n, z.read(n)) for n in z.namelist()] == MEMBERS


def test_writer_enforces_declared_sizes() -> None:
    w = ArchiveWriter(".tar")
    w.begin("a", 3)
    with pytest.raises(ValueError):
        w.data(b"four")
    w.data(b"ab")
    with pytest.raises(ValueError):
        w.end()
