"""Property-based fuzzing of the request parsers: on arbitrary input each one either returns a
well-formed result or raises the project's own error (an `AisError` subclass, which the error
middleware renders as a 4xx), or the documented `ValueError` where that is the contract.
Anything else would be a 500 (or a crash) on hostile input.

Examples are derandomized so that CI is reproducible; set `AIS_FUZZ_SEED=<n>` (or `random`) to
explore other inputs locally.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import string
from typing import Any, Callable

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ais import apc, moss, names, template
from ais.errors import AisError, BadMessage, InvalidName, RangeNotSatisfiable
from ais.s3 import checksums, sigv4
from ais.s3.chunked import ChunkedDecoder, decoded_length
from ais.s3.errors import S3Error, s3_error_from
from ais.s3.web import parse_xml
from ais.web import parse_json

pytestmark = pytest.mark.timeout(120)

_SEED = os.environ.get("AIS_FUZZ_SEED", "")
FUZZ = settings(max_examples=int(os.environ.get("AIS_FUZZ_EXAMPLES", "300")), deadline=None,
                derandomize=not _SEED, suppress_health_check=list(HealthCheck), database=None)


def seeded(test: Callable[..., Any]) -> Callable[..., Any]:
    """Apply the seed from AIS_FUZZ_SEED (a number, or `random` for a fresh one)."""
    if _SEED and _SEED != "random":
        from hypothesis import seed
        return seed(int(_SEED))(test)
    return test


def raises_only(fn: Callable[[], Any], *allowed: type[BaseException]) -> Any:
    """Call `fn`; any exception must be one of `allowed` (default: AisError)."""
    allowed = allowed or (AisError,)
    try:
        return fn()
    except allowed:
        return None


# --- strategies -------------------------------------------------------------------------------

# Text that is likely to hit parser edges: separators, dots, percent signs, NULs, surrogates
# (aiohttp decodes undecodable header bytes with `surrogateescape`), non-ASCII digits.
_EDGE = "/.%\x00 \t\r\n-=,;:&?#@{}[]\"'\\*+~\udcff\udc80\u0663\uff11é"
edgy_text = st.text(alphabet=st.sampled_from(list(_EDGE) + list("ab019xyzAZ")), max_size=40)
# values that have broken parsers before: overflow, special floats, other scripts' digits
nasty = st.sampled_from(["1e400", "-1e400", "nan", "inf", "-1", "9" * 5000, "0x10", "1_000", "\u0663", " 1 ",
                         "1.5", "\udcff", "%00", "..", "/", "bytes=0-0", "{0..1}"])
any_text = st.one_of(st.text(max_size=60), edgy_text, nasty)
header_value = st.one_of(st.text(alphabet=st.characters(codec="latin-1"), max_size=60), edgy_text)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12)


def dict_with(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects that use the parser's own keys (so fuzzing gets past the first check)."""
    return st.dictionaries(st.sampled_from(keys) | any_text, json_values, max_size=len(keys) + 1)


# --- names ------------------------------------------------------------------------------------

@seeded
@FUZZ
@given(any_text)
def test_object_name_never_escapes_its_bucket(name: str) -> None:
    ok = raises_only(lambda: names.check_object_name(name), InvalidName)
    if ok is None:
        return
    assert ok == name
    ok.encode("utf-8")   # a file name, a msgpack string, a header value
    root = "/mp/@ais/b/%ob"
    joined = posixpath.normpath(posixpath.join(root, name))
    assert joined.startswith(root + "/"), name
    assert "\x00" not in name
    assert len(name.encode("utf-8", "surrogatepass")) <= apc.MAX_OBJ_NAME_BYTES


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from target.fs.mountpaths import Mountpaths
    root = tmp_path_factory.mktemp("mp")
    mps = Mountpaths([str(root / "mp0"), str(root / "mp1")], workers_per_mountpath=1)
    yield mps
    mps.close()


