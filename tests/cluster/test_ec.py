"""Erasure coding on real node processes (issue 10): `ec` bucket props, slices and replicas on
disk, HEAD's `Ais-Ec-*` headers, overwrite and delete, `ec-encode`, and the EC 2+1 test: a
4-target cluster loses one target to SIGKILL and every object still reads back byte for byte.

Readiness and progress are awaited by polling with deadlines (never a fixed sleep).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable, Iterator

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from aistore import Client
from aistore.sdk.errors import AISError, ErrObjNotFound

from ais.cli import localcluster
from ais.cli.localcluster import NodeSpec

from .conftest import Cluster, _started, free_base_port, wait_for

pytestmark = pytest.mark.timeout(240)
LIMIT = 8192   # ec.objsize_limit of these tests: smaller objects are replicated


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 4-target cluster (2+1 needs d+p+1 = 4) that the tests of this module do not break."""
    c = Cluster(str(tmp_path_factory.mktemp("ec")), targets=4, mountpaths=2)
    _started.append(c)
    yield c
    c.down()
    _started.remove(c)


def set_props(c: Cluster, bucket: str, props: dict[str, Any]) -> requests.Response:
    return requests.patch(f"{c.endpoint}/v1/buckets/{bucket}", json={"action": "set-bprops", "value": props},
                          params={"provider": "ais"}, timeout=30)


def enable_ec(c: Cluster, bucket: str, d: int = 2, p: int = 1, limit: int = LIMIT) -> None:
    r = set_props(c, bucket, {"ec": {"enabled": True, "data_slices": d, "parity_slices": p, "objsize_limit": limit}})
    assert r.status_code == 200, r.text


def new_bucket(client: Client, prefix: str) -> Any:
    b = client.bucket(f"{prefix}-{os.urandom(3).hex()}")
    b.create()
    return b


def node_ids(c: Cluster, client: Client) -> dict[str, str]:
    """conftest node name (t0...) -> daemon ID."""
    smap = client.cluster().get_info()
    by_url = {s.public_net.direct_url.rstrip("/"): tid for tid, s in smap.tmap.items()}
    return {n.name: by_url[n.public_url] for n in c.targets if n.public_url in by_url}


def owner_of(c: Cluster, client: Client, bucket: str, obj: str) -> str:
    """The conftest name of the object's HRW owner under the current cluster map."""
    ids = node_ids(c, client)
    snode = client.cluster().get_info().get_target_for_object(client.bucket(bucket).get_path() + obj)
    return next(n for n, tid in ids.items() if tid == snode.daemon_id)


def on_disk(c: Cluster, bucket: str, obj: str, kind: str) -> dict[str, list[str]]:
    """Target name -> files of `kind` (%ob, %ec or %mt) of the object on its mountpaths."""
    out: dict[str, list[str]] = {}
    for t in c.targets:
        for mp in t.mountpaths:
            path = os.path.join(mp, "@ais", bucket, kind, obj)
            if os.path.isfile(path):
                out.setdefault(t.name, []).append(path)
    return out


def read(client: Client, bucket: str, obj: str) -> bytes:
    return bytes(client.bucket(bucket).object(obj).get_reader().read_all())


# --- props ------------------------------------------------------------------------------------

def test_bad_ec_props_are_400_naming_the_field(four: Cluster) -> None:
    client = Client(four.endpoint)
    b = new_bucket(client, "ec-props")
    cases = [({"data_slices": 0}, "ec.data_slices"), ({"parity_slices": 33}, "ec.parity_slices"),
             ({"objsize_limit": -5}, "ec.objsize_limit"), ({"data_slices": 3, "parity_slices": 1}, "4 active targets"),
             ({"data_slices": 2, "parity_slices": 2}, "5 targets")]
    for change, needle in cases:
        r = set_props(four, b.name, {"ec": {"enabled": True, **change}})
        assert r.status_code == 400 and needle in r.text, (change, r.status_code, r.text)
    assert b.head()  # the bucket is unchanged and still there
    props = requests.head(f"{four.endpoint}/v1/buckets/{b.name}", timeout=30).headers["Ais-Bucket-Props"]
    assert '"enabled": false' in props.split('"ec"')[1][:80]
    # create-bck with a bad scheme: 400, and no bucket
    r = requests.post(f"{four.endpoint}/v1/buckets/ec-bad-create", timeout=30,
                      json={"action": "create-bck", "value": {"ec": {"enabled": True, "data_slices": 9}}})
    assert r.status_code == 400 and "ec.data_slices" in r.text, r.text
    assert requests.head(f"{four.endpoint}/v1/buckets/ec-bad-create", timeout=30).status_code == 404
    # once on, the scheme cannot change; off and on again with another one is fine
    enable_ec(four, b.name)
    r = set_props(four, b.name, {"ec": {"parity_slices": 2}})
    assert r.status_code == 400 and "cannot change" in r.text, r.text
    assert set_props(four, b.name, {"ec": {"enabled": False}}).status_code == 200
    enable_ec(four, b.name, d=1, p=2)
    b.delete()


