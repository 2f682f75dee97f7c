"""Batch-get (`/v1/ml/moss`) against a real cluster, with the `aistore` SDK's batch API and raw
requests: order and bytes across targets, every output format extracted with the standard
library, ranges, missing entries with and without `coer`, multipart responses, bad requests,
admission, and a target killed mid-batch."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import tarfile
import threading
import time
import zipfile
from typing import Any

import pytest
import requests
import zstandard
from aistore import Client
from aistore.sdk.errors import AISError

from tests.cluster.conftest import Cluster, make_tar


def _put_many(bucket: Any, n: int, size_of: Any, prefix: str = "o") -> dict[str, bytes]:
    rng = random.Random(n)
    data = {}
    for i in range(n):
        name = f"{prefix}/{i:05d}"
        data[name] = rng.randbytes(size_of(i))
        bucket.object(name).get_writer().put_content(data[name])
    return data


def _moss(cluster: Cluster, body: dict[str, Any], path: str = "/v1/ml/moss", stream: bool = False,
          **kw: Any) -> requests.Response:
    return requests.get(f"{cluster.endpoint}{path}", data=json.dumps(body), stream=stream,
                        headers={"Content-Type": "application/json"}, timeout=60, **kw)


def _untar(data: bytes, mode: str = "r:*") -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as t:
        return [(m.name, t.extractfile(m).read()) for m in t if m.isfile()]  # type: ignore[union-attr]


def test_thousand_entries_across_targets_in_order(cluster: Cluster, client: Client, bucket: Any) -> None:
    data = _put_many(bucket, 1000, lambda i: (i * 37) % 20000)
    order = list(data)
    random.Random(7).shuffle(order)
    batch = client.batch(order, bucket=bucket)
    got = [(out.obj_name, content) for out, content in batch.get()]
    assert [n for n, _ in got] == order
    assert all(content == data[n] for n, content in got)

    # the same through the raw wire: member names are <bucket>/<object>, a plain tar
    r = _moss(cluster, {"in": [{"objname": n, "bucket": bucket.name} for n in order]})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/x-tar"
    members = _untar(r.content)
    assert [m for m, _ in members] == [f"{bucket.name}/{n}" for n in order]
    assert [d for _, d in members] == [data[n] for n in order]


def test_entries_come_from_every_target(cluster: Cluster, bucket: Any) -> None:
    """The designated target pulls from its peers: some entries of a 60-entry batch live on
    each of the 3 targets (checked by where each object is stored)."""
    data = _put_many(bucket, 60, lambda i: 1000 + i)
    holders = set()
    for t in cluster.targets:
        for mp in t.mountpaths:
            for root, _, files in os.walk(mp):
                if bucket.name in root and files:
                    holders.add(t.name)
    assert len(holders) == 3
    r = _moss(cluster, {"in": [{"objname": n} for n in data]}, path=f"/v1/ml/moss/{bucket.name}")
    assert r.status_code == 200, r.text
    assert [d for _, d in _untar(r.content)] == list(data.values())


@pytest.mark.parametrize("mime", [".tar", ".tgz", ".tar.gz", ".zip", ".tar.zst"])
def test_formats_extract_with_standard_tools(cluster: Cluster, bucket: Any, mime: str) -> None:
    data = _put_many(bucket, 20, lambda i: 3000 * i)
    body = {"in": [{"objname": n, "bucket": bucket.name} for n in data], "mime": mime, "onob": True}
    r = _moss(cluster, body)
    assert r.status_code == 200, r.text
    if mime == ".zip":
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            members = [(n, z.read(n)) for n in z.namelist()]
    elif mime == ".tar.zst":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(r.content)).read()
        members = _untar(raw, "r:")
    else:
        assert r.content[:2] == b"\x1f\x8b" if mime != ".tar" else True
        members = _untar(r.content)
    assert members == list(data.items())   # onob: names without the bucket


@pytest.mark.parametrize("fmt", [".tar", ".tgz", ".zip"])
def test_sdk_extracts_each_format(client: Client, bucket: Any, fmt: str) -> None:
    data = _put_many(bucket, 10, lambda i: 500 * i + 1)
    batch = client.batch(list(data), bucket=bucket, output_format=fmt)
    assert [c for _, c in batch.get()] == list(data.values())


def test_ranges_and_opaque_in_multipart(client: Client, bucket: Any) -> None:
    payload = bytes(range(256)) * 40   # 10,240 bytes
    bucket.object("r").get_writer().put_content(payload)
    batch = client.batch(bucket=bucket, streaming_get=False)
    batch.add("r", start=100, length=50, opaque=b"first")
    batch.add("r", start=10000, length=-1)
    batch.add("r", opaque=b"\x00\x01binary")
    got = list(batch.get())
    assert [c for _, c in got] == [payload[100:150], payload[10000:], payload]
    assert [o.size for o, _ in got] == [50, 240, len(payload)]
    assert got[0][0].opaque == b"first" and got[2][0].opaque == b"\x00\x01binary"
    assert all(not o.err_msg for o, _ in got)


def test_missing_entries_with_coer(cluster: Cluster, client: Client, bucket: Any) -> None:
    bucket.object("a").get_writer().put_content(b"A" * 10)
    bucket.object("b").get_writer().put_content(b"B" * 20)
    names = ["a", "nope", "b", "gone/deeper"]
    r = _moss(cluster, {"in": [{"objname": n, "bucket": bucket.name} for n in names], "coer": True})
    assert r.status_code == 200, r.text
    assert _untar(r.content) == [(f"{bucket.name}/a", b"A" * 10), (f"__404__/{bucket.name}/nope", b""),
                                 (f"{bucket.name}/b", b"B" * 20), (f"__404__/{bucket.name}/gone/deeper", b"")]
    # the SDK marks the placeholders as errors (streaming) and gets the server's reason (multipart)
    outs = list(client.batch(names, bucket=bucket).get())
    assert [bool(o.err_msg) for o, _ in outs] == [False, True, False, True]
    outs = list(client.batch(names, bucket=bucket, streaming_get=False).get())
    assert [o.size for o, _ in outs] == [10, 0, 20, 0]
    assert f"ais://{bucket.name}/nope does not exist" in (outs[1][0].err_msg or "")


def test_missing_entry_without_coer_is_404_naming_it(cluster: Cluster, client: Client, bucket: Any) -> None:
    data = _put_many(bucket, 30, lambda i: 100)
    names = list(data)
    names.insert(25, "missing-one")   # late in the batch: still a clean 404, nothing partial
    r = _moss(cluster, {"in": [{"objname": n, "bucket": bucket.name} for n in names], "coer": False})
    assert r.status_code == 404
    assert f"ais://{bucket.name}/missing-one does not exist" in r.json()["message"]
    with pytest.raises(AISError):
        list(client.batch(names, bucket=bucket, cont_on_err=False).get())


def test_range_beyond_end(cluster: Cluster, bucket: Any) -> None:
    bucket.object("s").get_writer().put_content(b"x" * 100)
    entry = {"objname": "s", "bucket": bucket.name, "start": 90, "length": 20}
    r = _moss(cluster, {"in": [entry]})
    assert r.status_code == 416 and "beyond the end" in r.json()["message"]
    r = _moss(cluster, {"in": [entry], "coer": True})
    assert _untar(r.content) == [(f"__404__/{bucket.name}/s", b"")]


def test_entries_across_buckets(cluster: Cluster, client: Client, bucket: Any) -> None:
    other = client.bucket(bucket.name + "-2")
    other.create()
    try:
        bucket.object("x").get_writer().put_content(b"one")
        other.object("x").get_writer().put_content(b"two")
        batch = client.batch()
        batch.add("x", bck=bucket.name, provider="ais").add("x", bck=other.name, provider="ais")
        assert [c for _, c in batch.get()] == [b"one", b"two"]
    finally:
        other.delete(missing_ok=True)


def test_zero_size_and_larger_objects(cluster: Cluster, client: Client, bucket: Any) -> None:
    sizes = [0, 1, 511, 512, 513, 5 << 20, 0]
    data = {f"z{i}": os.urandom(s) for i, s in enumerate(sizes)}
    for n, d in data.items():
        bucket.object(n).get_writer().put_content(d)
    got = list(client.batch(list(data), bucket=bucket, cont_on_err=False).get())
    assert [c for _, c in got] == list(data.values())
    assert all(not o.err_msg for o, _ in got)


@pytest.mark.parametrize("body, field", [
    ({"in": []}, "'in'"),
    ({}, "'in'"),
    ({"in": [{"objname": "a"}]}, "no bucket"),
    ({"in": [{"objname": "a", "bucket": "b"}], "mime": ".rar"}, "mime"),
    ({"in": [{"objname": "a", "bucket": "b", "start": 5}]}, "in[0]"),
    ({"in": [{"objname": "a", "bucket": "b", "length": -2}]}, "in[0].length"),
    ({"in": [{"objname": "../etc/passwd", "bucket": "b"}]}, "in[0]"),
    ({"in": [{"objname": "a", "bucket": "b"}], "coer": "yes"}, "coer"),
])
def test_malformed_requests_are_400_naming_the_field(cluster: Cluster, body: dict[str, Any], field: str) -> None:
    r = _moss(cluster, body)
    assert r.status_code == 400, r.text
    assert field in r.json()["message"]


def test_not_json_and_unknown_bucket(cluster: Cluster) -> None:
    r = requests.get(f"{cluster.endpoint}/v1/ml/moss", data=b"{not json", timeout=10)
    assert r.status_code == 400
    r = _moss(cluster, {"in": [{"objname": "a", "bucket": "no-such-bucket-xyz"}]})
    assert r.status_code == 404 and 'ais://no-such-bucket-xyz' in r.json()["message"]


def test_admission_429_when_batches_pile_up(make_cluster: Any) -> None:
    """With room for one batch, a second one while the first is held open gets 429 + Retry-After."""
    c = make_cluster(targets=1, mountpaths=1, env={"AIS_GET_BATCH_MAX_PENDING": "1"})
    client = Client(c.endpoint)
    b = client.bucket("adm")
    b.create()
    blob = os.urandom(4 << 20)
    for i in range(24):
        b.object(f"big{i}").get_writer().put_content(blob)
    held = _moss(c, {"in": [{"objname": f"big{i}", "bucket": "adm"} for i in range(24)]}, stream=True)
    try:
        assert held.status_code == 200
        time.sleep(0.5)   # the target is blocked writing into our unread socket
        r = _moss(c, {"in": [{"objname": "big0", "bucket": "adm"}]})
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) >= 1
    finally:
        held.close()
    deadline = time.monotonic() + 10
    while True:   # the held batch ends once its client is gone; then batches are admitted again
        r = _moss(c, {"in": [{"objname": "big0", "bucket": "adm"}]})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and _untar(r.content) == [("adm/big0", blob)]


def test_target_killed_mid_batch_fails_cleanly(make_cluster: Any) -> None:
    """A peer dying while the designated target streams from it cuts the response: the client
    sees an error (a truncated stream), never a hang."""
    c = make_cluster(targets=3, mountpaths=1)
    client = Client(c.endpoint)
    b = client.bucket("kill")
    b.create()
    blob = os.urandom(2 << 20)
    names = [f"o{i}" for i in range(90)]
    for n in names:
        b.object(n).get_writer().put_content(blob)
    resp = _moss(c, {"in": [{"objname": n, "bucket": "kill"} for n in names]}, stream=True)
    assert resp.status_code == 200
    it = resp.iter_content(1 << 16)
    next(it)   # streaming has begun
    # kill a target that is not the designated one (its URL is not the one we were redirected to)
    dt_port = resp.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    victim = next(t for t in c.targets if not t.public_url.endswith(f":{dt_port}"))
    c.kill(victim.name)
    result: dict[str, Any] = {}

    def drain() -> None:
        try:
            for _ in it:
                pass
            result["ok"] = True
        except Exception as exc:  # noqa: BLE001 - the error is what we check
            result["error"] = exc
    th = threading.Thread(target=drain, daemon=True)
    th.start()
    th.join(90)
    assert not th.is_alive(), "the batch hung after a target died"
    assert "error" in result, "a batch missing a dead target's entries ended as if complete"


def test_moss_job_visible_in_job_list(cluster: Cluster, client: Client, bucket: Any) -> None:
    bucket.object("j").get_writer().put_content(b"j")
    r = _moss(cluster, {"in": [{"objname": "j", "bucket": bucket.name}]})
    job_id = r.headers["Ais-Xaction-Id"]
    assert f"get-batch[{job_id}]" in client.cluster().list_running_jobs(job_kind="get-batch")
    assert any(s.uuid == job_id for s in client.cluster().list_jobs_status(job_kind="get-batch"))


def test_opaque_is_base64_on_the_wire(cluster: Cluster, bucket: Any) -> None:
    bucket.object("p").get_writer().put_content(b"payload")
    op = base64.b64encode(b"\xff\x00id-7").decode()
    r = _moss(cluster, {"in": [{"objname": "p", "bucket": bucket.name, "opaque": op}], "strm": False})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    head, _, rest = r.content.partition(b"\r\n\r\n")
    meta = json.loads(rest.split(b"\r\n--", 1)[0])
    assert meta["out"] == [{"objname": "p", "bucket": bucket.name, "provider": "ais", "size": 7, "opaque": op}]
    assert meta["uuid"]


def test_remote_bucket_entries_are_fetched_cold_then_served_warm(moto: Any, remote_cluster: Cluster) -> None:
    s3b = f"gb-{os.urandom(4).hex()}"
    s3 = moto.client()
    s3.create_bucket(Bucket=s3b)
    data = {f"k{i:03d}": os.urandom(1000 + 97 * i) for i in range(40)}
    for k, v in data.items():
        s3.put_object(Bucket=s3b, Key=k, Body=v)
    client = Client(remote_cluster.endpoint)
    bck = client.bucket(s3b, provider="aws")
    names = list(data) + ["not-in-s3"]
    got = list(client.batch(names, bucket=bck, streaming_get=False).get())
    assert [c for _, c in got[:-1]] == list(data.values())
    assert "not-in-s3" in (got[-1][0].err_msg or "") and got[-1][1] == b""
    assert all(moto.count("GET", f"/{s3b}/{k}") == 1 for k in data)
    # now in the cluster: a second batch reads no object from the backend
    assert [c for _, c in client.batch(list(data), bucket=bck).get()] == list(data.values())
    assert all(moto.count("GET", f"/{s3b}/{k}") == 1 for k in data)


def test_mixed_archpath_range_and_missing_entries(cluster: Cluster, client: Client, bucket: Any) -> None:
    files = {f"s/{i:03d}.jpg": os.urandom(700 + i) for i in range(30)}
    files["s/meta.json"] = b'{"k": 1}'
    bucket.object("shard.tar").get_writer().put_content(make_tar(files))
    bucket.object("shard.tgz").get_writer().put_content(make_tar(files, "w:gz"))
    whole = os.urandom(5000)
    bucket.object("plain").get_writer().put_content(whole)

    batch = client.batch(bucket=bucket, streaming_get=False)
    batch.add("shard.tar", archpath="s/007.jpg")
    batch.add("plain", start=10, length=20)
    batch.add("shard.tgz", archpath="s/meta.json")
    batch.add("shard.tar", archpath="s/010.jpg", start=5, length=-1)      # a range inside an archived file
    batch.add("shard.tar", archpath="shard.tar/s/011.jpg")                  # the shard's name may lead
    batch.add("shard.tar", archpath="s/nope.jpg")                            # missing member
    batch.add("no-such-shard.tar", archpath="s/000.jpg")                     # missing shard
    got = list(batch.get())
    assert [c for _, c in got] == [files["s/007.jpg"], whole[10:30], files["s/meta.json"], files["s/010.jpg"][5:],
                                   files["s/011.jpg"], b"", b""]
    assert [bool(o.err_msg) for o, _ in got] == [False] * 5 + [True, True]
    assert f"ais://{bucket.name}/shard.tar/s/nope.jpg" in (got[5][0].err_msg or "")

    # names in the streamed tar: <bucket>/<shard>/<archpath>, placeholders under __404__/
    body = {"in": [{"objname": "shard.tar", "bucket": bucket.name, "archpath": "s/001.jpg"},
                   {"objname": "shard.tar", "bucket": bucket.name, "archpath": "s/nope.jpg"}], "coer": True}
    assert _untar(_moss(cluster, body).content) == [(f"{bucket.name}/shard.tar/s/001.jpg", files["s/001.jpg"]),
                                                    (f"__404__/{bucket.name}/shard.tar/s/nope.jpg", b"")]
    # without coer the missing member fails the batch: 404 naming it
    body["coer"] = False
    r = _moss(cluster, body)
    assert r.status_code == 404 and f"ais://{bucket.name}/shard.tar/s/nope.jpg" in r.json()["message"]


def test_batch_of_every_file_of_many_shards(cluster: Cluster, client: Client, bucket: Any) -> None:
    """A loader's step: 600 samples from 20 tar shards spread over the targets, in one batch."""
    shards = {f"train-{k:03d}.tar": {f"{k:03d}/{i:03d}.cls": os.urandom(200 + i) for i in range(30)} for k in range(20)}
    for name, files in shards.items():
        bucket.object(name).get_writer().put_content(make_tar(files))
    batch = client.batch(bucket=bucket)
    expected = []
    for name, files in shards.items():
        for member, data in files.items():
            batch.add(name, archpath=member)
            expected.append(data)
    assert [c for _, c in batch.get()] == expected