@seeded
@FUZZ
@given(any_text | st.lists(st.sampled_from(["..", ".", "", "a", "x" * 256]), max_size=5).map("/".join),
       st.sampled_from(["", "p/", "../", "/", "a/../"]))
def test_layout_never_maps_a_name_outside_its_bucket(layout: Any, name: str, prepend: str) -> None:
    """Whatever name reaches the layout (from a job's `objnames`, a template, `prepend` + name, an
    archive manifest), it is InvalidName or a path inside the bucket's object directory."""
    bck = names.make_bucket("b")
    got = raises_only(lambda: layout.object_path(bck, prepend + name), InvalidName)
    if got is not None:
        mp, path = got
        root = layout.bucket_dir(mp, bck)
        assert posixpath.normpath(path).startswith(root + "/") and "\x00" not in path
    if raises_only(lambda: names.check_prepend(prepend), InvalidName) is not None and name:
        assert raises_only(lambda: names.check_object_name(name), InvalidName) is None \
            or raises_only(lambda: names.check_object_name(prepend + name), InvalidName) == prepend + name


@seeded
@FUZZ
@given(st.lists(st.sampled_from(["..", ".", "", "a", "%2e", "x" * 255, "y" * 256, "\x00"]), max_size=6)
       .map("/".join))
def test_object_name_segments(name: str) -> None:
    segs = name.split("/")
    bad = (not name or any(s in ("", ".", "..") or "\x00" in s or len(s) > 255 for s in segs)
           or len(name) > apc.MAX_OBJ_NAME_BYTES)
    if bad:
        with pytest.raises(InvalidName):
            names.check_object_name(name)
    else:
        assert names.check_object_name(name) == name


@seeded
@FUZZ
@given(any_text)
def test_unames_and_namespaces(text: str) -> None:
    for parse in (names.parse_uname_object, names.parse_uname_bucket, names.Namespace.parse,
                  names.check_bucket_name, names.normalize_provider, names.make_bucket):
        raises_only(lambda: parse(text), InvalidName)
    parsed = raises_only(lambda: names.parse_uname_object(text), InvalidName)
    if parsed is not None:
        names.check_object_name(parsed[1])


@seeded
@FUZZ
@given(json_values | dict_with(["name", "provider", "namespace"]))
def test_bucket_from_wire(value: Any) -> None:
    raises_only(lambda: names.bucket_from_wire(value))


@seeded
@FUZZ
@given(any_text)
def test_small_value_parsers(text: str) -> None:
    raises_only(lambda: names.parse_bool(text))
    size = raises_only(lambda: names.parse_size(text))
    assert size is None or (isinstance(size, int) and size >= 0)
    raises_only(lambda: names.parse_duration_s(text), ValueError)
    header = raises_only(lambda: names.check_header_text(text, "value"))
    if header is not None:   # what aiohttp will write into a response header
        assert "\r" not in header and "\n" not in header and "\x00" not in header
        header.encode("utf-8")
    raises_only(lambda: names.prop_names(text))


# --- ranges -----------------------------------------------------------------------------------

range_header = st.one_of(
    any_text,
    st.builds(lambda u, a, b: f"{u}={a}-{b}", st.sampled_from(["bytes", "BYTES", " bytes", "items"]),
              st.one_of(st.integers(-5, 40).map(str), st.just(""), edgy_text),
              st.one_of(st.integers(-5, 40).map(str), st.just(""), edgy_text)),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 10**30), st.integers(0, 10**30)),
    st.just("bytes=" + "9" * 5000 + "-"),
)


@seeded
@FUZZ
@given(range_header, st.integers(0, 50))
def test_native_range(header: str, size: int) -> None:
    from target.objects import parse_range
    got = raises_only(lambda: parse_range(header, size), RangeNotSatisfiable)
    if got is not None:
        offset, count = got
        assert 0 <= offset < size and 1 <= count and offset + count <= size, (header, size, got)


