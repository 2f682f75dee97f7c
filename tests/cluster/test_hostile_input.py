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
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("member.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    b.object("shard.tar").get_writer().put_content(buf.getvalue())
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