# --- write, HEAD, overwrite, delete ------------------------------------------------------------

def test_slices_and_replicas_on_other_targets_head_overwrite_delete(four: Cluster) -> None:
    client = Client(four.endpoint)
    b = new_bucket(client, "ec-put")
    enable_ec(four, b.name)
    small, big = os.urandom(1000), os.urandom(100_001)
    b.object("small").get_writer().put_content(small)
    b.object("big").get_writer().put_content(big)

    # big: 3 slices of ceil(size/2) bytes, each on its own target, none on the main
    main = owner_of(four, client, b.name, "big")
    slices = on_disk(four, b.name, "big", "%ec")
    assert len(slices) == 3 and main not in slices, (main, slices)
    assert all(len(v) == 1 and os.path.getsize(v[0]) == 50_001 for v in slices.values())
    assert set(on_disk(four, b.name, "big", "%mt")) == set(slices) | {main}   # metadata: holders and main
    assert set(on_disk(four, b.name, "big", "%ob")) == {main}
    # small (under objsize_limit): p = 1 full replica on another target
    replicas = on_disk(four, b.name, "small", "%ec")
    assert len(replicas) == 1 and owner_of(four, client, b.name, "small") not in replicas
    with open(next(iter(replicas.values()))[0], "rb") as f:
        assert f.read() == small

    # HEAD: the SDK's selective props and the legacy headers
    ec_big = b.object("big").head(props="ec").ec
    ec_small = b.object("small").head(props="ec").ec
    assert ec_big is not None and (ec_big.data_slices, ec_big.parity_slices, ec_big.is_ec_copy) == (2, 1, False)
    assert ec_small is not None and (ec_small.data_slices, ec_small.parity_slices, ec_small.is_ec_copy) == (2, 1, True)
    assert ec_big.generation > 0
    legacy = requests.head(f"{four.endpoint}/v1/objects/{b.name}/big", timeout=30, allow_redirects=True)
    assert legacy.headers["Ais-Ec-Data"] == "2" and legacy.headers["Ais-Ec-Replicated"] == "false"

    # overwrite: a newer generation replaces every slice
    bigger = os.urandom(200_000)
    b.object("big").get_writer().put_content(bigger)
    ec_new = b.object("big").head(props="ec").ec
    assert ec_new is not None and ec_new.generation > ec_big.generation
    slices = on_disk(four, b.name, "big", "%ec")
    assert len(slices) == 3 and all(os.path.getsize(v[0]) == 100_000 for v in slices.values())
    assert read(client, b.name, "big") == bigger

    # delete: slices, replicas and metadata go from every target
    b.object("big").delete()
    b.object("small").delete()
    for obj in ("big", "small"):
        for kind in ("%ob", "%ec", "%mt"):
            assert on_disk(four, b.name, obj, kind) == {}, (obj, kind)
    with pytest.raises(ErrObjNotFound):
        read(client, b.name, "big")
    b.delete()


def test_enabling_ec_encodes_objects_already_there(four: Cluster) -> None:
    client = Client(four.endpoint)
    b = new_bucket(client, "ec-encode")
    names = [f"d/{i}" for i in range(12)]
    for i, name in enumerate(names):
        b.object(name).get_writer().put_content(os.urandom(100 + i * 3000))
    assert all(on_disk(four, b.name, n, "%ec") == {} for n in names)
    enable_ec(four, b.name)   # set-bprops turning EC on starts ec-encode (as AIStore)

    def encoded() -> bool:
        return all(len(on_disk(four, b.name, n, "%ec")) == (1 if 100 + i * 3000 < LIMIT else 3)
                   for i, n in enumerate(names))
    wait_for(encoded, what="ec-encode after enabling EC")

    # the explicit action on another bucket: a job ID the SDK can wait for
    b2 = new_bucket(client, "ec-encode-act")
    b2.object("x").get_writer().put_content(os.urandom(20_000))
    r = requests.post(f"{four.endpoint}/v1/buckets/{b2.name}", timeout=30,
                      json={"action": "ec-encode", "value": '{"data_slices": 1, "parity_slices": 2, "objsize_limit": 1024}'})
    assert r.status_code == 200, r.text
    client.job(job_id=r.text).wait(timeout=60, verbose=False)
    assert len(on_disk(four, b2.name, "x", "%ec")) == 3
    assert b2.object("x").head(props="ec").ec.data_slices == 1   # type: ignore[union-attr]
    b.delete()
    b2.delete()