@seeded
@FUZZ
@given(range_header, st.integers(0, 50))
def test_s3_ranges(header: str, size: int) -> None:
    from target import s3 as target_s3
    got = raises_only(lambda: target_s3._range(header, size, {}), S3Error)
    if got is not None:
        status, offset, count = got
        assert status in (200, 206) and 0 <= offset and offset + count <= size
    got = raises_only(lambda: target_s3._copy_range(header, size), S3Error)
    if got is not None:
        assert got[0] >= 0 and got[0] + got[1] <= size
    raises_only(lambda: target_s3.parse_copy_source(header), S3Error)


@seeded
@FUZZ
@given(json_values | dict_with(["in", "mime", "coer", "onob", "strm", "coloc"])
       | st.builds(lambda entries: {"in": entries},
                   st.lists(dict_with(["objname", "bucket", "provider", "uname", "archpath", "start", "length",
                                       "opaque"]), min_size=1, max_size=3))
       | st.builds(lambda obj, arch, start, length: {"in": [{"objname": obj, "archpath": arch, "start": start,
                                                            "length": length}]},
                   st.sampled_from(["o", "d/o", "../o"]), st.sampled_from(["", "m.txt", "\x00", "\ud800"]),
                   st.integers(-2, 2**70), st.integers(-2, 2**70)))
def test_batch_request(body: Any) -> None:
    req = raises_only(lambda: moss.parse_request(body, names.make_bucket("b")))
    if req is not None:
        from target.moss import _entry_wire, parse_entries
        for e in req.entries:
            names.check_object_name(e.obj)
            raises_only(lambda e=e: e.resolve_range(10))
        # what peers exchange: a parsed request always packs, and reads back the same
        wire = msgpack.packb({"entries": [_entry_wire(e) for e in req.entries]})
        assert parse_entries(wire) == [e if not e.opaque else
                                       moss.BatchEntry(e.bck, e.obj, e.archpath, e.start, e.length)
                                       for e in req.entries]
        json.dumps(req.to_wire())


# --- templates --------------------------------------------------------------------------------

template_text = st.one_of(
    any_text,
    st.lists(st.one_of(st.text(alphabet="ab/-", max_size=3),
                       st.builds(lambda a, b, s: "{" + a + ".." + b + (".." + s if s else "") + "}",
                                 st.integers(0, 10**25).map(str) | st.just("007") | st.just("9" * 5000),
                                 st.integers(0, 10**25).map(str) | st.just("0") | st.just("٣"),
                                 st.sampled_from(["", "0", "1", "3", "99999999999999999999999"]))),
             max_size=4).map("".join))


@seeded
@FUZZ
@given(template_text)
def test_template(text: str) -> None:
    def first_few() -> list[str]:
        gen = template.expand(text)
        return [n for n, _ in zip(gen, range(5))]
    raises_only(first_few)
    raises_only(lambda: template.parse_selection({"template": text}))


@seeded
@FUZZ
@given(json_values | dict_with(["objnames", "template"]))
def test_selection(value: Any) -> None:
    if isinstance(value, dict):
        raises_only(lambda: template.parse_selection(value))


# --- JSON and msgpack bodies ------------------------------------------------------------------

@seeded
@FUZZ
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                 st.integers(1, 100_000).map(lambda n: b"[" * n), st.just(b'{"a": 1e999999}')))
def test_parse_json(body: bytes) -> None:
    raises_only(lambda: parse_json(body), BadMessage)


packable_leaf = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20)
                 | st.sampled_from(["ais", "", "@#", "b", "o", "../x", "a/b", "\x00"]) | st.binary(max_size=10))
packable = st.recursive(packable_leaf, lambda inner: st.lists(inner, max_size=8)
                        | st.dictionaries(st.text(max_size=8) | st.just("entries"), inner, max_size=3), max_leaves=20)
wire_entry = st.lists(packable_leaf, min_size=7, max_size=7)


@seeded
@FUZZ
@given(st.one_of(st.binary(max_size=200), st.builds(msgpack.packb, packable),
                 st.builds(lambda es: msgpack.packb({"entries": es}), st.lists(wire_entry, max_size=3))))
