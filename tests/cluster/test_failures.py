"""Failure and durability tests on real node processes: whole-cluster and single-target
restarts, SIGKILL in the middle of a PUT, concurrent writers of one object, and 100 MiB
round trips.

Readiness is always awaited by polling with a deadline (never a fixed sleep).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
import urllib.parse
from typing import Any, Callable

import pytest
import xxhash
from aistore import Client
from aistore.sdk.errors import AISError, ErrObjNotFound

from ais.cli import localcluster

from .conftest import wait_for

MiB = 1 << 20
WORK_DIR = "%wk"


# --- helpers ----------------------------------------------------------------------------------

def work_files(node: localcluster.NodeSpec) -> list[str]:
    """Every file under the `%wk` directories of a target's mountpaths."""
    out: list[str] = []
    for mp in node.mountpaths:
        d = os.path.join(mp, WORK_DIR)
        for root, _, files in os.walk(d):
            out.extend(os.path.join(root, f) for f in files)
    return out


def node_name_of(c: Any, daemon_id: str, smap: Any) -> str:
    """The conftest node name (t0, t1, ...) of a cluster-map node ID."""
    snode = smap.tmap[daemon_id]
    url = snode.public_net.direct_url.rstrip("/")
    return next(n.name for n in c.spec.nodes if n.public_url == url)


def owner_name(c: Any, client: Client, bucket: Any, obj: str) -> str:
    smap = client.cluster().get_info()
    snode = smap.get_target_for_object(bucket.get_path() + obj)
    return node_name_of(c, snode.daemon_id, smap)


def restart_killed(c: Any, name: str) -> None:
    """Start a node that was SIGKILLed and wait until the whole cluster is ready again."""
    localcluster.start_node(c.spec, c.node(name))
    c.spec.save()
    localcluster.wait_ready(c.spec)


def read_all(obj: Any, **kw: Any) -> bytes:
    return bytes(obj.get_reader(**kw).read_all())


def sha256_stream(reader: Any) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for chunk in reader:
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


# --- 1. every node restarted ------------------------------------------------------------------

def test_restart_all_keeps_data_ids_and_map_version(make_cluster: Callable[..., Any]) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    rnd = os.urandom
    sizes = [0, 1, MiB, 2, 100, 4096, 65535, 65536, 65537, 300_000]

    # 1. two buckets, ~50 objects of various sizes, some with custom metadata and nested names
    expected: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
    buckets = ["restart-a", "restart-b"]
    for bname in buckets:
        b = client.bucket(bname)
        b.create()
        for i in range(25):
            name = f"dir{i % 3}/sub/obj-{i}" if i % 2 else f"obj-{i}"
            data = rnd(sizes[i % len(sizes)])
            b.object(name).get_writer().put_content(data)
            md: dict[str, str] = {}
            if i % 3 == 0:
                md = {"owner": f"user{i}", "bucket": bname, "idx": str(i)}
                b.object(name).get_writer().set_custom_props(md)
            expected[(bname, name)] = (data, md)
    assert len(expected) == 50

    before = client.cluster().get_info()
    pids_before = {n.name: n.pid for n in c.spec.nodes}

    # 2. restart every node
    c.restart_all()
    pids_after = {n.name: n.pid for n in c.spec.nodes}
    for name, pid in pids_before.items():
        assert pids_after[name] != pid, f"{name} was not restarted"

    # 3. same node IDs, map version not going backwards
    client = Client(c.endpoint)
    after = client.cluster().get_info()
    assert set(after.tmap) == set(before.tmap)
    assert set(after.pmap) == set(before.pmap)
    assert len(after.tmap) == 3 and len(after.pmap) == 1
    assert int(after.version) >= int(before.version)

    # 4. buckets and objects byte-exact, custom metadata intact
    listed = {b.name for b in client.cluster().list_buckets()}
    assert set(buckets) <= listed
    for bname in buckets:
        b = client.bucket(bname)
        names = sorted(e.name for e in b.list_all_objects())
        assert names == sorted(n for (bn, n) in expected if bn == bname)
    for (bname, name), (data, md) in expected.items():
        obj = client.bucket(bname).object(name)
        got = read_all(obj)
        assert len(got) == len(data), f"{bname}/{name}: size {len(got)} != {len(data)}"
        assert got == data, f"{bname}/{name}: content differs after restart"
        attrs = obj.head(props="size,custom")
        assert attrs.size == len(data)
        for k, v in md.items():
            assert attrs.custom_metadata.get(k) == v, f"{bname}/{name}: custom {k!r} lost"

    # 5. the cluster still accepts writes after the restart
    b = client.bucket(buckets[0])
    b.object("after-restart").get_writer().put_content(b"fresh")
    assert read_all(b.object("after-restart")) == b"fresh"


