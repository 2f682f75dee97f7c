"""Hostile input against real nodes: never a crash, never a 5xx, never a file outside a mountpath.

- object names that try to escape (`..`, absolute, NUL, too long) through every door that takes a
  name: the S3 API, multipart uploads, copy destinations, renames, `object_to`, batch-get
  entries, archive names and multi-object jobs (`objnames`, templates, `prepend`);
- request heads beyond the listener's limits, and clients that never finish one (slowloris);
- XML bombs in S3 bodies, malformed msgpack on the intra-cluster port;
- hypothesis-generated requests (methods, paths, queries, headers, bodies) against a running
  cluster: no 5xx, and every node healthy afterwards.

Raw requests go through `http.client`/sockets so that nothing on the client side normalises them.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
import urllib.parse
from typing import Any, Callable, Iterator

import pytest
import requests
from aistore import Client
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.cluster.conftest import make_tar
from tests.cluster.test_bad_input import error_json, raw, unexpected_files

TIMEOUT = 20
_MARK = "hostile-" + os.urandom(4).hex()

# Names that must never reach the filesystem, as raw path suffixes (percent-encoded) and as text.
ESCAPES = [
    f"..%2F..%2F..%2F..%2F..%2F..%2F{_MARK}",
    f"a/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/{_MARK}",
    f"%2Ftmp%2F{_MARK}",
    f"{_MARK}%00.txt",
    "n" * 1025,
    "s/" + "x" * 256,
    f"a//{_MARK}",
]
ESCAPE_NAMES = ["../" * 8 + _MARK, f"a/../../../../../../../{_MARK}", f"/tmp/{_MARK}", f"{_MARK}\x00.txt",
                "n" * 1025, "s/" + "x" * 256, f"a//{_MARK}", "./" + _MARK]


def stray(cluster: Any) -> list[str]:
    """Files outside the mountpath layout, and anything named with the marker, anywhere near."""
    found = unexpected_files(cluster.root, cluster.targets)
    for top in {cluster.root, os.path.dirname(cluster.root)}:
        for dirpath, dirnames, filenames in os.walk(top):
            found += [os.path.join(dirpath, n) for n in dirnames + filenames if _MARK in n]
    found += [p for p in (f"/tmp/{_MARK}", f"/{_MARK}") if os.path.lexists(p)]
    return sorted(set(found) - {os.path.join(cluster.root, _MARK + ".canary")})


@pytest.fixture(scope="module")
def hostile_bucket(cluster: Any) -> Iterator[str]:
    """A bucket with a few objects (one a tar shard), and a canary file next to the cluster that
    escaping deletes would remove."""
    name = "hostile-" + os.urandom(3).hex()
    c = Client(cluster.endpoint)
    b = c.bucket(name)
    b.create()
    for obj in ("o", "dir/o2"):
        b.object(obj).get_writer().put_content(b"payload")
    b.object("shard.tar").get_writer().put_content(make_tar({"member.txt": b"hello"}))
    yield name
    b.delete(missing_ok=True)


@pytest.fixture(scope="module")
def canary(cluster: Any) -> Iterator[str]:
    path = os.path.join(cluster.root, _MARK + ".canary")
    with open(path, "w") as f:
        f.write("must survive")
    yield path
    os.unlink(path)


def canary_names(cluster: Any, bucket: str, canary: str) -> list[str]:
    """The canary's path relative to the bucket's object directory on every mountpath."""
    return sorted({os.path.relpath(canary, os.path.join(mp, "@ais", bucket, "%ob"))
                   for t in cluster.targets for mp in t.mountpaths})


def wait_job(cluster: Any, job_id: str) -> None:
    """Until the job has ended on every target (whatever its outcome)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = requests.get(f"{cluster.endpoint}/v1/cluster", params={"what": "status"},
                         data=json.dumps({"id": job_id}), timeout=TIMEOUT)
        assert r.status_code < 500, r.content[:300]
        if r.status_code == 200 and r.json().get("end_time"):
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


def assert_4xx(r: requests.Response | Any, what: str) -> None:
    status = getattr(r, "status_code", None) or r.status
    assert 400 <= status < 500, f"{what}: {status} {(getattr(r, 'content', None) or r.body)[:300]!r}"


# --- object names through every door --------------------------------------------------------------

@pytest.mark.parametrize("suffix", ESCAPES)
def test_s3_object_names_are_400(cluster: Any, hostile_bucket: str, suffix: str) -> None:
    bases = [cluster.endpoint] + [t.public_url for t in cluster.targets]
    for base in bases:
        for method, query, body in (("PUT", "", b"escaped"), ("GET", "", None), ("HEAD", "", None),
                                    ("DELETE", "", None), ("POST", "?uploads", None),
                                    ("PUT", "?partNumber=1&uploadId=" + "0" * 32, b"part")):
            r = raw(base, method, f"/s3/{hostile_bucket}/{suffix}{query}", body)
            assert r.status == 400, (base, method, suffix[:60], r.status, r.body[:300])
            if method != "HEAD":
                assert b"<Code>InvalidArgument</Code>" in r.body, r.body[:300]


@pytest.mark.parametrize("name", ESCAPE_NAMES)
def test_s3_copy_source_and_destination_are_400(cluster: Any, hostile_bucket: str, name: str) -> None:
    quoted = urllib.parse.quote(name, safe="")
    # a bad source
    r = raw(cluster.endpoint, "PUT", f"/s3/{hostile_bucket}/copy-dst",
            headers={"x-amz-copy-source": f"/{hostile_bucket}/{quoted}"})
    assert r.status == 400, (r.status, r.body[:300])
    # a bad destination of a good source
    r = raw(cluster.endpoint, "PUT", f"/s3/{hostile_bucket}/{quoted}",
            headers={"x-amz-copy-source": f"/{hostile_bucket}/o"})
    assert r.status == 400, (r.status, r.body[:300])


