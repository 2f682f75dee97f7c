"""n-way mirroring and bit-rot repair with real processes (the shared 3-target cluster, two
mountpaths per target): copies on distinct mountpaths on disk, overwrite and delete of every
copy, make-n-copies adding and removing copies, a corrupted main copy repaired from its mirror,
and what a read does with bit rot and no copy.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

import pytest
import requests
from aistore import Client
from aistore.sdk.errors import AISError

from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.timeout(120)


# --- helpers ----------------------------------------------------------------------------------

def set_props(c: Cluster, bucket: str, props: dict[str, Any]) -> requests.Response:
    return requests.patch(f"{c.endpoint}/v1/buckets/{bucket}", json={"action": "set-bprops", "value": props},
                          timeout=30)


def all_mountpaths(c: Cluster) -> list[str]:
    return [mp for t in c.targets for mp in t.mountpaths]


def files_of(c: Cluster, bucket: str, obj: str) -> dict[str, list[str]]:
    """Every file of the object on every mountpath of the cluster: {"%ob": [...], "%cp": [...]}."""
    out: dict[str, list[str]] = {"%ob": [], "%cp": []}
    for mp in all_mountpaths(c):
        for kind in out:
            path = f"{mp}/@ais/{bucket}/{kind}/{obj}"
            if os.path.isfile(path):
                out[kind].append(path)
    return out


def head(c: Cluster, bucket: str, obj: str) -> requests.Response:
    r = requests.head(f"{c.endpoint}/v1/objects/{bucket}/{obj}", allow_redirects=True, timeout=30)
    assert r.status_code == 200, r.headers
    return r


def mirrored_bucket(client: Client, c: Cluster, name: str, copies: int = 2, validate: bool = False) -> Any:
    b = client.bucket(f"{name}-{os.urandom(3).hex()}")
    b.create()
    props: dict[str, Any] = {"mirror": {"enabled": True, "copies": copies}}
    if validate:
        props["checksum"] = {"validate_warm_get": True}
    r = set_props(c, b.name, props)
    assert r.status_code == 200, r.text
    return b


def corrupt_in_place(path: str) -> None:
    """Flip bytes in the middle of the file: same size, same metadata, different content."""
    with open(path, "r+b") as f:
        data = f.read()
        mid = len(data) // 2
        f.seek(mid)
        f.write(bytes(b ^ 0xFF for b in data[mid:mid + 16]))


def wait_job(client: Client, job_id: str) -> None:
    client.job(job_id=job_id).wait(timeout=60, verbose=False)


# --- tests ------------------------------------------------------------------------------------

def test_mirrored_put_writes_copies_on_distinct_mountpaths_and_overwrite_delete_cover_every_copy(
        cluster: Cluster, client: Client) -> None:
    b = mirrored_bucket(client, cluster, "mirror")
    payloads = {f"dir/o{i}": os.urandom(1000 + 7919 * i) for i in range(12)}   # small and sendfile-sized
    for name, data in payloads.items():
        b.object(name).get_writer().put_content(data)

    for name, data in payloads.items():
        files = files_of(cluster, b.name, name)
        assert len(files["%ob"]) == 1 and len(files["%cp"]) == 1, files
        main, copy = files["%ob"][0], files["%cp"][0]
        main_mp, copy_mp = main.split("/@ais/")[0], copy.split("/@ais/")[0]
        assert main_mp != copy_mp
        assert os.path.dirname(main_mp) == os.path.dirname(copy_mp), "copies stay on the owning target"
        for path in (main, copy):
            with open(path, "rb") as f:
                assert f.read() == data
        h = head(cluster, b.name, name)
        assert h.headers["Ais-Mirror-Copies"] == "2"
        assert sorted(h.headers["Ais-Mirror-Paths"].split(",")) == sorted([main_mp, copy_mp])
        assert h.headers["Ais-Mirror-Paths"].split(",")[0] == main_mp   # the main copy first
        attrs = b.object(name).head(props="copies")
        assert attrs.mirror_copies == 2 and sorted(attrs.mirror_paths) == sorted([main_mp, copy_mp])

    listed = b.list_objects(props="name,copies").entries
    assert sorted(e.name for e in listed) == sorted(payloads)
    assert {e.copies for e in listed} == {2}

    # overwrite replaces every copy; delete removes every copy
    new = os.urandom(5000)
    b.object("dir/o3").get_writer().put_content(new)
    for path in [p for ps in files_of(cluster, b.name, "dir/o3").values() for p in ps]:
        with open(path, "rb") as f:
            assert f.read() == new
    b.object("dir/o4").delete()
    assert files_of(cluster, b.name, "dir/o4") == {"%ob": [], "%cp": []}
    with pytest.raises(AISError):
        b.object("dir/o4").get_reader().read_all()
    b.delete()


@pytest.mark.parametrize("copies, words", [(3, ["mirror.copies", "mountpath"]), (0, ["mirror.copies"]),
                                           ("two", ["mirror.copies"])])
def test_mirror_copies_are_validated_against_the_mountpaths(cluster: Cluster, client: Client, copies: Any,
                                                             words: list[str]) -> None:
    b = client.bucket(f"mirror-bad-{os.urandom(3).hex()}")
    b.create()
    r = set_props(cluster, b.name, {"mirror": {"enabled": True, "copies": copies}})
    assert r.status_code == 400, r.text
    for w in words:
        assert w in r.text
    r = requests.post(f"{cluster.endpoint}/v1/buckets/{b.name}", json={"action": "make-n-copies", "value": copies},
                      timeout=30)
    assert r.status_code == 400 and "mirror.copies" in r.text, r.text
    b.delete()


def test_make_n_copies_adds_and_removes_copies_of_existing_objects(cluster: Cluster, client: Client) -> None:
    b = client.bucket(f"mncopies-{os.urandom(3).hex()}")
    b.create()
    names = [f"x{i:02d}" for i in range(20)]
    for n in names:
        b.object(n).get_writer().put_content(n.encode() * 100)
    assert all(files_of(cluster, b.name, n)["%cp"] == [] for n in names)

    r = requests.post(f"{cluster.endpoint}/v1/buckets/{b.name}", json={"action": "make-n-copies", "value": 2},
                      timeout=30)
    assert r.status_code == 200, r.text
    wait_job(client, r.text)
    mirror = b.head()["Ais-Bucket-Props"]
    assert '"mirror": {"copies": 2, "burst_buffer": 128, "enabled": true}' in mirror, mirror
    for n in names:
        assert len(files_of(cluster, b.name, n)["%cp"]) == 1, n
    assert {e.copies for e in b.list_objects(props="name,copies").entries} == {2}
    # new writes follow the bucket's new props
    b.object("late").get_writer().put_content(b"late")
    assert len(files_of(cluster, b.name, "late")["%cp"]) == 1

    r = requests.post(f"{cluster.endpoint}/v1/buckets/{b.name}", json={"action": "make-n-copies", "value": 1},
                      timeout=30)
    assert r.status_code == 200, r.text
    wait_job(client, r.text)
    for n in [*names, "late"]:
        files = files_of(cluster, b.name, n)
        assert len(files["%ob"]) == 1 and files["%cp"] == [], files
    assert b.object("x07").get_reader().read_all() == b"x07" * 100
    b.delete()


def test_corrupted_main_copy_is_repaired_from_its_mirror(cluster: Cluster, client: Client) -> None:
    b = mirrored_bucket(client, cluster, "bitrot", validate=True)
    small, large = os.urandom(10_000), os.urandom(300_000)
    b.object("small").get_writer().put_content(small)
    b.object("large").get_writer().put_content(large)
    for name, data in (("small", small), ("large", large)):
        main = files_of(cluster, b.name, name)["%ob"][0]
        corrupt_in_place(main)
        with open(main, "rb") as f:
            assert f.read() != data
        assert b.object(name).get_reader().read_all() == data      # never the corrupt bytes
        with open(main, "rb") as f:
            assert f.read() == data, "the main copy on disk was repaired"
        files = files_of(cluster, b.name, name)
        assert len(files["%ob"]) == 1 and len(files["%cp"]) == 1
    # the copy rotted instead: reads keep serving the (intact) main copy, make-n-copies rewrites the copy
    copy = files_of(cluster, b.name, "small")["%cp"][0]
    corrupt_in_place(copy)
    assert b.object("small").get_reader().read_all() == small
    b.delete()


def test_missing_main_copy_is_served_from_the_mirror_and_restored(cluster: Cluster, client: Client) -> None:
    import boto3
    from botocore.config import Config
    b = mirrored_bucket(client, cluster, "lostmain")
    data = os.urandom(70_000)
    for name in ("native", "s3", "head"):
        b.object(name).get_writer().put_content(data)
        os.unlink(files_of(cluster, b.name, name)["%ob"][0])
    assert b.object("native").get_reader().read_all() == data
    s3 = boto3.client("s3", endpoint_url=f"{cluster.endpoint}/s3", aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    assert s3.get_object(Bucket=b.name, Key="s3")["Body"].read() == data
    assert head(cluster, b.name, "head").headers["Ais-Mirror-Copies"] == "2"
    for name in ("native", "s3", "head"):   # each restored on disk: main and copy
        files = files_of(cluster, b.name, name)
        assert len(files["%ob"]) == 1 and len(files["%cp"]) == 1, (name, files)
    b.delete()


def test_bit_rot_without_a_copy_is_an_error_naming_the_object_and_without_validation_reads_are_not_checked(
        cluster: Cluster, client: Client) -> None:
    b = client.bucket(f"rot-{os.urandom(3).hex()}")
    b.create()
    data = os.urandom(20_000)
    b.object("only").get_writer().put_content(data)
    main = files_of(cluster, b.name, "only")["%ob"][0]
    corrupt_in_place(main)
    # validate_warm_get off (the default): reads are not verified
    assert b.object("only").get_reader().read_all() != data
    assert set_props(cluster, b.name, {"checksum": {"validate_warm_get": True}}).status_code == 200
    deadline = time.monotonic() + 10
    while True:   # the new props reach the target by metasync
        r = requests.get(f"{cluster.endpoint}/v1/objects/{b.name}/only", timeout=30)
        if r.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 410, r.status_code
    assert f"ais://{b.name}/only" in r.text and "corrupt" in r.text, r.text
    assert not os.path.exists(main), "the corrupt file was quarantined"
    assert glob.glob(os.path.join(os.path.dirname(main.split("/@ais/")[0] + "/"), "%wk", "corrupt.*"))
    r = requests.get(f"{cluster.endpoint}/v1/objects/{b.name}/only", timeout=30)
    assert r.status_code == 404
    b.delete()