# --- 2. one target SIGKILLed and restarted ----------------------------------------------------

def test_killed_target_restarts_with_its_objects(make_cluster: Callable[..., Any]) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    b = client.bucket("kill-one")
    b.create()
    data = {f"o{i}": os.urandom(1000 + 997 * i) for i in range(40)}
    for name, payload in data.items():
        b.object(name).get_writer().put_content(payload)
    smap = client.cluster().get_info()
    victim = "t1"
    victim_id = next(i for i in smap.tmap if node_name_of(c, i, smap) == victim)
    owned = [n for n in data if owner_name(c, client, b, n) == victim]
    assert owned, "no object landed on the victim target (HRW)"
    old_pid = c.node(victim).pid

    c.kill(victim)
    assert not localcluster.node_pid_alive(c.spec, c.node(victim))
    restart_killed(c, victim)
    assert c.node(victim).pid != old_pid

    client = Client(c.endpoint)
    after = client.cluster().get_info()
    assert victim_id in after.tmap, "restarted target came back with a different node ID"
    assert set(after.tmap) == set(smap.tmap)
    for name in owned:
        assert owner_name(c, client, b, name) == victim
    for name, payload in data.items():
        assert read_all(b.object(name)) == payload, f"{name} differs after the restart of {victim}"
        attrs = b.object(name).head(props="checksum,version")
        assert (attrs.checksum_value, attrs.obj_version) == (xxhash.xxh64(payload).hexdigest(), "1"), name
    # direct reads from the restarted target too
    for name in owned:
        assert read_all(b.object(name), direct=True) == data[name]


# --- 3. concurrent PUTs of one object ---------------------------------------------------------