@pytest.mark.parametrize("name", ESCAPE_NAMES)
def test_native_name_fields_are_400(cluster: Any, hostile_bucket: str, name: str) -> None:
    """Rename, `object_to`, batch-get entries and archive names take names from bodies and queries."""
    base, b = cluster.endpoint, hostile_bucket
    # rename (the proxy redirects to the owner)
    r = requests.post(f"{base}/v1/objects/{b}/o", json={"action": "rename-obj", "name": name}, timeout=TIMEOUT)
    assert_4xx(r, "rename")
    # copy with object_to, straight at every target
    for t in cluster.targets:
        r = requests.post(f"{t.public_url}/v1/objects/{b}/o", params={"object_to": f"ais/@#/{b}/{name}"},
                          json={"action": "copy-obj"}, timeout=TIMEOUT)
        assert_4xx(r, "object_to")
    # batch-get: objname, uname
    for entry in ({"objname": name}, {"uname": f"ais/@#/{b}/{name}"}):
        r = requests.get(f"{base}/v1/ml/moss/{b}", json={"in": [entry], "mime": ".tar"}, timeout=TIMEOUT)
        assert r.status_code == 400, ("moss", entry, r.status_code, r.content[:300])
    # archive into a shard with a bad name
    r = requests.put(f"{base}/v1/buckets/{b}", json={"action": "archive", "value": {
        "archname": name, "objnames": ["o"], "mime": ".tar"}}, timeout=TIMEOUT)
    assert r.status_code == 400, ("archive", r.status_code, r.content[:300])


@pytest.mark.parametrize("job", ["delete-listrange", "copy-listrange", "archive", "copy-bck", "copy-listrange-prepend",
                                 "copy-bck-prepend", "delete-template"])
def test_multi_object_jobs_never_touch_files_outside(cluster: Any, hostile_bucket: str, canary: str,
                                                     job: str) -> None:
    """Names in `objnames`, templates and `prepend` go through the same check: a request that names
    the canary is a 400 (or at worst a failed job), and the canary survives."""
    base, b = cluster.endpoint, hostile_bucket
    escapes = canary_names(cluster, b, canary) + ESCAPE_NAMES[:3]
    dst = {"name": b + "-dst", "provider": "ais", "namespace": {"uuid": "", "name": ""}}
    if job == "delete-listrange":
        reqs = [("DELETE", f"/v1/buckets/{b}", {"action": job, "value": {"objnames": escapes}})]
    elif job == "delete-template":
        reqs = [("DELETE", f"/v1/buckets/{b}", {"action": "delete-listrange", "value": {"template": t}})
                for t in ("../../../{0..3}/" + _MARK, canary_names(cluster, b, canary)[0][:-1] + "{0..9}")]
    elif job == "copy-listrange":
        reqs = [("POST", f"/v1/buckets/{b}", {"action": job, "value": {"objnames": escapes, "tobck": dst}})]
    elif job == "copy-listrange-prepend":
        reqs = [("POST", f"/v1/buckets/{b}", {"action": "copy-listrange", "value": {
            "objnames": ["o"], "tobck": dst, "prepend": "../../../../../../" + _MARK + "-"}})]
    elif job == "copy-bck":
        reqs = [("POST", f"/v1/buckets/{b}?bck_to=ais/@%23/{b}-dst2/", {"action": "copy-bck", "value": {
            "prefix": "../../../"}})]
    elif job == "copy-bck-prepend":
        reqs = [("POST", f"/v1/buckets/{b}?bck_to=ais/@%23/{b}-dst3/", {"action": "copy-bck", "value": {
            "prepend": "../../../../../../" + _MARK + "-"}})]
    else:
        reqs = [("PUT", f"/v1/buckets/{b}", {"action": "archive", "value": {
            "archname": "a.tar", "objnames": escapes, "mime": ".tar", "tobck": dst}})]
    for method, path, body in reqs:
        r = requests.request(method, base + path, json=body, timeout=TIMEOUT)
        assert r.status_code < 500, (job, r.status_code, r.content[:300])
        if r.status_code == 200:
            wait_job(cluster, r.text)
    assert os.path.exists(canary), f"{job} deleted a file outside the mountpaths"
    assert not stray(cluster), f"{job}: files outside the mountpath layout: {stray(cluster)[:10]}"


def test_batch_get_archpath_cannot_escape(cluster: Any, hostile_bucket: str) -> None:
    """An archpath names a member inside a shard, never a file: `..` finds nothing (a 4xx, or
    with continue-on-error an empty `__404__/` member)."""
    b = hostile_bucket
    for archpath in ("../../../../etc/passwd", "/etc/passwd", "member.txt\x00", "../" * 50):
        r = requests.get(f"{cluster.endpoint}/v1/ml/moss/{b}", json={"in": [{"objname": "shard.tar",
                                                                           "archpath": archpath}]},
                         timeout=TIMEOUT)
        assert 400 <= r.status_code < 500, (archpath, r.status_code, r.content[:200])
        r = requests.get(f"{cluster.endpoint}/v1/objects/{b}/shard.tar", params={"archpath": archpath},
                         timeout=TIMEOUT)
        assert 400 <= r.status_code < 500, (archpath, r.status_code, r.content[:200])
        assert b"root:" not in r.content


def test_no_file_outside_mountpaths_after_all(cluster: Any, hostile_bucket: str) -> None:
    assert not stray(cluster), stray(cluster)[:20]


# --- ranges ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rng,native,s3", [
    (b"bytes=\xd9\xa3-", 416, 200),          # an Arabic-Indic digit: int() would take it
    (b"bytes=1_0-", 416, 200),                 # int() would take it too
    (b"bytes=" + b"9" * 5000 + b"-", 416, 416),  # past int()'s digit limit, and past the end
    (b"bytes=0-" + b"9" * 5000, 206, 206),     # an end past the object is clipped, however long
    (b"bytes=-" + b"9" * 40, 206, 206),        # a suffix longer than the object: all of it
    (b"bytes=7-3", 416, 416),                  # inverted
    (b"bytes=0-1,2-3", 416, 200),              # several ranges: AIStore refuses, S3 ignores
    (b"bytes=99-", 416, 416),                  # past the end
    (b"bytes=\xff-", 416, (200, 416)),         # the proxy's relay drops the byte: "bytes=-"
], ids=["other-digits", "underscore", "5000-digits", "huge-end", "huge-suffix", "inverted", "multiple",
        "past-end", "not-utf8"])
