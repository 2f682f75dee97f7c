"""Bad input over the wire: every malformed request is answered with a 4xx whose JSON error
names the problem, and none of them creates a file outside a mountpath.

Raw paths go through `http.client` so that nothing on the client side normalises `..`,
`%2E%2E`, `%00` or `//` before the server sees them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.parse
from typing import Any, Iterable, Iterator

import pytest
import requests
from aistore.sdk.errors import AISError, ErrBckAlreadyExists, ErrBckNotFound, ErrObjNotFound

MiB = 1 << 20
TIMEOUT = 20


# --- helpers ----------------------------------------------------------------------------------

class Raw:
    """One raw HTTP exchange: status, headers (case-insensitive) and body."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def error(self, method: str) -> dict[str, Any]:
        return error_json(method, self.status, self.headers.get("Hdr-Error"), self.body)


def raw(base: str, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> Raw:
    """Send `path` byte-for-byte as the request target (no normalisation, no redirects)."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Raw(r.status, r.msg, data)
    finally:
        conn.close()


def error_json(method: str, status: int, hdr_error: str | None, body: bytes) -> dict[str, Any]:
    """The AIS error JSON: in the body, or for HEAD in `Hdr-Error` with an empty body."""
    assert 400 <= status < 500, f"expected a 4xx, got {status}: {body[:300]!r}"
    if method == "HEAD":
        assert body == b"", f"HEAD error with a body: {body[:200]!r}"
        assert hdr_error, "HEAD error without an Hdr-Error header"
        doc = json.loads(hdr_error)
    else:
        doc = json.loads(body)
    assert isinstance(doc, dict) and isinstance(doc.get("message"), str), doc
    assert doc.get("status") in (None, status), doc
    return doc


def resp_error(r: requests.Response) -> dict[str, Any]:
    return error_json(r.request.method or "", r.status_code, r.headers.get("Hdr-Error"), r.content)


def mentions(doc: dict[str, Any], *words: str) -> None:
    msg = doc["message"].lower()
    assert any(w.lower() in msg for w in words), f"error message does not mention any of {words}: {doc['message']!r}"


_MP_REL = re.compile(
    r"^(%wk|%mp)(/.*)?$"                                     # work files, multipart uploads
    r"|^@[a-z]+(/@[^/]*)?(/[^/%@][^/]*)?$"                   # provider, namespace, bucket dirs
    r"|^@[a-z]+(/@[^/]*)?/[^/%@][^/]*/%(ob|ix)(/.*)?$")       # objects only below %ob, shard indexes
_NODE_FILE = re.compile(r"^(config\.json|node\.log.*|stdout\.log.*)$")


def unexpected_files(root: str, targets: Iterable[Any]) -> list[str]:
    """Paths under the cluster root that are neither node files nor a proper mountpath layout."""
    mps = {os.path.abspath(mp) for t in targets for mp in t.mountpaths}
    bad: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            parts = rel.split(os.sep)
            mp = next((m for m in mps if full == m or full.startswith(m + os.sep)), None)
            if mp is not None:
                inner = os.path.relpath(full, mp)
                if full != mp and not _MP_REL.match(inner.replace(os.sep, "/")):
                    bad.append(full)
                continue
            if len(parts) == 1 and (name.startswith("cluster.json") or os.path.isdir(full)):
                continue  # cluster.json, node directories
            if len(parts) >= 2 and parts[1] == "conf":
                continue  # node metadata
            if len(parts) == 2 and _NODE_FILE.match(name):
                continue
            bad.append(full)
    return bad


def quote_path(name: str) -> str:
    return urllib.parse.quote(name, safe="/")


# --- bucket names -----------------------------------------------------------------------------

@pytest.mark.parametrize("encoded,shown", [
    ("bad%20name", "bad name"),
    ("a%2Fb", "a/b"),
    ("x" * 100, "x" * 100),
    ("%2E%2E", ".."),
    ("..", ".."),
    ("a%00b", "a\x00b"),
    ("%2E", "."),
], ids=["space", "slash", "too-long", "dotdot-encoded", "dotdot", "nul", "dot"])
def test_invalid_bucket_name_is_400(cluster: Any, client: Any, encoded: str, shown: str) -> None:
    r = raw(cluster.endpoint, "POST", f"/v1/buckets/{encoded}", json.dumps({"action": "create-bck"}).encode(),
            {"Content-Type": "application/json"})
    assert r.status == 400, (r.status, r.body[:300])
    mentions(r.error("POST"), "bucket name", "invalid")
    assert shown not in {b.name for b in client.cluster().list_buckets()}


def test_invalid_bucket_name_via_sdk(client: Any) -> None:
    for name in ("bad name", "x" * 100, "semi;colon"):
        with pytest.raises(AISError) as info:
            client.bucket(name).create()
        assert info.value.status_code == 400, (name, info.value)
        assert "bucket name" in str(info.value)


def test_bucket_path_with_extra_segment_is_4xx(cluster: Any, client: Any) -> None:
    """`a/b` as a literal path is not a bucket name: no route, and nothing created."""
    r = raw(cluster.endpoint, "POST", "/v1/buckets/a/b", json.dumps({"action": "create-bck"}).encode())
    assert 400 <= r.status < 500, r.status
    r.error("POST")
    names = {b.name for b in client.cluster().list_buckets()}
    assert "a" not in names and "a/b" not in names and "b" not in names


# --- object names -----------------------------------------------------------------------------

_MARK = "aisprobe-" + os.urandom(4).hex()

BAD_OBJECT_NAMES = [
    # (raw path suffix after /v1/objects/<bucket>/, words the error must mention)
    (f"a/%2E%2E/%2E%2E/etc/{_MARK}", ("..",)),
    (f"a/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{_MARK}", ("..",)),
    (f"a/../../etc/{_MARK}", ("..",)),
    ("/".join([".."] * 5) + f"/{_MARK}", ("..",)),
    ("%2E%2E/" * 20 + f"tmp/{_MARK}", ("..",)),
    (f"..%2F..%2F..%2F..%2F..%2F{_MARK}", ("..",)),
    (f"a/./{_MARK}", ("'.'", "dot", "segment")),
    (f"{_MARK}%00.txt", ("nul", "\\x00", "null")),
    ("%00", ("nul", "\\x00", "null")),
    ("n" * 1025, ("1024", "long")),
    ("d/" * 600 + "x", ("1024", "long")),
    (f"/{_MARK}", ("absolute", "leading", "'/")),
    (f"%2F{_MARK}", ("absolute", "leading", "'/")),
    (f"%2F%2E%2E%2F%2E%2E%2F{_MARK}", ("absolute", "leading", "'/", "..")),
    (f"a//{_MARK}", ("empty",)),
]


class Attempts:
    def __init__(self) -> None:
        self.results: list[tuple[str, str, str, int, dict[str, Any] | None]] = []
        self.stray_before_delete: list[str] = []


def stray_files(cluster: Any) -> list[str]:
    """Files outside the mountpath layout, and anything named with the marker, anywhere."""
    found = unexpected_files(cluster.root, cluster.targets)
    for top in {cluster.root, os.path.dirname(cluster.root)}:
        for dirpath, dirnames, filenames in os.walk(top):
            found += [os.path.join(dirpath, n) for n in dirnames + filenames if _MARK in n]
    found += [p for p in (f"/tmp/{_MARK}", f"/etc/{_MARK}", f"/{_MARK}") if os.path.lexists(p)]
    return sorted(set(found))


@pytest.fixture(scope="module")
def traversal_attempts(cluster: Any) -> Iterator[Attempts]:
    """Every bad object name, every method, through the proxy and straight to each target.

    The filesystem is inspected before any DELETE is sent: a DELETE with the same bad name
    would remove what an escaping PUT had written and hide it.
    """
    from aistore import Client
    bname = "bad-objnames-" + os.urandom(3).hex()
    b = Client(cluster.endpoint).bucket(bname)
    b.create()
    out = Attempts()
    bases = [("proxy", cluster.endpoint)] + [(t.name, t.public_url) for t in cluster.targets]
    for methods in (("PUT", "GET", "HEAD", "POST", "PATCH"), ("DELETE",)):
        if methods == ("DELETE",):
            out.stray_before_delete = stray_files(cluster)
        for where, base in bases:
            for suffix, _ in BAD_OBJECT_NAMES:
                path = f"/v1/objects/{bname}/{suffix}"
                for method in methods:
                    body = {"PUT": b"escaped!", "POST": b'{"action":"check-lock"}',
                            "PATCH": b'{"action":"","value":{"k":"v"}}'}.get(method)
                    r = raw(base, method, path, body)
                    doc = None
                    if 400 <= r.status < 500:
                        doc = r.error(method)
                    out.results.append((where, suffix, method, r.status, doc))
    yield out
    b.delete(missing_ok=True)


@pytest.mark.parametrize("idx", range(len(BAD_OBJECT_NAMES)), ids=[
    "dotdot-encoded", "dotdot-lower", "dotdot-literal", "dotdot-leading", "dotdot-to-tmp", "dotdot-slash-encoded",
    "dot-segment", "nul-inside", "nul-only", "too-long", "too-long-many-segments", "leading-slash",
    "leading-slash-encoded", "leading-slash-dotdot", "empty-segment"])
def test_bad_object_name_is_400_everywhere(traversal_attempts: Any, idx: int) -> None:
    suffix, words = BAD_OBJECT_NAMES[idx]
    words = (words,) if isinstance(words, str) else words
    seen = [r for r in traversal_attempts.results if r[1] == suffix]
    assert len(seen) == 6 * 4  # 6 methods x (proxy + 3 targets)
    for where, _, method, status, doc in seen:
        assert status == 400, f"{method} via {where}: {status} for {suffix[:80]!r}"
        assert doc is not None
        try:
            mentions(doc, *words)
        except AssertionError as exc:
            raise AssertionError(f"{method} via {where}: {exc}") from None


def test_bad_object_names_create_no_file_outside_mountpaths(cluster: Any, traversal_attempts: Attempts) -> None:
    assert len(traversal_attempts.results) == len(BAD_OBJECT_NAMES) * 6 * 4
    assert not traversal_attempts.stray_before_delete, \
        f"a bad object name reached the filesystem: {traversal_attempts.stray_before_delete[:20]}"
    stray = stray_files(cluster)
    assert not stray, f"files outside the mountpath layout: {stray[:20]}"


def test_valid_name_with_dots_is_accepted(bucket: Any) -> None:
    """Validation must not be over-eager: dots inside a segment are fine."""
    for name in ("a..b", "...", "x/.hidden", "x/..y/z.", "v1.2/..../f"):
        bucket.object(name).get_writer().put_content(name.encode())
        assert bytes(bucket.object(name).get_reader().read_all()) == name.encode()


# --- JSON bodies ------------------------------------------------------------------------------

def _new_bucket_name() -> str:
    return "json-" + os.urandom(4).hex()


@pytest.mark.parametrize("body", [
    b'{"action": "create-bck",',
    b'{action: create-bck}',
    b"\xff\xfe{}",
    b'{"action": "create-bck"} trailing',
], ids=["truncated", "unquoted", "not-utf8", "trailing-garbage"])
def test_malformed_json_on_create_is_400(cluster: Any, client: Any, body: bytes) -> None:
    name = _new_bucket_name()
    r = requests.post(f"{cluster.endpoint}/v1/buckets/{name}", data=body,
                      headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 400, r.text
    mentions(resp_error(r), "json")
    with pytest.raises(ErrBckNotFound):
        list(client.bucket(name).list_all_objects())


@pytest.mark.parametrize("body", [b'["create-bck"]', b'"create-bck"', b"42", b"null", b"true",
                                  b'{"action": 5}', b'{"action": ["create-bck"]}'],
                         ids=["array", "string", "number", "null", "bool", "action-number", "action-array"])
def test_json_that_is_not_an_action_object_is_400(cluster: Any, client: Any, body: bytes) -> None:
    name = _new_bucket_name()
    r = requests.post(f"{cluster.endpoint}/v1/buckets/{name}", data=body, timeout=TIMEOUT)
    assert r.status_code == 400, r.text
    mentions(resp_error(r), "object", "action", "missing")
    with pytest.raises(ErrBckNotFound):
        list(client.bucket(name).list_all_objects())


def test_malformed_json_elsewhere_is_400(cluster: Any, bucket: Any) -> None:
    base = cluster.endpoint
    bad = b'{"action": "list", "value": {'
    for method, url in [("GET", f"{base}/v1/buckets/{bucket.name}"),
                        ("PATCH", f"{base}/v1/buckets/{bucket.name}"),
                        ("DELETE", f"{base}/v1/buckets/{bucket.name}")]:
        r = requests.request(method, url, data=bad, timeout=TIMEOUT)
        assert r.status_code == 400, (method, r.text)
        mentions(resp_error(r), "json")
    bucket.object("o").get_writer().put_content(b"x")
    r = requests.post(f"{base}/v1/objects/{bucket.name}/o", data=bad, timeout=TIMEOUT)  # follows the 307
    assert r.status_code == 400, r.text
    mentions(resp_error(r), "json")
    bucket.head()  # the bucket survived the bad DELETE


def test_json_nested_too_deeply_is_400_everywhere(cluster: Any, bucket: Any) -> None:
    """Nesting that exhausts the JSON parser's stack (well under the size limit) is a 400, on the
    forwarded-change path, the generic reader and the ETL init alike."""
    deep = b'{"action": "create-bck", "value": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    base = cluster.endpoint
    for method, url in [("POST", f"{base}/v1/buckets/{_new_bucket_name()}"),
                        ("PUT", f"{base}/v1/cluster"),
                        ("PATCH", f"{base}/v1/buckets/{bucket.name}"),
                        ("PUT", f"{base}/v1/etl")]:
        r = requests.request(method, url, data=deep, timeout=TIMEOUT)
        assert r.status_code == 400, (method, url, r.status_code, r.text[:300])
        mentions(resp_error(r), "nested too deeply")


def _big_action(action: str, size: int = 2 * MiB) -> bytes:
    return json.dumps({"action": action, "value": {"pad": "a" * size}}).encode()




@pytest.mark.parametrize("method,where", [
    pytest.param("POST", "bucket-new"),
    pytest.param("PATCH", "bucket"),
    pytest.param("DELETE", "bucket"),
    ("GET", "bucket"),
    ("POST", "object-at-target"),
])
def test_oversized_json_is_413(cluster: Any, client: Any, bucket: Any, method: str, where: str) -> None:
    bucket.object("o").get_writer().put_content(b"x")
    name = bucket.name
    if where == "bucket-new":
        name = _new_bucket_name()
        url = f"{cluster.endpoint}/v1/buckets/{name}"
    elif where == "bucket":
        url = f"{cluster.endpoint}/v1/buckets/{name}"
    else:  # straight to every target (the owner answers, the others redirect with 307)
        url = f"{cluster.targets[0].public_url}/v1/objects/{name}/o"
    action = {"POST": "create-bck", "PATCH": "set-bprops", "DELETE": "destroy-bck", "GET": "list"}[method]
    if where == "object-at-target":
        action = "check-lock"
    r = requests.request(method, url, data=_big_action(action), timeout=TIMEOUT)
    assert r.status_code == 413, r.text[:300]
    mentions(resp_error(r), "exceeds", "too large", "limit")
    if where == "bucket-new":
        with pytest.raises(ErrBckNotFound):
            list(client.bucket(name).list_all_objects())
    else:
        bucket.head()




@pytest.mark.parametrize("method", ["GET", "POST"])
def test_oversized_chunked_json_is_413(cluster: Any, bucket: Any, method: str) -> None:
    body = _big_action("list" if method == "GET" else "create-bck")

    def gen() -> Iterator[bytes]:
        for i in range(0, len(body), 256 << 10):
            yield body[i:i + (256 << 10)]
    name = bucket.name if method == "GET" else _new_bucket_name()
    r = requests.request(method, f"{cluster.endpoint}/v1/buckets/{name}", data=gen(), timeout=TIMEOUT)
    assert r.status_code == 413, r.text[:300]


def _split_send(base: str, method: str, path: str, body: bytes, split: int) -> tuple[int, bytes]:
    """Send headers and the first `split` body bytes, pause, then the rest (Content-Length set)."""
    u = urllib.parse.urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=TIMEOUT) as s:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        s.sendall(head + body[:split])
        time.sleep(0.2)  # not a readiness wait: forces the body into two TCP segments
        s.sendall(body[split:])
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def test_valid_json_arriving_in_pieces_is_read_whole(cluster: Any, client: Any) -> None:
    name = _new_bucket_name()
    status, body = _split_send(cluster.endpoint, "POST", f"/v1/buckets/{name}",
                               json.dumps({"action": "create-bck"}).encode(), 10)
    assert status == 200, body[:300]
    client.bucket(name).delete()


def test_valid_list_json_arriving_in_pieces_is_read_whole(cluster: Any, bucket: Any) -> None:
    status, body = _split_send(cluster.endpoint, "GET", f"/v1/buckets/{bucket.name}",
                               json.dumps({"action": "list", "value": {"props": "name"}}).encode(), 12)
    assert status == 200, body[:300]


# --- unknown actions --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH", "GET"])
def test_unknown_bucket_action_is_400(cluster: Any, bucket: Any, method: str) -> None:
    r = requests.request(method, f"{cluster.endpoint}/v1/buckets/{bucket.name}",
                         json={"action": "frobnicate-bck", "value": {}}, timeout=TIMEOUT)
    assert r.status_code == 400, r.text
    doc = resp_error(r)
    mentions(doc, "frobnicate-bck")
    mentions(doc, "action")
    bucket.head()  # still there


def test_unknown_object_action_is_400(cluster: Any, bucket: Any) -> None:
    bucket.object("o").get_writer().put_content(b"data")
    r = requests.post(f"{cluster.endpoint}/v1/objects/{bucket.name}/o", json={"action": "frobnicate-obj"},
                      timeout=TIMEOUT)
    assert r.status_code == 400, r.text
    mentions(resp_error(r), "frobnicate-obj")
    assert bytes(bucket.object("o").get_reader().read_all()) == b"data"


# --- Range ------------------------------------------------------------------------------------

@pytest.fixture
def ten(bucket: Any) -> Any:
    bucket.object("ten").get_writer().put_content(b"0123456789")
    return bucket.object("ten")


@pytest.mark.parametrize("rng", ["bytes=100-200", "bytes=10-", "bytes=abc", "bytes=0-1,3-4", "bytes=5-2",
                                 "bytes=-0", "items=0-1", "bytes=--1"])
def test_bad_range_is_416(cluster: Any, bucket: Any, ten: Any, rng: str) -> None:
    for base in [cluster.endpoint] + [t.public_url for t in cluster.targets]:
        r = requests.get(f"{base}/v1/objects/{bucket.name}/ten", headers={"Range": rng}, timeout=TIMEOUT)
        assert r.status_code == 416, (base, rng, r.status_code, r.content[:200])
        assert r.headers.get("Content-Range") == "bytes */10", r.headers
        mentions(resp_error(r), "range")


def test_bad_range_via_sdk(ten: Any) -> None:
    with pytest.raises(AISError) as info:
        ten.get_reader(byte_range="bytes=100-200").read_all()
    assert info.value.status_code == 416


@pytest.mark.parametrize("rng,status,body,content_range", [
    ("bytes=-3", 206, b"789", "bytes 7-9/10"),
    ("bytes=-30", 206, b"0123456789", "bytes 0-9/10"),
    ("bytes=0-0", 206, b"0", "bytes 0-0/10"),
    ("bytes=3-", 206, b"3456789", "bytes 3-9/10"),
    ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
])
def test_valid_range(cluster: Any, bucket: Any, ten: Any, rng: str, status: int, body: bytes,
                     content_range: str) -> None:
    for base in [cluster.endpoint] + [t.public_url for t in cluster.targets]:
        r = requests.get(f"{base}/v1/objects/{bucket.name}/ten", headers={"Range": rng}, timeout=TIMEOUT)
        assert r.status_code == status, (base, r.status_code, r.content[:200])
        assert r.content == body
        assert r.headers.get("Content-Range") == content_range
        assert r.headers.get("Content-Length") == str(len(body))
    assert bytes(ten.get_reader(byte_range=rng).read_all()) == body


# --- not found / already exists ---------------------------------------------------------------

def test_missing_object(cluster: Any, bucket: Any) -> None:
    with pytest.raises(ErrObjNotFound):
        bucket.object("no-such-object").get_reader().read_all()
    r = requests.get(f"{cluster.endpoint}/v1/objects/{bucket.name}/no-such-object", timeout=TIMEOUT)
    assert r.status_code == 404
    doc = resp_error(r)
    mentions(doc, f"ais://{bucket.name}/no-such-object")
    mentions(doc, "does not exist", "not found")
    # HEAD: 404 with the JSON in Hdr-Error and an empty body (through the proxy's 307)
    r = requests.head(f"{cluster.endpoint}/v1/objects/{bucket.name}/no-such-object", allow_redirects=True,
                      timeout=TIMEOUT)
    assert r.status_code == 404
    doc = resp_error(r)
    mentions(doc, f"ais://{bucket.name}/no-such-object")
    with pytest.raises(AISError) as info:
        bucket.object("no-such-object").head()
    assert info.value.status_code == 404
    r = requests.delete(f"{cluster.endpoint}/v1/objects/{bucket.name}/no-such-object", timeout=TIMEOUT)
    assert r.status_code == 404
    mentions(resp_error(r), "does not exist", "not found")


def test_missing_bucket(cluster: Any, client: Any) -> None:
    name = "no-such-bucket-" + os.urandom(3).hex()
    b = client.bucket(name)
    with pytest.raises(ErrBckNotFound):
        b.object("x").get_reader().read_all()
    with pytest.raises(ErrBckNotFound):
        list(b.list_all_objects())
    with pytest.raises(ErrBckNotFound):
        b.object("x").get_writer().put_content(b"x")
    with pytest.raises(ErrBckNotFound):
        b.delete()
    with pytest.raises(AISError) as info:
        b.head()
    assert info.value.status_code == 404
    for method, path in [("HEAD", f"/v1/buckets/{name}"), ("HEAD", f"/v1/objects/{name}/x"),
                         ("GET", f"/v1/objects/{name}/x"), ("PUT", f"/v1/objects/{name}/x")]:
        r = raw(cluster.endpoint, method, path, b"x" if method == "PUT" else None)
        assert r.status == 404, (method, path, r.status)
        doc = r.error(method)
        mentions(doc, f'"ais://{name}"', f"ais://{name}")
        mentions(doc, "does not exist")


def test_create_existing_bucket_is_409(cluster: Any, client: Any, bucket: Any) -> None:
    with pytest.raises(ErrBckAlreadyExists):
        client.bucket(bucket.name).create()
    client.bucket(bucket.name).create(exist_ok=True)
    r = requests.post(f"{cluster.endpoint}/v1/buckets/{bucket.name}", json={"action": "create-bck"},
                      timeout=TIMEOUT)
    assert r.status_code == 409
    doc = resp_error(r)
    mentions(doc, "already exists")
    mentions(doc, f"ais://{bucket.name}")


# --- selective HEAD props, list flags ---------------------------------------------------------

@pytest.mark.parametrize("props", ["bogus", "size,bogus", "name,,sizee"])
def test_head_with_unknown_props_is_400(cluster: Any, bucket: Any, props: str) -> None:
    bucket.object("o").get_writer().put_content(b"x")
    for obj in ("o", "missing"):
        r = requests.head(f"{cluster.endpoint}/v1/objects/{bucket.name}/{obj}", params={"props": props},
                          allow_redirects=True, timeout=TIMEOUT)
        assert r.status_code == 400, (obj, r.status_code, r.headers)
        doc = resp_error(r)
        mentions(doc, "bogus" if "bogus" in props else "sizee")
    with pytest.raises(AISError) as info:
        bucket.object("o").head(props=props)
    assert info.value.status_code == 400


def _list(cluster: Any, bucket: Any, value: dict[str, Any]) -> requests.Response:
    return requests.get(f"{cluster.endpoint}/v1/buckets/{bucket.name}",
                        json={"action": "list", "value": value}, timeout=TIMEOUT)


@pytest.mark.parametrize("flags", ["abc", "0x10", [1], {"a": 1}, "1e3"])
def test_list_with_malformed_flags_is_400(cluster: Any, bucket: Any, flags: Any) -> None:
    r = _list(cluster, bucket, {"flags": flags})
    assert r.status_code == 400, r.text[:300]
    mentions(resp_error(r), "flags")




@pytest.mark.parametrize("flags", [-1, "-1", 2 ** 64, str(2 ** 64), 1.5])
def test_list_with_out_of_range_flags_is_400(cluster: Any, bucket: Any, flags: Any) -> None:
    r = _list(cluster, bucket, {"flags": flags})
    assert r.status_code == 400, r.text[:300]
    mentions(resp_error(r), "flags")


def test_list_with_valid_flags_string_and_int(cluster: Any, bucket: Any) -> None:
    """The SDK sends flags as a decimal string; ints are accepted too (control for the 400 tests)."""
    bucket.object("o").get_writer().put_content(b"x")
    for flags in ("0", 0, "16", 16):
        r = _list(cluster, bucket, {"flags": flags})
        assert r.status_code == 200, (flags, r.text[:300])
        assert [e["name"] for e in r.json()["entries"]] == ["o"]


@pytest.mark.parametrize("value", [{"pagesize": "x"}, {"pagesize": -5}, {"props": "name,bogus"}],
                         ids=["pagesize-text", "pagesize-negative", "props-unknown"])
def test_list_with_bad_fields_is_400(cluster: Any, bucket: Any, value: dict[str, Any]) -> None:
    r = _list(cluster, bucket, value)
    assert r.status_code == 400, r.text[:300]
    mentions(resp_error(r), *(["page"] if "pagesize" in value else ["bogus"]))


def test_put_larger_than_free_space_is_507(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    first = requests.put(f"{cluster.endpoint}/v1/objects/{bucket.name}/huge", data=b"", allow_redirects=False,
                         timeout=10)
    assert first.status_code == 307
    target = urllib.parse.urlsplit(first.headers["Location"])
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    conn.putrequest("PUT", f"{target.path}?{target.query}")
    conn.putheader("Content-Length", str(1 << 60))     # far more than any disk; no body follows
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode()
    conn.close()
    assert resp.status == 507 and "not enough space" in body, body
    with pytest.raises(AISError) as exc:
        bucket.object("huge").head()
    assert exc.value.status_code == 404


@pytest.mark.parametrize("value", [
    {"rate_limit": {"frontend": {"max_tokens": "lots"}}},
    {"rate_limit": {"frontend": {"enabled": "yes"}}},
    {"versioning": {"validate_warm_get": 1}},
])
def test_set_props_keeps_types(cluster, bucket, value) -> None:  # type: ignore[no-untyped-def]
    r = requests.patch(f"{cluster.endpoint}/v1/buckets/{bucket.name}", json={"action": "set-bprops", "value": value},
                       timeout=10)
    assert r.status_code == 400 and "bucket property" in r.text, r.text


def test_job_counts_must_be_numbers(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    r = requests.delete(f"{cluster.endpoint}/v1/buckets/{bucket.name}", timeout=10,
                        json={"action": "delete-listrange", "value": {"objnames": ["a"], "num-workers": "many"}})
    assert r.status_code == 400 and "num-workers" in r.text, r.text