def test_batch_manifest_msgpack(body: bytes) -> None:
    from target.moss import parse_entries
    raises_only(lambda: parse_entries(body))


# --- S3: SigV4 / SigV2, aws-chunked, checksums, XML -------------------------------------------

_AUTH_HEADERS = ["Authorization", "X-Amz-Date", "Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token", "Host",
                 "Content-MD5", "Content-Type", "x-amz-meta-a"]
_AUTH_QUERY = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
               "X-Amz-Signature", "AWSAccessKeyId", "Signature", "Expires", "X-Amz-Content-Sha256"]

authorization = st.one_of(
    header_value,
    st.builds(lambda cred, signed, sig: f"AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, "
                                        f"Signature={sig}",
              st.one_of(edgy_text, st.builds(lambda d, r: f"AK/{d}/{r}/s3/aws4_request",
                                             st.sampled_from(["20240101", "2024010", "99999999", "\u0663" * 8]),
                                             edgy_text)),
              st.sampled_from(["host", "host;x-amz-date", "x-amz-date", ";;", "host;\udcff"]),
              edgy_text | st.just("a" * 64)),
    st.builds(lambda ak, sig: f"AWS {ak}:{sig}", edgy_text, edgy_text),
)
amz_date = st.one_of(header_value, st.sampled_from(["20240101T000000Z", "20241399T996099Z", "99999999T999999Z",
                                                    "Mon, 01 Jan 2024 00:00:00 GMT", "Mon, 99 Foo 99999 99:99:99"]))


@st.composite
def s3_requests(draw: st.DrawFn) -> tuple[str, str, str, dict[str, str]]:
    headers: dict[str, str] = {"Host": "127.0.0.1"}
    if draw(st.booleans()):
        headers["Authorization"] = draw(authorization)
    if draw(st.booleans()):
        headers["X-Amz-Date"] = draw(amz_date)
    else:
        headers["Date"] = draw(amz_date)
    headers["X-Amz-Content-Sha256"] = draw(st.one_of(header_value, st.sampled_from(
        [sigv4.UNSIGNED_PAYLOAD, sigv4.STREAMING_PAYLOAD, sigv4.EMPTY_SHA256])))
    for name in draw(st.lists(st.sampled_from(_AUTH_HEADERS), max_size=3)):
        headers[name] = draw(header_value)
    pairs = draw(st.lists(st.tuples(st.sampled_from(_AUTH_QUERY) | edgy_text, edgy_text | st.just("%FF")),
                          max_size=6))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    path = draw(st.sampled_from(["/s3/b/k", "/s3/b", "/b/k"]) | edgy_text.map(lambda t: "/s3/" + t))
    return draw(st.sampled_from(["GET", "PUT", "post"])), path, query, headers


@seeded
@FUZZ
@given(s3_requests())
def test_sigv4_parse_and_verify(req: tuple[str, str, str, dict[str, str]]) -> None:
    method, path, query, headers = req
    auth = raises_only(lambda: sigv4.parse(method, path, query, headers), S3Error)
    if isinstance(auth, sigv4.SigV4Auth):
        raises_only(lambda: sigv4.verify(auth, "secret"), S3Error)
        raises_only(lambda: sigv4.check_payload_sha256(auth, sigv4.EMPTY_SHA256), S3Error)
        if auth.is_streaming:
            from ais.s3.chunked import decoder_for_request
            raises_only(lambda: decoder_for_request(auth, headers, "secret"), S3Error)
    elif isinstance(auth, sigv4.SigV2Auth):
        raises_only(lambda: sigv4.verify_v2(auth, method, path, query, headers, "secret"), S3Error)