def test_hostile_ranges(cluster: Any, hostile_bucket: str, rng: bytes, native: int, s3: int | tuple[int, ...]) -> None:
    """Native GET: one satisfiable `bytes=` range or 416 (test_bad_input has the ordinary cases);
    S3 GetObject: a malformed Range is ignored (200), an unsatisfiable one is InvalidRange."""
    for base in [cluster.spec.nodes[0]] + cluster.targets:
        for path, want in ((f"/v1/objects/{hostile_bucket}/o", native), (f"/s3/{hostile_bucket}/o", s3)):
            status, answer = send(base.public_port, "GET", path, {"Range": rng}, None)
            if status in (301, 307):
                loc = urllib.parse.urlsplit(answer.decode())
                status, answer = send(loc.port or 80, "GET", f"{loc.path}?{loc.query}", {"Range": rng}, None)
            assert status in (want if isinstance(want, tuple) else (want,)), (base.name, path, rng[:40], status,
                                                                              answer[:200])
            if status in (200, 206):
                assert answer == b"payload"[:len(answer)] and answer, answer[:50]


# --- request heads beyond the listener's limits ---------------------------------------------------

def exchange(port: int, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def healthy(cluster: Any) -> None:
    for n in cluster.spec.nodes:
        r = requests.get(f"{n.public_url}/v1/health", timeout=TIMEOUT)
        assert r.status_code == 200, (n.name, r.status_code, r.content[:200])


def ports(cluster: Any) -> list[int]:
    return [p for n in cluster.spec.nodes for p in (n.public_port, n.intra_port)]


@pytest.mark.parametrize("head,words", [
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", b"16384"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-" + b"n" * 20000 + b": 1\r\n\r\n", b"16384"),
    (b"GET /v1/" + b"p" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"16384"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(300)) + b"\r\n",
     b"Too many headers"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n", b"whitespace"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), b"Bad Request"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", b"Content-Length"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
     b"Transfer-Encoding"),
], ids=["header-value", "header-name", "request-line", "too-many-headers", "obs-fold", "tls-hello",
        "two-content-lengths", "te-and-cl"])
def test_request_heads_beyond_limits_are_400(cluster: Any, head: bytes, words: bytes) -> None:
    """Each listener (public and intra, proxy and targets) answers 400 naming the problem and closes."""
    for port in ports(cluster):
        answer = exchange(port, head)
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b""
        assert status in (b"400", b"431"), (port, answer[:300])
        assert words.lower() in answer.lower(), (port, answer[:400])
    healthy(cluster)


@pytest.mark.parametrize("path", ["/v1/health", "/no/such/route", "/s3/x/y"])
def test_unknown_expect_is_417(cluster: Any, path: str) -> None:
    """aiohttp's own Expect check formatted the value into its answer: bytes that are not UTF-8
    made that a 500 on every route, before any middleware."""
    for port in ports(cluster):
        for value in (b"\x80", b"\xff\xfe", b"nope"):
            answer = exchange(port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nExpect: " + value
                              + b"\r\nConnection: close\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 417 "), (port, value, answer[:300])
    r = requests.put(f"{cluster.endpoint}/v1/health", data=b"x", headers={"Expect": "100-continue"}, timeout=TIMEOUT)
    assert r.status_code < 500, r.status_code


def test_slow_request_heads_are_cut_off(make_cluster: Callable[..., Any]) -> None:
    """Slowloris: connections that never finish their request head are closed after
    `net.header_read_timeout_s` (1 s here), bytes trickling in or not, while other clients are served."""
    c = make_cluster(proxies=1, targets=1, mountpaths=1, env={"AIS_NET_HEADER_READ_TIMEOUT_S": "1"})
    victims = []
    for port in ports(c):
        for partial in (b"GET /v1/hea", b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: "):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(partial)
            victims.append(s)
    t0 = time.monotonic()
    served = 0
    # meanwhile: every node serves, and one connection trickles a byte every 0.2 s
    trickle = socket.create_connection(("127.0.0.1", c.spec.nodes[0].public_port), timeout=10)
    trickle.sendall(b"GET /v1/health HTTP/1.1\r\nX-Slow: ")
    trickled_until = None
    while time.monotonic() - t0 < 6 and trickled_until is None:
        healthy(c)
        served += 1
        try:
            trickle.sendall(b"a")
            trickle.settimeout(0.2)
            if trickle.recv(1) == b"":
                trickled_until = time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            trickled_until = time.monotonic() - t0
    assert trickled_until is not None and 0.5 < trickled_until < 4, trickled_until
    assert served >= 2
    for s in victims:
        s.settimeout(5)
        try:
            assert s.recv(1) == b"", "a slow request head got an answer"
        except ConnectionResetError:
            pass
        s.close()
    assert time.monotonic() - t0 < 8
    trickle.close()
    healthy(c)


# --- S3 XML bodies ---------------------------------------------------------------------------------

_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
           + ']><Delete><Object><Key>&lol9;</Key></Object></Delete>')
XML_BOMBS = {
    "billion-laughs": _LAUGHS.encode(),
    "external-entity": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                       b'<Delete><Object><Key>&xxe;</Key></Object></Delete>',
    "external-dtd": b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:1/evil.dtd"><Delete/>',
    "parameter-entity": b'<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><Delete/>',
    "utf16-laughs": _LAUGHS.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
                          .encode("utf-16"),
    "deep": b"<Delete>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</Delete>",
    "too-large": b"<Delete>" + b"<Object><Key>k</Key></Object>" * 40_000 + b"</Delete>",
    "not-xml": b"\x00\xff garbage",
}


@pytest.mark.parametrize("name", list(XML_BOMBS))
def test_xml_bombs_are_malformed_xml(cluster: Any, hostile_bucket: str, name: str) -> None:
    body = XML_BOMBS[name]
    up = raw(cluster.endpoint, "POST", f"/s3/{hostile_bucket}/mpu-key?uploads")
    assert up.status == 200, up.body[:300]
    upload_id = up.body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
    for method, path in (("POST", f"/s3/{hostile_bucket}?delete"),
                         ("POST", f"/s3/{hostile_bucket}/mpu-key?uploadId={upload_id}")):
        t0 = time.monotonic()
        r = raw(cluster.endpoint, method, path, body, headers={"Content-Type": "application/xml"})
        took = time.monotonic() - t0
        assert r.status == 400, (path, r.status, r.body[:300])
        assert b"<Code>MalformedXML</Code>" in r.body, r.body[:300]
        assert b"root:" not in r.body
        assert took < 5, f"{name} took {took:.1f} s"
    healthy(cluster)
    assert Client(cluster.endpoint).bucket(hostile_bucket).object("o").get_reader().read_all() == b"payload"