def test_concurrent_puts_of_one_name_leave_one_whole_object(make_cluster: Callable[..., Any]) -> None:
    c = make_cluster(targets=2)
    client = Client(c.endpoint)
    b = client.bucket("race")
    b.create()
    writers = 16
    for round_no in range(3):   # rounds 0-1 stream their bodies; round 2's are small (one pool hop each)
        name = f"contended-{round_no}"
        base = MiB if round_no < 2 else 1000
        payloads = [bytes([i]) * 16 + os.urandom(base + (i * 3 * base) // writers) for i in range(writers)]
        barrier = threading.Barrier(writers)
        errors: list[BaseException] = []

        def put(i: int) -> None:
            try:
                cl = Client(c.endpoint)
                barrier.wait(timeout=30)
                cl.bucket("race").object(name).get_writer().put_content(payloads[i])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=put, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a PUT hung"
        assert not errors, f"concurrent PUTs failed: {errors!r}"

        got = read_all(b.object(name))
        matches = [i for i, p in enumerate(payloads) if p == got]
        assert len(matches) == 1, (f"object is not one of the payloads (size {len(got)}; "
                                   f"payload sizes {sorted(len(p) for p in payloads)})")
        attrs = b.object(name).head(props="size,checksum,version")
        assert attrs.size == len(got)
        if attrs.checksum_type == "xxhash":
            assert attrs.checksum_value == xxhash.xxh64(got).hexdigest(), "metadata checksum of another payload"
        assert attrs.obj_version == str(writers), "every PUT must commit exactly one new version"

    # no leftovers: every work file was published or removed
    for t in c.targets:
        def no_work_files(t: localcluster.NodeSpec = t) -> bool:
            return not work_files(t)
        wait_for(no_work_files, 10, f"empty %wk on {t.name}: {work_files(t)}")
    names = [e.name for e in b.list_all_objects()]
    assert sorted(names) == ["contended-0", "contended-1", "contended-2"]


# --- 4. SIGKILL during a 100 MiB PUT ----------------------------------------------------------

def test_target_killed_mid_put_leaves_no_partial_object(make_cluster: Callable[..., Any]) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint)
    b = client.bucket("mid-put")
    b.create()
    obj_name = "big/victim.bin"
    owner = owner_name(c, client, b, obj_name)
    owner_node = c.node(owner)

    # a completed object on the same target that must survive
    survivor = next(n for n in (f"survivor-{i}" for i in range(1000)) if owner_name(c, client, b, n) == owner)
    survivor_data = os.urandom(3 * MiB + 17)
    b.object(survivor).get_writer().put_content(survivor_data)
    assert not work_files(owner_node)

    # leg 1: the proxy redirects without reading a body
    total = 100 * MiB
    path = f"/v1/objects/{b.name}/{urllib.parse.quote(obj_name)}?provider=ais"
    conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(c.endpoint).port, timeout=30)
    conn.request("PUT", path, body=b"", headers={"Content-Length": "0"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 307, resp.status
    location = urllib.parse.urlsplit(resp.getheader("Location") or "")
    assert location.port == owner_node.public_port, f"redirected to {location.geturl()}, owner is {owner}"

    # leg 2: stream the body to the owner, and SIGKILL it once a work file is growing
    conn = http.client.HTTPConnection(location.hostname or "127.0.0.1", location.port, timeout=30)
    conn.putrequest("PUT", f"{location.path}?{location.query}")
    conn.putheader("Content-Length", str(total))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    chunk = os.urandom(MiB)
    sent = 0
    deadline = time.monotonic() + 60
    partial: list[str] = []
    while True:
        assert sent < total - 2 * MiB, "no work file appeared while streaming the body"
        assert time.monotonic() < deadline, "timed out waiting for the work file"
        conn.send(chunk)
        sent += len(chunk)
        partial = [f for f in work_files(owner_node) if os.path.getsize(f) > 0]
        if partial and sent >= 8 * MiB:
            break
        time.sleep(0.01)
    c.kill(owner)
    assert not localcluster.node_pid_alive(c.spec, owner_node)
    with pytest.raises(OSError):
        for _ in range(total // MiB):  # the peer is gone: sending fails (reset / broken pipe)
            conn.send(chunk)
        conn.getresponse()
    conn.close()
    assert all(os.path.exists(f) for f in partial), "a SIGKILLed node cannot clean up; the test needs a leftover"

    # restart: work files removed at start-up, no partial object, the survivor intact
    restart_killed(c, owner)
    assert not work_files(owner_node), f"work files survived the restart: {work_files(owner_node)}"
    client = Client(c.endpoint)
    b = client.bucket("mid-put")
    with pytest.raises(ErrObjNotFound):
        b.object(obj_name).get_reader().read_all()
    with pytest.raises(AISError) as info:
        b.object(obj_name).head()
    assert info.value.status_code == 404
    assert obj_name not in {e.name for e in b.list_all_objects()}
    assert read_all(b.object(survivor)) == survivor_data
    # no object file of that name on any mountpath either
    for t in c.targets:
        for mp in t.mountpaths:
            assert not os.path.exists(os.path.join(mp, "@ais", b.name, "%ob", obj_name))


# --- 5. 100 MiB round trips -------------------------------------------------------------------

@pytest.mark.parametrize("direct", [False, True], ids=["via-proxy", "direct"])
def test_100mib_round_trip(client: Client, bucket: Any, tmp_path: Any, direct: bool) -> None:
    size = 100 * MiB
    src = tmp_path / "big.bin"
    h = hashlib.sha256()
    with open(src, "wb") as f:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            h.update(block)
            f.write(block)
    want = h.hexdigest()

    obj = bucket.object("big/100mib.bin")
    obj.get_writer().put_file(str(src))
    assert obj.head(props="size").size == size

    got, n = sha256_stream(obj.get_reader(direct=direct))
    assert n == size
    assert got == want

    # a second write of the same name with put_content, read back as one buffer
    data = src.read_bytes()[::-1]
    obj.get_writer().put_content(data)
    back = read_all(obj, direct=direct)
    assert len(back) == size
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