@seeded
@FUZZ
@given(st.sampled_from(sigv4.STREAMING_MODES),
       st.one_of(st.none(), header_value, st.sampled_from(["x-amz-checksum-crc32", "x-amz-checksum-foo, ,"])),
       st.one_of(st.none(), st.integers(0, 100)),
       st.lists(st.one_of(st.binary(max_size=30),
                          st.sampled_from([b"0\r\n", b"5\r\nhello\r\n", b"0\r\n\r\n", b"\r\n",
                                           b"x-amz-checksum-crc32:AAAAAA==\r\n", b"ffffffffffffffff\r\n",
                                           b"3;chunk-signature=" + b"0" * 64 + b"\r\n", b"\xff:\xfe\r\n"])),
                max_size=8))
def test_aws_chunked_decoder(mode: str, trailer: str | None, length: int | None, pieces: list[bytes]) -> None:
    def run() -> None:
        dec = ChunkedDecoder(mode, declared_trailer=trailer, decoded_length=length, max_line_bytes=64)
        for p in pieces:
            dec.feed(p)
        dec.finish()
    raises_only(run, S3Error)


@seeded
@FUZZ
@given(any_text | header_value, any_text | header_value)
def test_checksum_headers(name: str, value: str) -> None:
    raises_only(lambda: decoded_length(value), S3Error)
    raises_only(lambda: checksums.content_md5_digest(value), S3Error)
    raises_only(lambda: checksums.part_md5_from_etag(value), S3Error)
    algorithm = checksums.algorithm_from_header(name)
    for alg in ([algorithm] if algorithm else []) + ["CRC32", "SHA256"]:
        raises_only(lambda alg=alg: checksums.decode_checksum(alg, value), S3Error)


xml_bodies = st.one_of(
    st.binary(max_size=200),
    any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(lambda enc, body: body.encode(enc, "surrogatepass") if enc != "utf-8" else body.encode(),
              st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-16-be"]),
              st.sampled_from(['<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete>&e;</Delete>',
                               '<!DOCTYPE d SYSTEM "file:///etc/passwd"><Delete/>',
                               '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY e "x">]><D>&e;</D>',
                               '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>k</Key>'
                               '</Object></Delete>',
                               '<a><b>&amp;&#0;</b></a>', '<a>&undefined;</a>', '<a><![CDATA[x]]></a>'])),
)


@seeded
@FUZZ
@given(xml_bodies)
def test_s3_xml(body: bytes) -> None:
    from target.s3 import _parse_complete
    doc = raises_only(lambda: parse_xml(body), S3Error)
    if doc is not None:
        raises_only(lambda: _parse_complete(doc), S3Error)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    b'<Delete><Object><Key>&lol2;</Key></Object></Delete>',
    b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>',
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><Delete/>',
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY e "x">]><Delete>&e;</Delete>'.encode("utf-16"),
    '<!DOCTYPE d><Delete/>'.encode("utf-32"),
], ids=["billion-laughs", "external-entity", "parameter-entity", "utf16-dtd", "utf32-doctype"])
def test_xml_with_a_dtd_is_malformed(body: bytes) -> None:
    with pytest.raises(S3Error) as info:
        parse_xml(body)
    assert info.value.status == 400 and info.value.s3_code == "MalformedXML"


def test_xml_namespaces_are_kept() -> None:
    doc = parse_xml(b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key>'
                    b'</Object><Quiet>true</Quiet></Delete>')
    assert doc.tag == "{http://s3.amazonaws.com/doc/2006-03-01/}Delete"
    assert doc.findtext("{*}Object/{*}Key") == "a&b"


# --- error rendering: whatever a parser puts in a message must render -------------------------

@seeded
@FUZZ
@given(any_text | header_value, any_text | header_value)
def test_errors_render(message: str, detail: str) -> None:
    from ais.s3.errors import InvalidRange
    err = InvalidRange(message, resource=detail, details={"RangeRequested": detail})
    assert err.to_xml(detail, detail).startswith(b"<?xml")
    s3_error_from(InvalidName(message)).to_xml("rid")
    json.dumps(InvalidName(message).to_wire(node=detail, method="GET", path=detail, remote="", caller=detail))


def test_fuzz_runs_in_an_event_loop_free_context() -> None:
    """The parsers above are synchronous: no event loop is needed (or left behind)."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
