"""Global rebalance with real processes: a target joins under read/write load, a sender is
SIGKILLed mid-rebalance and restarted, a target goes into maintenance and comes back.

Checked each time: every object readable during and after (get-from-neighbor), each object on
its HRW owner only (files on disk), nothing lost, metadata kept, and the rebalance job visible
and finished through the SDK.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.request
from typing import Any

import pytest
from aistore import Client

from ais.cli import localcluster
from ais.cli.localcluster import NodeSpec
from ais.cmap import ClusterMap
from ais.names import make_bucket
from tests.cluster.conftest import Cluster, free_base_port, make_tar

pytestmark = pytest.mark.timeout(180)


# --- helpers ----------------------------------------------------------------------------------

def add_target(c: Cluster, env: dict[str, str] | None = None) -> NodeSpec:
    """Start one more target (2 mountpaths) in the running cluster `c`, and wait until it joined."""
    i = len(c.targets)
    port = free_base_port(2)
    mps = [os.path.join(c.spec.root, f"t{i}", f"mp{j}") for j in range(2)]
    node = NodeSpec(f"t{i}", "target", port, port + 1, mps)
    c.spec.nodes.append(node)
    localcluster.start_node(c.spec, node, {**c.env, **(env or {})})
    c.spec.save()
    localcluster.wait_ready(c.spec)
    return node


SLOW_MOVES = {"AIS_TARGET_SLOW_MOUNTPATH": "0", "AIS_TARGET_SLOW_IO_MS": "40"}   # a rebalance takes seconds


def slow_moving_cluster(make_cluster: Any, bucket: str, names: list[str]) -> tuple[Cluster, Client]:
    """3 targets whose first mountpaths are slow, so that objects are still on the move for a
    while after a target joins; `names` stored in `bucket`."""
    c = make_cluster(targets=3, env=SLOW_MOVES)
    client = Client(c.endpoint)
    client.bucket(bucket).create()
    put_all(client, bucket, names)
    return c, client


def join_target(c: Cluster, client: Client) -> tuple[str, str, ClusterMap]:
    """Add a target: (its ID, the rebalance its joining started, the new cluster map)."""
    known = {j.uuid for j in rebalance_jobs(client)}
    new = add_target(c)
    job_id = wait_new_rebalance(client, known)
    return node_id(c, new), job_id, smap(c)


def restart_with(c: Cluster, name: str, env: dict[str, str]) -> None:
    node = c.node(name)
    localcluster.stop_node(c.spec, node)
    localcluster.start_node(c.spec, node, {**c.env, **env})
    c.spec.save()
    localcluster.wait_ready(c.spec)


def node_id(c: Cluster, node: NodeSpec) -> str:
    with open(os.path.join(node.dir(c.spec.root), "conf", "node_id"), encoding="utf-8") as f:
        return f.read().strip()


def smap(c: Cluster) -> ClusterMap:
    return ClusterMap.from_wire(localcluster.fetch_json(f"{c.endpoint}/v1/daemon?what=smap"))


def placement(c: Cluster, bucket: str) -> dict[str, list[str]]:
    """Object name -> IDs of the targets holding a file of it on any of their mountpaths."""
    where: dict[str, list[str]] = {}
    for t in c.targets:
        tid = node_id(c, t)
        for mp in t.mountpaths:
            root = os.path.join(mp, "@ais", bucket, "%ob")
            for d, _, files in os.walk(root):
                for f in files:
                    where.setdefault(os.path.relpath(os.path.join(d, f), root), []).append(tid)
    return where


def assert_placed(c: Cluster, bucket: str, names: set[str]) -> dict[str, list[str]]:
    """Every object in `names` is on exactly one target, its HRW owner; nothing else is there."""
    m = smap(c)
    bck = make_bucket(bucket)
    where = placement(c, bucket)
    assert set(where) == names, (f"missing on disk: {sorted(names - set(where))[:5]}, "
                                 f"unexpected: {sorted(set(where) - names)[:5]}")
    wrong = {n: ts for n, ts in where.items() if ts != [m.owner(bck.object_uname(n)).id]}  # type: ignore[union-attr]
    assert not wrong, f"{len(wrong)} objects misplaced, e.g. {list(wrong.items())[:3]}"
    return where


def content(name: str) -> bytes:
    rnd = random.Random(name)
    return name.encode() + rnd.randbytes(rnd.randrange(100, 3000))


def put_all(client: Client, bucket: str, names: list[str]) -> None:
    b = client.bucket(bucket)

    def put(part: list[str]) -> None:
        for n in part:
            b.object(n).get_writer().put_content(content(n))
    threads = [threading.Thread(target=put, args=(names[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def rebalance_jobs(client: Client) -> list[Any]:
    return [j for j in client.cluster().list_jobs_status(job_kind="rebalance")]


def wait_new_rebalance(client: Client, known: set[str], timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ids = {j.uuid for j in rebalance_jobs(client)} - known
        if ids:
            return max(ids, key=lambda i: int(i[1:]))
        time.sleep(0.1)
    raise AssertionError("no rebalance job started")


def wait_done(client: Client, job_id: str, timeout_s: float = 90) -> None:
    client.job(job_id=job_id, job_kind="rebalance").wait(timeout=timeout_s)
    status = client.job(job_id=job_id).status()
    assert status.end_time != 0 and not status.aborted and not status.err, status


def job_snaps(c: Cluster, job_id: str) -> dict[str, list[dict[str, Any]]]:
    """`GET /v1/cluster?what=qryxstats`: the job's snapshot on every target."""
    req = urllib.request.Request(f"{c.endpoint}/v1/cluster?what=qryxstats", method="GET",
                                 data=json.dumps({"id": job_id, "kind": "rebalance"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out: dict[str, list[dict[str, Any]]] = json.loads(r.read())
    return out


def cluster_put(c: Cluster, action: str, value: dict[str, Any]) -> str:
    req = urllib.request.Request(f"{c.endpoint}/v1/cluster", method="PUT",
                                 data=json.dumps({"action": action, "value": value}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


class Load:
    """A thread that reads existing objects (checking content) and writes new ones until stopped."""

    def __init__(self, client: Client, bucket: str, existing: list[str]) -> None:
        self.b = client.bucket(bucket)
        self.existing = existing
        self.written: list[str] = []
        self.errors: list[str] = []
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rnd = random.Random(7)
        i = 0
        while not self._stop.is_set():
            name = rnd.choice(self.existing)
            try:
                got = self.b.object(name).get_reader().read_all()
                self.reads += 1
                if got != content(name):
                    self.errors.append(f"GET {name}: wrong content")
            except Exception as exc:  # noqa: BLE001 - every failure is a test failure, reported below
                self.errors.append(f"GET {name}: {exc}")
            if i % 4 == 0:
                new = f"new/{i:05d}"
                try:
                    self.b.object(new).get_writer().put_content(content(new))
                    self.written.append(new)
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"PUT {new}: {exc}")
            i += 1

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def read_all_ok(client: Client, bucket: str, names: set[str]) -> None:
    b = client.bucket(bucket)
    bad = [n for n in sorted(names) if b.object(n).get_reader().read_all() != content(n)]
    assert not bad, f"{len(bad)} objects read back wrong, e.g. {bad[:3]}"


# --- tests ------------------------------------------------------------------------------------

def test_target_joins_under_load(make_cluster: Any) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    client.bucket("reb").create()
    names = [f"d{i % 10}/obj-{i:04d}" for i in range(1000)]
    put_all(client, "reb", names)
    b = client.bucket("reb")
    for n in names[:20]:   # metadata that must travel with the object
        b.object(n).get_writer().set_custom_props({"k": n[-4:]})
    for n in names[20:30]:
        b.object(n).get_writer().put_content(content(n))   # version 2
    before = {n: b.object(n).head() for n in names[:40]}
    assert_placed(c, "reb", set(names))
    known = {j.uuid for j in rebalance_jobs(client)}

    with Load(client, "reb", names) as load:
        new = add_target(c)
        job_id = wait_new_rebalance(client, known)
        wait_done(client, job_id)
        reads_during = load.reads
    assert not load.errors, load.errors[:5]
    assert reads_during > 0

    everything = set(names) | set(load.written)
    where = assert_placed(c, "reb", everything)
    read_all_ok(client, "reb", everything)
    new_id = node_id(c, new)
    moved = sum(1 for ts in where.values() if ts == [new_id])
    assert 0.15 < moved / len(where) < 0.35, f"{moved} of {len(where)} objects on the new target"
    for n, old in before.items():   # size, checksum, version, custom metadata kept
        now = b.object(n).head()
        assert (now.size, now.checksum_value, now.obj_version, now.custom_metadata) == \
               (old.size, old.checksum_value, old.obj_version, old.custom_metadata), n
    snaps = [s for ss in job_snaps(c, job_id).values() for s in ss]
    assert sum(int(s["stats"]["out-objs"]) for s in snaps) >= moved - len(load.written)

    # idempotent: a second rebalance finds nothing to move
    second = cluster_put_start(c)
    wait_done(client, second)
    assert assert_placed(c, "reb", everything) == where


def cluster_put_start(c: Cluster) -> str:
    return cluster_put(c, "start", {"kind": "rebalance"})


def test_killed_sender_resumes(make_cluster: Any) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    client.bucket("kill").create()
    names = [f"o-{i:04d}" for i in range(1000)]
    put_all(client, "kill", names)
    # t0's disks become slow, so its part of the rebalance takes a while
    restart_with(c, "t0", {"AIS_TARGET_SLOW_MOUNTPATH": "0", "AIS_TARGET_SLOW_IO_MS": "30"})
    known = {j.uuid for j in rebalance_jobs(client)}
    add_target(c)
    job_id = wait_new_rebalance(client, known)
    t0 = c.node("t0")
    url = f"http://127.0.0.1:{t0.intra_port}/v1/rebalance?id={job_id}"
    deadline = time.monotonic() + 20
    while (localcluster.fetch_json(url) or {}).get("stage") != "traverse":
        assert time.monotonic() < deadline, "t0 never started sending"
        time.sleep(0.05)
    c.kill("t0")   # mid-traverse: some of its objects moved, others not
    stale = [n for n, ts in placement(c, "kill").items()
             if ts == [node_id(c, t0)] and smap(c).owner(make_bucket("kill").object_uname(n)).id != ts[0]]  # type: ignore[union-attr]
    assert stale, "t0 had finished before it was killed; nothing left to resume"
    localcluster.start_node(c.spec, t0, c.env)
    c.spec.save()
    localcluster.wait_ready(c.spec)
    wait_done(client, job_id)
    assert_placed(c, "kill", set(names))
    read_all_ok(client, "kill", set(names))


def test_s3_and_batch_reads_while_objects_move(make_cluster: Any) -> None:
    """boto3 GETs, HEADs and DELETEs, a batch-get and files read from inside shards, through the
    proxy, of objects the new target owns but the rebalance has not moved there yet: the new
    target pulls each from its old owner (no NoSuchKey, no missing entry), it still ends up on
    its owner only, and a deleted one does not come back."""
    from aistore.sdk.archive_config import ArchiveConfig
    import boto3
    from botocore.config import Config
    names = [f"s-{i:04d}" for i in range(400)]
    c, client = slow_moving_cluster(make_cluster, "s3reb", names)
    shards = [f"sh-{i:02d}.tar" for i in range(40)]
    for sh in shards:
        client.bucket("s3reb").object(sh).get_writer().put_content(make_tar({"m.bin": content(sh)}))
    new_id, job_id, m = join_target(c, client)
    bck = make_bucket("s3reb")
    mine = sorted(n for n in names if m.owner(bck.object_uname(n)).id == new_id)  # type: ignore[union-attr]
    where = placement(c, "s3reb")
    unmoved = [n for n, ts in where.items() if n in mine and new_id not in ts]
    assert len(unmoved) > 4, "the rebalance had finished before the reads; nothing to pull"
    unmoved_shards = [s for s in shards if m.owner(bck.object_uname(s)).id == new_id  # type: ignore[union-attr]
                      and new_id not in where[s]]
    assert unmoved_shards, "every shard had moved before it was read"
    for sh in unmoved_shards:
        reader = client.bucket("s3reb").object(sh).get_reader(archive_config=ArchiveConfig(archpath="m.bin"))
        assert reader.read_all() == content(sh), sh
    gone = unmoved.pop()
    s3 = boto3.client("s3", endpoint_url=f"{c.endpoint}/s3", aws_access_key_id="t", aws_secret_access_key="t",
                      region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    s3.delete_object(Bucket="s3reb", Key=gone)
    third = len(unmoved) // 3
    batch = unmoved[2 * third:]
    got = [(o.obj_name, data) for o, data in client.batch(batch, bucket=client.bucket("s3reb")).get()]
    assert got == [(n, content(n)) for n in batch]
    for n in unmoved[:third]:
        assert s3.get_object(Bucket="s3reb", Key=n)["Body"].read() == content(n), n
    for n in unmoved[third:2 * third]:
        assert s3.head_object(Bucket="s3reb", Key=n)["ContentLength"] == len(content(n)), n
    wait_done(client, job_id)
    assert_placed(c, "s3reb", set(names) - {gone} | set(shards))
    read_all_ok(client, "s3reb", set(names) - {gone})


def test_copy_bucket_started_during_a_rebalance_copies_everything(make_cluster: Any) -> None:
    """A bucket copy started while a joining target's rebalance moves objects: each target
    copies only what it holds when it walks, so the copy waits until the rebalance is done;
    every object reaches the destination."""
    names = [f"c-{i:04d}" for i in range(400)]
    c, client = slow_moving_cluster(make_cluster, "csrc", names)
    _, job_id, _ = join_target(c, client)
    copy_job = client.bucket("csrc").copy(client.bucket("cdst"))
    client.job(job_id=copy_job).wait(timeout=120)
    wait_done(client, job_id)
    copied = {e.name for e in client.bucket("cdst").list_all_objects()}
    assert copied == set(names), f"{len(set(names) - copied)} objects not copied, e.g. {sorted(set(names) - copied)[:3]}"
    read_all_ok(client, "cdst", set(names))


def upload_places(c: Cluster) -> dict[str, list[str]]:
    """Multipart upload ID -> IDs of the targets holding it (its `upload.json`)."""
    where: dict[str, list[str]] = {}
    for t in c.targets:
        for mp in t.mountpaths:
            root = os.path.join(mp, "%mp")
            for u in (os.listdir(root) if os.path.isdir(root) else []):
                if os.path.exists(os.path.join(root, u, "upload.json")):
                    where.setdefault(u, []).append(node_id(c, t))
    return where


def test_multipart_uploads_go_on_across_a_join(make_cluster: Any) -> None:
    """S3 multipart uploads started before a target joins: those whose object the new target
    owns move there with the rebalance; a request that comes before the move pulls the upload
    at once. ListParts, UploadPart and Complete work during and after; nothing is left behind."""
    import boto3
    from botocore.config import Config
    c, client = slow_moving_cluster(make_cluster, "mpu", [f"o-{i:04d}" for i in range(400)])   # uploads move after the objects
    s3 = boto3.client("s3", endpoint_url=f"{c.endpoint}/s3", aws_access_key_id="t", aws_secret_access_key="t",
                      region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    big = os.urandom(5 << 20)   # a part that is not the last must be 5 MiB at least
    uploads: dict[str, tuple[str, str]] = {}   # key -> (upload ID, part 1's ETag)
    for i in range(24):
        key = f"ckpt/{i:02d}"
        uid = s3.create_multipart_upload(Bucket="mpu", Key=key)["UploadId"]
        etag = s3.upload_part(Bucket="mpu", Key=key, UploadId=uid, PartNumber=1, Body=big)["ETag"]
        uploads[key] = (uid, etag)
    new_id, job_id, m = join_target(c, client)
    bck = make_bucket("mpu")
    moving = [k for k in uploads if m.owner(bck.object_uname(k)).id == new_id]  # type: ignore[union-attr]
    places = upload_places(c)
    unmoved = [k for k in moving if new_id not in places.get(uploads[k][0], [])]
    assert len(unmoved) >= 2, f"{len(moving)} uploads to move, {len(unmoved)} not moved yet: nothing to pull"

    def finish(key: str) -> None:
        uid, etag = uploads[key]
        listed = s3.list_parts(Bucket="mpu", Key=key, UploadId=uid)["Parts"]
        assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, etag, len(big))], key
        tail = key.encode() * 100
        etag2 = s3.upload_part(Bucket="mpu", Key=key, UploadId=uid, PartNumber=2, Body=tail)["ETag"]
        s3.complete_multipart_upload(Bucket="mpu", Key=key, UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etag}, {"PartNumber": 2, "ETag": etag2}]})
        assert s3.get_object(Bucket="mpu", Key=key)["Body"].read() == big + tail, key

    for key in unmoved[:len(unmoved) // 2]:   # before the rebalance reaches them: pulled
        finish(key)
    wait_done(client, job_id)
    for key in sorted(set(uploads) - set(unmoved[:len(unmoved) // 2])):   # moved by the rebalance, or never moving
        finish(key)
    assert upload_places(c) == {}, "uploads left behind"
    assert_placed(c, "mpu", {f"o-{i:04d}" for i in range(400)} | set(uploads))


def test_maintenance_moves_data_away_and_back(make_cluster: Any) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    client.bucket("mnt").create()
    names = [f"m-{i:04d}" for i in range(300)]
    put_all(client, "mnt", names)
    t1 = node_id(c, c.node("t1"))

    job_id = cluster_put(c, "start-maintenance", {"sid": t1})
    assert job_id.startswith("g")
    wait_done(client, job_id)
    assert smap(c).targets[t1].in_maintenance
    where = assert_placed(c, "mnt", set(names))
    assert all(ts != [t1] for ts in where.values())
    read_all_ok(client, "mnt", set(names))

    back = cluster_put(c, "stop-maintenance", {"sid": t1})
    wait_done(client, back)
    where = assert_placed(c, "mnt", set(names))
    assert sum(1 for ts in where.values() if ts == [t1]) > 50
    read_all_ok(client, "mnt", set(names))


def test_decommission_moves_everything_off(make_cluster: Any) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    client.bucket("dec").create()
    names = [f"x-{i:04d}" for i in range(300)]
    put_all(client, "dec", names)
    t2 = node_id(c, c.node("t2"))
    assert any(ts == [t2] for ts in placement(c, "dec").values())

    job_id = cluster_put(c, "decommission-node", {"sid": t2})
    wait_done(client, job_id)
    deadline = time.monotonic() + 20
    while t2 in smap(c).targets:   # dropped from the map once its data has moved
        assert time.monotonic() < deadline, "decommissioned target still in the cluster map"
        time.sleep(0.1)
    where = assert_placed(c, "dec", set(names))
    assert all(ts != [t2] for ts in where.values())
    read_all_ok(client, "dec", set(names))
    deadline = time.monotonic() + 15
    while localcluster.node_pid_alive(c.spec, c.node("t2")):   # the decommissioned target exits
        assert time.monotonic() < deadline, "the decommissioned target is still running"
        time.sleep(0.1)
    assert t2 not in smap(c).targets


def test_upload_handover_refuses_bad_input(cluster: Cluster) -> None:
    """The intra endpoints that move multipart uploads between targets answer a malformed
    request with a 4xx that names the problem, and store nothing."""
    import requests
    t = cluster.targets[0]
    base = f"http://127.0.0.1:{t.intra_port}/v1/rebalance-upload"
    uid = "0123456789abcdef0123456789abcdef"
    good = {"Ais-Rebalance-Upload": "ais/@%23/reb-bad/obj", "Ais-Rebalance-Xattrs": '{"x": {}, "mtime": 1}'}
    cases = [
        (f"{base}/not-an-id/part.00001", good, "invalid upload ID"),
        (f"{base}/{uid}/..%2Fescape", good, "invalid upload file name"),
        (f"{base}/{uid}/part.00001", {**good, "Ais-Rebalance-Upload": ""}, "invalid object uname"),
        (f"{base}/{uid}/part.00001", {**good, "Ais-Rebalance-Xattrs": "{not json"}, "malformed Ais-Rebalance-Xattrs"),
        (f"{base}/{uid}/part.00001", {**good, "Ais-Rebalance-Xattrs": '{"x": {"security.selinux": "eA=="}, "mtime": 1}'},
         "only user.* attributes"),
    ]
    for url, headers, says in cases:
        r = requests.put(url, data=b"x", headers=headers, timeout=10)
        assert 400 <= r.status_code < 500 and says in r.text, (url, r.status_code, r.text)
    r = requests.post(f"{base}/{uid}", params={"to": "nobody"}, headers=good, timeout=10)
    assert r.status_code == 400 and "unknown target 'nobody'" in r.text, r.text
    for mp in t.mountpaths:
        assert not os.path.exists(os.path.join(mp, "%mp", uid)), "a refused file was stored"