# --- intra-cluster bodies --------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"", b"\xc1", b"\x92\x01", b"\x81\xa7entries\x91\x93\x01\x02\x03",
                                  b"\x81\xa7entries\x91\x97\xa3ais\xa0\xa1b\xc4\x01o\xa0\x00\x00",
                                  b"\x81\xa7entries\x91\x97\xa3ais\xa0\xa1b\xa5../..\xa0\x00\x00",
                                  b"\xdd\xff\xff\xff\xff"],
                         ids=["empty", "reserved-byte", "array", "short-entry", "binary-name", "dotdot", "huge-array"])
def test_malformed_msgpack_is_400(cluster: Any, body: bytes) -> None:
    t = cluster.targets[0]
    r = requests.post(f"http://127.0.0.1:{t.intra_port}/v1/ml/moss/send", data=body,
                      headers={"Content-Type": "application/msgpack"}, timeout=TIMEOUT)
    assert r.status_code == 400, (r.status_code, r.content[:300])
    error_json("POST", r.status_code, None, r.content)


# --- hand-picked hostile requests (each once found a 500, or guards a parser that could) -------------

HOSTILE_REQUESTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("GET", "/v1/objects/{b}/shard.tar?archregx=%5B&archmode=regexp", {}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archregx=(a%2A)%2A%24&archmode=regexp", {}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archregx=x&archmode=bogus", {}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archpath=member.txt&archmime=bogus", {}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archpath=member.txt&archmime=.zip", {}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archpath=nope", {}, None),
    ("GET", "/v1/objects/{b}/o?archpath=x", {}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archpath=member.txt", {"Range": "bytes=2-100"}, None),
    ("GET", "/v1/objects/{b}/shard.tar?archpath=member.txt", {"Range": "bytes=9-100"}, None),
    ("PUT", "/v1/objects/{b}/shard.tar?archpath=new.txt", {"Ais-Pine": "bogus"}, b"data"),
    ("PUT", "/v1/objects/{b}/shard.tar?archpath=../../x", {}, b"data"),
    ("PUT", "/v1/objects/{b}/o?archpath=new.txt", {}, b"data"),
    ("PUT", "/v1/objects/{b}/o?archpath=new.txt&archmime=.zip", {}, b"data"),
    ("PUT", "/v1/objects/{b}/new.tgz?archpath=new.txt", {}, b"data"),
    ("PUT", "/v1/objects/{b}/o?append_type=append", {}, b"data"),
    ("PUT", "/v1/objects/{b}/o?append_type=flush&append_handle=x|y", {}, b""),
    ("PUT", "/v1/objects/{b}/o?append_type=bogus", {}, b""),
    ("PUT", "/v1/objects/{b}/o?uploadId=" + "0"*32 + "&partNumber=abc", {}, b"x"),
    ("POST", "/v1/objects/{b}/o", {}, json.dumps({"action": "mpt-complete", "value": {"parts": "x"}}).encode()),
    ("POST", "/v1/objects/{b}/o?uploadId=abc",
     {}, json.dumps({"action": "mpt-complete", "value": [1, "x"]}).encode()),
    ("POST", "/v1/objects/{b}/o", {}, json.dumps({"action": "mpt-upload"}).encode()),
    ("GET", "/v1/objects/{b}/o?etl_name=nonexistent", {}, None),
    ("GET", "/v1/objects/{b}/o", {"Ais-Blob-Download": "true", "Ais-Blob-Workers": "x"}, None),
    ("PUT", "/v1/objects/{b}/o", {"Ais-Checksum-Type": "bogus", "Ais-Checksum-Value": "x"}, b"data"),
    ("PUT", "/v1/objects/{b}/o", {"Ais-Checksum-Type": "xxhash", "Ais-Checksum-Value": "x"}, b"data"),
    ("PUT", "/v1/objects/{b}/o", {"Ais-Checksum-Type": "md5", "Ais-Checksum-Value": "\xff"}, b"data"),
    ("GET", "/v1/ml/moss/{b}",
     {}, json.dumps({"in": [{"objname": "o", "start": 3, "length": 100}], "strm": False}).encode()),
    ("GET", "/v1/ml/moss/{b}",
     {},
     json.dumps({"in": [{"objname": "shard.tar", "archpath": "member.txt", "start": 10, "length": -1}]}).encode()),
    ("GET", "/v1/ml/moss/{b}", {}, json.dumps({"in": [{"objname": "o", "start": 2**70, "length": -1}]}).encode()),
    ("GET", "/v1/ml/moss/{b}", {}, json.dumps({"in": [{"objname": "nope"}], "coer": True, "mime": ".zip"}).encode()),
    ("GET", "/v1/ml/moss/{b}", {}, json.dumps({"in": [{"objname": "o", "archpath": "x"}], "coer": True}).encode()),
    ("GET", "/v1/ml/moss/{b}?coloc=2",
     {}, json.dumps({"in": [{"objname": "shard.tar", "archpath": "member.txt"}]}).encode()),
    ("GET", "/v1/ml/moss/{b}", {}, json.dumps({"in": [{"objname": "o", "bucket": "nope"}]}).encode()),
    ("GET", "/v1/ml/moss/{b}", {}, json.dumps({"in": [{"objname": "o", "provider": "aws"}]}).encode()),
    ("PUT", "/s3/{b}/mk?uploadId={uid}&partNumber=0", {}, b"x"),
    ("PUT", "/s3/{b}/mk?uploadId={uid}&partNumber=10001", {}, b"x"),
    ("PUT", "/s3/{b}/mk?uploadId={uid}&partNumber=1e3", {}, b"x"),
    ("PUT", "/s3/{b}/mk?uploadId={uid}&partNumber=%D9%A3", {}, b"x"),
    ("PUT", "/s3/{b}/mk?uploadId={uid}&partNumber=1",
     {"x-amz-copy-source": "/{b}/o", "x-amz-copy-source-range": "bytes=0-99"}, None),
    ("PUT", "/s3/{b}/mk?uploadId={uid}&partNumber=1",
     {"x-amz-copy-source": "/{b}/o", "x-amz-copy-source-range": "bytes=0-" + "9"*30}, None),
    ("GET", "/s3/{b}/mk?uploadId={uid}&max-parts=-1", {}, None),
    ("GET", "/s3/{b}/mk?uploadId={uid}&max-parts=abc&part-number-marker=x", {}, None),
    ("GET", "/s3/{b}?list-type=2&max-keys=-1", {}, None),
    ("GET", "/s3/{b}?list-type=2&max-keys=abc", {}, None),
    ("GET", "/s3/{b}?list-type=2&max-keys=99999999999999999999999", {}, None),
    ("GET", "/s3/{b}?list-type=2&continuation-token=%FF%FE", {}, None),
    ("GET", "/s3/{b}?list-type=2&continuation-token=!!!", {}, None),
    ("GET", "/s3/{b}?list-type=3", {}, None),
    ("GET", "/s3/{b}?encoding-type=bogus&delimiter=%00", {}, None),
    ("GET", "/s3/{b}?uploads&max-uploads=abc", {}, None),
    ("GET", "/s3/{b}?versions", {}, None),
    ("GET", "/s3/{b}?location", {}, None),
    ("PUT", "/s3/{b}/o2", {"Content-MD5": "xx"}, b"data"),
    ("PUT", "/s3/{b}/o2", {"Content-MD5": base64.b64encode(b"0"*16).decode()}, b"data"),
    ("PUT", "/s3/{b}/o2", {"x-amz-checksum-crc32": "AAAA"}, b"data"),
    ("PUT", "/s3/{b}/o2", {"x-amz-checksum-bogus": "AAAA", "x-amz-sdk-checksum-algorithm": "bogus"}, b"data"),
    ("PUT", "/s3/{b}/o2",
     {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "Content-Encoding": "aws-chunked"}, b"zz\r\n"),
    ("PUT", "/s3/{b}/o2",
     {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "x-amz-decoded-content-length": "3",
     "x-amz-trailer": "x-amz-checksum-crc32"}, b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"),
    ("PUT", "/s3/{b}/o2", {"x-amz-content-sha256": "0"*64}, b"data"),
    ("PUT", "/s3/{b}/o2", {"Content-Encoding": "aws-chunked"}, b"data"),
    ("PUT", "/s3/{b}/o3", {"x-amz-copy-source": "/{b}/o", "x-amz-metadata-directive": "BOGUS"}, None),
    ("PUT", "/s3/{b}/o3", {"x-amz-copy-source": "/{b}/o", "x-amz-copy-source-if-modified-since": "garbage"}, None),
    ("PUT", "/s3/{b}/o3", {"x-amz-copy-source": "/{b}/o?versionId=x"}, None),
    ("PUT", "/s3/{b}/o3", {"x-amz-copy-source": "/nope/o"}, None),
    ("PUT", "/s3/{b}/o3", {"x-amz-copy-source": "{b}"}, None),
    ("PUT", "/s3/{b}/o3", {"x-amz-copy-source": "%FF/%FE"}, None),
    ("GET", "/s3/{b}/o", {"If-Modified-Since": "garbage", "If-Match": "\xff"}, None),
    ("GET", "/s3/{b}/o", {"If-Unmodified-Since": "Mon, 99 Foo 99999 99:99:99 GMT"}, None),
    ("GET", "/s3/{b}/o", {"If-Modified-Since": "Sat, 01 Jan 10000 00:00:00 GMT"}, None),
    ("GET", "/s3/{b}/o", {"If-Modified-Since": "Thu, 01 Jan 1 00:00:00 GMT"}, None),
    ("GET", "/v1/objects/{b}/o", {"If-Modified-Since": "Thu, 01 Jan 0001 00:00:00 GMT"}, None),
    ("GET", "/v1/objects/{b}/o", {"If-None-Match": "*"}, None),
    ("GET", "/s3/{b}/o?partNumber=2", {}, None),
    ("GET", "/s3/{b}/o?partNumber=abc", {}, None),
    ("HEAD", "/s3/{b}/o?partNumber=-1", {}, None),
    ("POST", "/s3/{b}/o?restore", {}, b"<RestoreRequest/>"),
    ("POST", "/s3/{b}/o?select&select-type=2", {}, b"<x/>"),
    ("PUT", "/s3/{b}?versioning", {}, b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"),
    ("PUT", "/s3/{b}?versioning", {}, b"<x/>"),
    ("DELETE", "/s3/{b}?delete", {}, None),
    ("POST", "/s3/{b}?delete", {}, b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"),
    ("POST", "/s3/{b}?delete", {}, b"<Delete><Object><Key></Key></Object></Delete>"),
    ("POST", "/s3/{b}?delete", {}, b"<Delete><Object></Object></Delete>"),
    ("POST", "/s3/{b}?delete", {"Content-MD5": "bad"}, b"<Delete><Object><Key>k</Key></Object></Delete>"),
    ("POST", "/s3/{b}/o?uploads", {"x-amz-checksum-algorithm": "bogus"}, None),
    ("POST", "/s3/{b}/o?uploads", {"x-amz-meta-a": "b" * 3000}, None),
    ("POST", "/s3/{b}/mk?uploadId={uid}", {}, b"<CompleteMultipartUpload><Part><PartNumber>99999999999999999999999"
                                             b"</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"),
    ("POST", "/s3/{b}/mk?uploadId={uid}", {}, b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"
                                             + b"a" * 32 + b"</ETag><ChecksumCRC32>!!</ChecksumCRC32></Part>"
                                             b"</CompleteMultipartUpload>"),
    ("DELETE", "/s3/{b}/mk?uploadId={uid}x", {}, None),
    ("PUT", "/s3/" + "b" * 70, {}, None),
    ("PUT", "/s3/{b}-new", {}, b"<CreateBucketConfiguration><LocationConstraint>" + b"x" * 100
                               + b"</LocationConstraint></CreateBucketConfiguration>"),
    ("GET", "/v1/buckets/{b}?what=summary", {}, None),
    ("GET", "/v1/buckets/{b}", {}, json.dumps({"action": "summary-bck", "value": {"prefix": 5}}).encode()),
    ("GET", "/v1/buckets/{b}",
     {},
     json.dumps({"action": "list", "value":
     {"page_size": -5, "continuation_token": "zzz", "start_after": 3}}).encode()),
    ("GET", "/v1/buckets/{b}",
     {}, json.dumps({"action": "list", "value": {"props": ["a"], "prefix": ["x"]}}).encode()),
    ("GET", "/v1/buckets/{b}?props=bogus", {}, None),
    ("HEAD", "/v1/buckets/{b}?presence=bogus", {}, None),
    ("PATCH", "/v1/buckets/{b}",
     {},
     json.dumps({"action": "set-bprops", "value":
     {"mirror": {"copies": "x"}, "lru": 5, "checksum": {"type": "bogus"}}}).encode()),
    ("PATCH", "/v1/buckets/{b}", {}, json.dumps({"action": "set-bprops", "value": {"access": "abc"}}).encode()),
    ("PATCH", "/v1/buckets/{b}",
     {}, json.dumps({"action": "set-bprops", "value": {"rate_limit": {"frontend": {"max_tokens": "x"}}}}).encode()),
    ("PATCH", "/v1/buckets/{b}",
     {}, json.dumps({"action": "set-bprops", "value": {"features": "x", "versioning": {"enabled": "yes"}}}).encode()),
    ("PATCH", "/v1/buckets/{b}", {}, json.dumps({"action": "set-bprops", "value": ["x"]}).encode()),
    ("POST", "/v1/buckets/{b}",
     {}, json.dumps({"action": "prefetch-listrange", "value": {"objnames": ["o"]}}).encode()),
    ("POST", "/v1/buckets/{b}?bck_to=ais/@%23/{b}/", {}, json.dumps({"action": "copy-bck"}).encode()),
    ("POST", "/v1/buckets/{b}?bck_to=bogus", {}, json.dumps({"action": "copy-bck"}).encode()),
    ("POST", "/v1/buckets/{b}?bck_to=aws/@%23/x/", {}, json.dumps({"action": "move-bck"}).encode()),
    ("PUT", "/v1/buckets/{b}",
     {},
     json.dumps({"action": "archive", "value": {"archname": "a.tar", "mime": "bogus", "objnames": ["o"]}}).encode()),
    ("PUT", "/v1/buckets/{b}",
     {},
     json.dumps({"action": "archive", "value":
     {"archname": "a.zip", "objnames": ["o", "shard.tar"], "mime": ".zip", "include_src": "x"}}).encode()),
    ("DELETE", "/v1/buckets/{b}", {}, json.dumps({"action": "evict-remote-bck"}).encode()),
    ("DELETE", "/v1/buckets/{b}",
     {}, json.dumps({"action": "delete-listrange", "value": {"template": "o{0..99999999999}"}}).encode()),
    ("DELETE", "/v1/buckets/{b}",
     {},
     json.dumps({"action": "delete-listrange", "value":
     {"template": "{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}"}}).encode()),
    ("GET", "/v1/cluster?what=status", {}, json.dumps({"id": 5}).encode()),
    ("GET", "/v1/cluster?what=status", {}, b"[1]"),
    ("GET", "/v1/cluster?what=status&id=x", {}, None),
    ("GET", "/v1/cluster?what=query_stats", {}, json.dumps({"kind": ["x"]}).encode()),
    ("GET", "/v1/daemon?what=bogus", {}, None),
    ("GET", "/v1/etl/nope",
     {}, None), ("GET", "/v1/etl/nope/logs/t1", {}, None), ("DELETE", "/v1/etl/nope", {}, None),
    ("POST", "/v1/etl/nope/start", {}, None),
    ("PUT", "/v1/etl",
     {},
     json.dumps({"name": "abcdef", "runtime": {"image": "x"}, "comm_type": "hpush://",
     "init_timeout": "x"}).encode()),
    ("DELETE", "/v1/tokens", {}, b"garbage"),
    ("GET", "/v1/buckets?provider=bogus", {}, None),
    ("GET", "/v1/buckets/{b}?provider=ais&namespace=bogus", {}, None),
    ("GET", "/v1/objects/{b}/o?provider=ais&namespace=@x%23y", {}, None),
]


@pytest.fixture
def targeted_bucket(cluster: Any) -> Iterator[str]:
    name = "targeted-" + os.urandom(3).hex()
    base = cluster.endpoint
    requests.post(f"{base}/v1/buckets/{name}", json={"action": "create-bck"}, timeout=TIMEOUT).raise_for_status()
    for obj, data in (("o", b"payload"), ("shard.tar", make_tar({"member.txt": b"hello", "d/m2": b"x"}))):
        requests.put(f"{base}/v1/objects/{name}/{obj}", data=data, timeout=TIMEOUT).raise_for_status()
    yield name
    c = Client(base)
    for b in c.cluster().list_buckets():
        if b.name.startswith(name):
            c.bucket(b.name).delete(missing_ok=True)


def test_targeted_requests_never_5xx(cluster: Any, targeted_bucket: str) -> None:
    """Archive reads and appends, appends and multipart, checksums, batch-get ranges, S3 multipart,
    listing, copy and conditional headers, bucket props, jobs, ETL and job queries: no 5xx (501 Not
    Implemented is a deliberate answer), redirects followed once."""
    port = cluster.spec.nodes[0].public_port
    up = send(port, "POST", f"/s3/{targeted_bucket}/mk?uploads", {}, None)
    assert up[0] == 200, up
    uid = up[1].split(b"<UploadId>")[1].split(b"<")[0].decode()
    failed = []
    for method, path, hdrs, data in HOSTILE_REQUESTS:
        path = path.replace("{b}", targeted_bucket).replace("{uid}", uid)
        raw_headers = {k: v.replace("{b}", targeted_bucket).encode("latin-1") for k, v in hdrs.items()}
        status, answer = send(port, method, path, raw_headers, data)
        if status in (301, 302, 307, 308) and answer:
            loc = urllib.parse.urlsplit(answer.decode())
            status, answer = send(loc.port or 80, method, loc.path + ("?" + loc.query if loc.query else ""),
                                  raw_headers, data)
        if status >= 500 and status != 501:
            failed.append(f"{method} {path} {hdrs} -> {status}: {answer[:300]!r}")
    assert not failed, "\n".join(failed)
    healthy(cluster)


# --- hypothesis-generated requests against a running cluster -----------------------------------------

_FUZZ_SEED = os.environ.get("AIS_FUZZ_SEED", "")
_FUZZ_EXAMPLES = int(os.environ.get("AIS_FUZZ_EXAMPLES", "3000"))
FUZZ_BUDGET_S = float(os.environ.get("AIS_FUZZ_BUDGET_S", "30"))
_FUZZ_BUCKETS = ["fuzz-a", "fuzz-b"]

_SEGMENTS = ["..", ".", "%2e%2e", "%2E", "%00", "%2F", "%FF", "%C0%AE", "a", "o", "dir", "shard.tar", "",
             "x" * 300, "%25", "~", "@", "@%23", "a.tar", "member.txt", "v1", "s3", "fuzz-a", "fuzz-b", "uploads"]
segment = st.one_of(st.sampled_from(_SEGMENTS),
                    st.text(max_size=12).map(lambda t: urllib.parse.quote(t, safe="")))
# mostly names that exist (so requests get past the lookup), else anything
segments = st.one_of(st.sampled_from(["o", "dir/o2", "shard.tar", "new/o", "o/x"]),
                     st.lists(segment, min_size=1, max_size=4).map("/".join))
bucket = st.one_of(st.sampled_from(_FUZZ_BUCKETS), st.sampled_from(_FUZZ_BUCKETS), segment)

_QUERY_KEYS = ["provider", "namespace", "what", "props", "bck_to", "object_to", "append_type", "append_handle",
               "uploadId", "partNumber", "archpath", "archregx", "archmode", "archmime", "latest-ver", "etl_name",
               "uploads", "delete", "list-type", "prefix", "max-keys", "continuation-token", "start-after",
               "delimiter", "versionId", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
               "X-Amz-Expires", "X-Amz-SignedHeaders", "AWSAccessKeyId", "Signature", "Expires", "location",
               "versioning", "tagging", "uuid", "frc", "keep_bck_md", "presence", "flt", "coloc", "trd", "marker",
               "max-uploads", "key-marker", "response-content-type", "part-number-marker", "max-parts", "x-id",
               "encoding-type", "fetch-owner", "cont"]
_VALUES = ["", "0", "1", "-1", "true", "ais", "aws", "@#", "ais/@#/fuzz-b/", "ais/@#/fuzz-b/o", "ais/@#/b/../../x",
           "0" * 32, "9" * 30, "smap", "bmd", "status", "config", "snode", "%00", "%FF", "..", "../../x", "a.tar",
           "member.txt", "2", "1000", "100000000000000000000", ".tar", "tgz", "regexp", "[", "AWS4-HMAC-SHA256",
           "AK/20240101/us-east-1/s3/aws4_request", "host", "20240101T000000Z", "604800", "%0A", "a%0D%0AX-Evil:%201",
           "%7F", "%E9", "%ED%A0%80"]
# JSON strings that decode to what no header, file name or msgpack string can hold
_JSON_TEXT = ["a\nb", "a\r\nX-Evil: 1", "\x00", "\ud800", "\udcff", "\x7f", "é", "x" * 3000]
value = st.sampled_from(_VALUES) | st.text(max_size=10).map(lambda t: urllib.parse.quote(t, safe=""))
query = st.lists(st.tuples(st.sampled_from(_QUERY_KEYS) | segment, value), max_size=4).map(
    lambda pairs: "&".join(f"{k}={v}" if v or k[:1] != "u" else k for k, v in pairs))

_HEADERS = ["Range", "Content-Type", "Content-MD5", "Content-Encoding", "Authorization", "X-Amz-Date",
            "X-Amz-Content-Sha256", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "x-amz-copy-source",
            "x-amz-copy-source-range", "x-amz-metadata-directive", "x-amz-meta-k", "x-amz-checksum-crc32",
            "x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm", "If-Match", "If-None-Match",
            "If-Modified-Since", "If-Unmodified-Since", "x-amz-copy-source-if-match", "Ais-Checksum-Type",
            "Ais-Checksum-Value", "Ais-Blob-Download", "Ais-Blob-Chunk", "Ais-Blob-Workers", "Ais-Pine",
            "Ais-Caller-Id", "Ais-Request-Id", "Ais-Custom-Md", "Expect", "Date", "Ais-Background",
            "x-amz-tagging", "Cache-Control", "Content-Disposition", "Accept", "Authorization", "Ais-S3-Provider"]
_HEADER_VALUES = [b"", b"bytes=0-1", b"bytes=-1", b"bytes=5-2", b"bytes=0-1,2-3", b"bytes=x", b"bytes=" + b"9" * 40,
                  b"\xff\xfe", b"\xc3\xa9", b"AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, "
                  b"SignedHeaders=host, Signature=" + b"0" * 64, b"AWS ak:sig", b"Bearer x.y.z",
                  b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", b"STREAMING-UNSIGNED-PAYLOAD-TRAILER", b"UNSIGNED-PAYLOAD",
                  b"aws-chunked", b"gzip", b"fuzz-b/o", b"/fuzz-a/..%2F..%2Fetc", b"fuzz-a/%00", b"REPLACE", b"COPY",
                  b"100-continue", b"xxhash", b"md5", b"true", b"-5", b"1" * 30, b"Mon, 99 Foo 99999 99:99:99 GMT",
                  b"\"etag\"", b"*", b"x-amz-checksum-crc32", b"CRC32", b"k=v&k2=v2", b"aws", b"ais", b"1", b"0"]
header_value = st.sampled_from(_HEADER_VALUES) | st.binary(max_size=20).filter(
    lambda v: not any(c in v for c in b"\r\n\x00") and v.strip() == v)
headers = st.dictionaries(st.sampled_from(_HEADERS), header_value, max_size=4)

_ACTIONS = ["list", "create-bck", "destroy-bck", "move-bck", "copy-bck", "set-bprops", "reset-bprops", "rename-obj",
            "check-lock", "summary-bck", "prefetch-listrange", "copy-listrange", "evict-listrange",
            "delete-listrange", "evict-remote-bck", "blob-download", "archive", "promote", "copy-obj", "etl-bck",
            "etl-listrange", "start", "stop", "frobnicate", "mpt-upload", "mpt-complete", "mpt-abort"]
_FIELDS = ["objnames", "template", "tobck", "archname", "mime", "prefix", "prepend", "props", "flags", "page_size",
           "continuation_token", "name", "id", "num-workers", "latest-ver", "dry_run", "coer", "in", "onob",
           "include_src", "start_after", "uuid", "kind", "bck", "access", "checksum", "mirror", "versioning",
           "lru", "provider", "namespace", "objname", "archpath", "start", "length", "uname", "bucket", "strm"]
json_leaf = (st.none() | st.booleans() | st.integers(-2, 2**70) | st.sampled_from(_VALUES + _JSON_TEXT)
             | st.text(max_size=8)
             | st.sampled_from([{"name": "fuzz-b", "provider": "ais"}, ["o", "dir/o2"], ["../../x"], "{0..3}",
                                "../{0..2}", {"name": 5}, [{"objname": "o"}], [{"objname": "../x"}], 1e308]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=5), inner, max_size=4),
                          max_leaves=10)
action_body = st.builds(lambda a, n, v: json.dumps({"action": a, "name": n, "value": v}).encode(),
                        st.sampled_from(_ACTIONS), st.sampled_from(["", "o", "../x", "fuzz-b", "new/o"] + _JSON_TEXT),
                        json_value)
body = st.one_of(st.none(), st.binary(max_size=64), action_body, json_value.map(lambda v: json.dumps(v).encode()),
                 st.sampled_from([XML_BOMBS["billion-laughs"], XML_BOMBS["utf16-laughs"],
                                  b"<Delete><Object><Key>o</Key></Object><Object><Key>../x</Key></Object></Delete>",
                                  b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>"
                                  b"</CompleteMultipartUpload>", b"\x81\xa7entries\x90", b"{" * 5000, b"[]"]))


@st.composite
def requests_(draw: st.DrawFn) -> tuple[str, int, str, dict[str, bytes], bytes | None]:
    """(method, node index (0 = proxy), request target, headers, body)."""
    b = draw(bucket)
    family = draw(st.sampled_from([
        f"/v1/objects/{b}/{{segs}}", f"/v1/objects/{b}", f"/v1/buckets/{b}", "/v1/buckets", f"/v1/buckets/{b}/{{segs}}",
        f"/v1/ml/moss/{b}", "/v1/ml/moss", "/v1/etl", "/v1/etl/{segs}", "/v1/health", "/v1/daemon", "/metrics",
        "/v1/cluster", "/s3", f"/s3/{b}", f"/s3/{b}/{{segs}}", f"/{b}/{{segs}}", "/{segs}", "/v1/tokens",
        "/v1/s3/keys"]))
    path = family.replace("{segs}", draw(segments))
    method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]))
    if path.startswith(("/v1/cluster", "/v1/s3/keys")) or (path == "/v1/etl" and method == "PUT"):
        method = "GET"   # cluster-wide changes (shutdown, config, S3 keys, transformers) are out of scope
    q = draw(query)
    node = draw(st.integers(0, 3)) if path.startswith(("/v1/objects/", "/s3/", "/v1/ml/")) else 0
    return method, node, path + ("?" + q if q else ""), draw(headers), draw(body)