def test_lost_file_is_rebuilt_and_its_slices_encoded_again(four: Cluster) -> None:
    client = Client(four.endpoint)
    b = new_bucket(client, "ec-lost")
    enable_ec(four, b.name, d=1, p=2, limit=0)
    data = os.urandom(70_000)
    b.object("o").get_writer().put_content(data)
    gen = b.object("o").head(props="ec").ec.generation   # type: ignore[union-attr]
    [path] = next(iter(on_disk(four, b.name, "o", "%ob").values()))
    os.unlink(path)   # the main copy's file is lost (a disk wiped by hand)
    assert read(client, b.name, "o") == data
    assert os.path.isfile(path)   # rebuilt in place, from one of the two other targets' slices
    # then encoded again from the rebuilt copy: a newer generation on every holder
    wait_for(lambda: b.object("o").head(props="ec").ec.generation > gen,   # type: ignore[union-attr]
             what="the slices of the rebuilt object to be encoded again")
    slices = on_disk(four, b.name, "o", "%ec")
    assert len(slices) == 3
    b.delete()


# --- the EC 2+1 test: a target lost -------------------------------------------------------------

def ec_files(c: Cluster, bucket: str) -> set[str]:
    """Every slice, replica and EC metadata file of the bucket, on every target."""
    out = set()
    for t in c.targets:
        for mp in t.mountpaths:
            for kind in ("%ec", "%mt"):
                root = os.path.join(mp, "@ais", bucket, kind)
                for d, _, files in os.walk(root):
                    out.update(os.path.join(d, f) for f in files)
    return out


def add_target(c: Cluster) -> None:
    """Start one more target (2 mountpaths) in the running cluster and wait until it joined."""
    name = f"t{len(c.spec.nodes) + 10}"   # never a name the cluster had
    port = free_base_port(2)
    node = NodeSpec(name, "target", port, port + 1, [os.path.join(c.spec.root, name, f"mp{j}") for j in range(2)])
    c.spec.nodes.append(node)
    localcluster.start_node(c.spec, node, c.env)
    c.spec.save()
    localcluster.wait_ready(c.spec)


def test_ec_2_1_every_object_reads_back_after_a_target_is_killed(make_cluster: Callable[..., Cluster]) -> None:
    # the primary drops a target silent for 5 s from the cluster map (the default is 30 s)
    c = make_cluster(targets=4, mountpaths=2, env={"AIS_TIMEOUTS_KEEPALIVE_INTERVAL_S": "1",
                                                   "AIS_TIMEOUTS_REMOVE_DEAD_S": "5"})
    client = Client(c.endpoint)
    b = new_bucket(client, "ec21")
    enable_ec(c, b.name)
    rng = random.Random(10)
    sizes = [0, 1, 100, 5000, LIMIT - 1, LIMIT, LIMIT + 1, 50_000, 300_001, 1 << 20, 3 * (1 << 20) + 7]
    objects = {f"obj-{i:03d}": rng.randbytes(sizes[i % len(sizes)]) for i in range(44)}
    for name, data in objects.items():
        b.object(name).get_writer().put_content(data)
    owners = {name: owner_of(c, client, b.name, name) for name in objects}
    victim = max(set(owners.values()), key=lambda t: sum(1 for o in owners.values() if o == t))
    lost = [n for n, o in owners.items() if o == victim]
    assert any(len(objects[n]) < LIMIT for n in lost) and any(len(objects[n]) >= LIMIT for n in lost), \
        "the victim should own both replicated and sliced objects"
    victim_id = node_ids(c, client)[victim]

    # SIGKILL: no operator action; the primary drops the silent target from the cluster map
    c.kill(victim)
    wait_for(lambda: victim_id not in client.cluster().get_info().tmap, what="the cluster map to drop the victim")
    c.spec.nodes.remove(c.node(victim))   # gone for good: no more a target of this cluster

    s3 = boto3.client("s3", endpoint_url=f"{c.endpoint}/s3", aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1", config=BotoConfig(s3={"addressing_style": "path"}))
    for name in lost[:3]:   # the S3 API rebuilds too
        assert s3.get_object(Bucket=b.name, Key=name)["Body"].read() == objects[name], name
    for name, data in objects.items():   # every object; the lost ones rebuilt from slices or replicas
        assert read(client, b.name, name) == data, name
    for name in lost:   # a rebuilt object is stored on its new owner, and HEAD shows its EC metadata
        assert set(on_disk(c, b.name, name, "%ob")) == {owner_of(c, client, b.name, name)}, name
        assert b.object(name).head(props="ec").ec is not None
    with pytest.raises(ErrObjNotFound):   # no EC metadata anywhere: a plain 404
        read(client, b.name, "never-written")
    with pytest.raises(AISError):
        b.object("never-written").head()

    # a target joins: the rebalance moves main copies only; slices and metadata stay where they are
    before = ec_files(c, b.name)
    known = {j.uuid for j in client.cluster().list_jobs_status(job_kind="rebalance")}
    add_target(c)
    job_id = wait_for(lambda: next(iter({j.uuid for j in client.cluster().list_jobs_status(job_kind="rebalance")}
                                        - known), None), what="the rebalance after a target joined")
    client.job(job_id=job_id, job_kind="rebalance").wait(timeout=120, verbose=False)
    assert ec_files(c, b.name) == before
    for name, data in objects.items():
        assert set(on_disk(c, b.name, name, "%ob")) == {owner_of(c, client, b.name, name)}, name
        assert read(client, b.name, name) == data, name
