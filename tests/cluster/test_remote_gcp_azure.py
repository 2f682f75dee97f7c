"""gs:// and az:// buckets through the cluster, against gcp-storage-emulator and Azurite:
cold and warm GET, a range of a cold object, listing with cached flags, write-through PUT and
DELETE, prefetch and evict jobs, and latest-ver after a remote change."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
from aistore import Client
from aistore.sdk.list_object_flag import ListObjectFlag


class Cloud:
    """The emulator side of one provider: make buckets, write, read and list objects there."""

    def __init__(self, provider: str, emulator: Any) -> None:
        self.provider = provider
        self.client = emulator.client()

    def new_bucket(self) -> str:
        name = f"rb-{self.provider}-{os.urandom(4).hex()}"
        if self.provider == "gcp":
            self.client.create_bucket(name)
        else:
            self.client.create_container(name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> None:
        if self.provider == "gcp":
            self.client.bucket(bucket).blob(key).upload_from_string(data)
        else:
            self.client.get_blob_client(bucket, key).upload_blob(data, overwrite=True)

    def get(self, bucket: str, key: str) -> bytes:
        if self.provider == "gcp":
            return bytes(self.client.bucket(bucket).blob(key).download_as_bytes())
        return bytes(self.client.get_blob_client(bucket, key).download_blob().readall())

    def names(self, bucket: str) -> list[str]:
        if self.provider == "gcp":
            return sorted(b.name for b in self.client.list_blobs(bucket))
        return sorted(b.name for b in self.client.get_container_client(bucket).list_blobs())


@pytest.fixture(params=["gcp", "azure"])
def cloud(request: pytest.FixtureRequest, gcs: Any, azurite: Any) -> Cloud:
    return Cloud(request.param, gcs if request.param == "gcp" else azurite)


@pytest.fixture
def client(remote_cluster: Any) -> Client:
    return Client(remote_cluster.endpoint)


def _cached(bck: Any) -> list[str]:
    return [e.name for e in bck.list_all_objects(flags=[ListObjectFlag.CACHED])]


def test_cold_warm_range_and_listing(cloud: Cloud, client: Client, remote_cluster: Any) -> None:
    name = cloud.new_bucket()
    data = {f"d/{i:02d}": os.urandom(1000 + i) for i in range(12)}
    big = os.urandom(3 << 20)
    for k, v in data.items():
        cloud.put(name, k, v)
    cloud.put(name, "big", big)
    bck = client.bucket(name, provider=cloud.provider)
    # a range of a cold object, then the whole of it from the local copy
    url = f"{remote_cluster.endpoint}/v1/objects/{name}/big?provider={cloud.provider}"
    r = requests.get(url, headers={"Range": "bytes=1048570-1048589"}, timeout=60)
    assert r.status_code == 206 and r.content == big[1048570:1048590]
    assert bck.object("big").get_reader().read_all() == big
    for k in ("d/00", "d/05"):
        assert bck.object(k).get_reader().read_all() == data[k]
        assert bck.object(k).get_reader().read_all() == data[k]    # warm
    entries = bck.list_all_objects(page_size=5)
    assert [e.name for e in entries] == sorted([*data, "big"])
    assert {e.name for e in entries if e.is_cached()} == {"big", "d/00", "d/05"}
    assert _cached(bck) == ["big", "d/00", "d/05"]
    assert bck.object("d/07").head().present is False
    # a cold GET that has returned the whole object has also published it: no window in which
    # the reader holds all the bytes and the cluster does not hold the object yet
    for k in ("d/08", "d/09", "d/10", "d/11"):
        assert bck.object(k).get_reader().read_all() == data[k]
        assert bck.object(k).head().present is True, k


def test_write_through_and_delete(cloud: Cloud, client: Client) -> None:
    name = cloud.new_bucket()
    bck = client.bucket(name, provider=cloud.provider)
    bck.object("w/one").get_writer().put_content(b"through the cluster")
    assert cloud.get(name, "w/one") == b"through the cluster"
    assert bck.object("w/one").head().present
    bck.object("w/one").delete()
    assert cloud.names(name) == []


def test_prefetch_evict_and_latest_ver(cloud: Cloud, client: Client) -> None:
    name = cloud.new_bucket()
    for i in range(8):
        cloud.put(name, f"p{i}", f"first {i}".encode())
    bck = client.bucket(name, provider=cloud.provider)
    client.job(bck.objects(obj_template="p{0..3}").prefetch()).wait(timeout=60)
    assert _cached(bck) == ["p0", "p1", "p2", "p3"]
    # the remote object changes: a plain read keeps the cached copy, latest-ver refreshes it
    cloud.put(name, "p1", b"second version")
    assert bck.object("p1").get_reader().read_all() == b"first 1"
    assert bck.object("p1").get_reader(latest=True).read_all() == b"second version"
    client.job(bck.objects(obj_names=["p0", "p1"]).evict()).wait(timeout=60)
    assert _cached(bck) == ["p2", "p3"]
    assert cloud.names(name) == [f"p{i}" for i in range(8)]    # evict never touches the backend