def send(port: int, method: str, target: str, hdrs: dict[str, bytes], data: bytes | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        r = conn.getresponse()
        return r.status, (r.getheader("Location") or "").encode() if 300 <= r.status < 400 else r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def fuzz_cluster(cluster: Any) -> Iterator[Any]:
    """The session cluster with the fuzz buckets (one object, one shard each); whatever buckets the
    fuzz creates are removed afterwards."""
    c = Client(cluster.endpoint)
    before = {b.name for b in c.cluster().list_buckets()}
    _fuzz_restock(cluster)
    yield cluster
    for b in c.cluster().list_buckets():
        if b.name not in before:
            c.bucket(b.name, provider=b.provider).delete(missing_ok=True)


def _fuzz_restock(cluster: Any) -> None:
    """The fuzz buckets and their objects, back (fuzzed requests delete and rename them)."""
    for name in _FUZZ_BUCKETS:
        requests.post(f"{cluster.endpoint}/v1/buckets/{name}", json={"action": "create-bck"}, timeout=TIMEOUT)
        for obj, data in (("o", b"payload"), ("dir/o2", b"payload"), ("shard.tar", make_tar({"member.txt": b"hello"}))):
            r = requests.put(f"{cluster.endpoint}/v1/objects/{name}/{obj}", data=data, timeout=TIMEOUT)
            assert r.status_code == 200, (name, obj, r.status_code, r.content[:200])


_fuzz_started: list[float] = []
_fuzz_count: list[int] = [0]
_fuzz_failed: list[bool] = [False]   # once an example fails, shrinking runs past the budget


def _fuzz_settings(test: Callable[..., Any]) -> Callable[..., Any]:
    s = settings(max_examples=_FUZZ_EXAMPLES, deadline=None, derandomize=not _FUZZ_SEED, database=None,
                 suppress_health_check=list(HealthCheck))
    if _FUZZ_SEED and _FUZZ_SEED != "random":
        from hypothesis import seed
        return seed(int(_FUZZ_SEED))(s(test))
    return s(test)


@_fuzz_settings
@given(req=requests_())
def test_fuzzed_requests_never_5xx(fuzz_cluster: Any,
                                   req: tuple[str, int, str, dict[str, bytes], bytes | None]) -> None:
    """No 5xx (501 Not Implemented excepted: a deliberate answer), whatever is sent; redirects are
    followed once, with the same method, headers and body. Bounded by FUZZ_BUDGET_S."""
    if not _fuzz_started:
        _fuzz_started.append(time.monotonic())
    if time.monotonic() - _fuzz_started[0] > FUZZ_BUDGET_S and not _fuzz_failed[0]:
        return
    _fuzz_count[0] += 1
    if _fuzz_count[0] % 40 == 0:
        _fuzz_restock(fuzz_cluster)
    method, node, target, hdrs, data = req
    n = fuzz_cluster.spec.nodes[node] if node < len(fuzz_cluster.spec.nodes) else fuzz_cluster.spec.nodes[0]
    status, answer = send(n.public_port, method, target, hdrs, data)
    if status in (301, 302, 307, 308) and answer:
        loc = urllib.parse.urlsplit(answer.decode())
        status, answer = send(loc.port or 80, method, loc.path + ("?" + loc.query if loc.query else ""), hdrs, data)
    if status >= 500 and status != 501:
        _fuzz_failed[0] = True
        raise AssertionError(f"{method} {target} {hdrs} {data!r:.200} -> {status}: {answer[:400]!r}")


def test_nodes_healthy_after_fuzzing(fuzz_cluster: Any) -> None:
    healthy(fuzz_cluster)
    assert not stray(fuzz_cluster), stray(fuzz_cluster)[:10]
    for name in _FUZZ_BUCKETS:   # data written before the fuzz is intact unless the fuzz deleted it
        r = requests.get(f"{fuzz_cluster.endpoint}/v1/objects/{name}/o", timeout=TIMEOUT)
        assert r.status_code in (200, 404), r.status_code
