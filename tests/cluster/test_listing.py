"""Listing as the SDK does it: msgpack pages with continuation tokens, prefixes, props."""

import os
from concurrent.futures import ThreadPoolExecutor

import msgpack
import requests


def test_list_25000_objects_page_by_page(client) -> None:  # type: ignore[no-untyped-def]
    b = client.bucket("list25k-" + os.urandom(3).hex())
    b.create()
    try:
        names = [f"shard-{i % 10}/sample-{i:06d}.jpg" for i in range(25_000)]

        def put(chunk: list[str]) -> None:
            for n in chunk:
                b.object(n).get_writer().put_content(b"x")
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(put, [names[i::64] for i in range(64)]))

        # the SDK iterator, page by page (default page size: 10,000)
        listed = [e.name for e in b.list_objects_iter()]
        assert listed == sorted(names)
        # explicit pages with continuation tokens
        token, pages, seen = "", 0, []
        while True:
            page = b.list_objects(page_size=3000, continuation_token=token)
            seen += [e.name for e in page.entries]
            pages += 1
            token = page.continuation_token
            assert page.uuid
            if not token:
                break
        assert seen == sorted(names) and pages >= 9
        # prefix
        sub = [e.name for e in b.list_objects_iter(prefix="shard-3/")]
        assert sub == sorted(n for n in names if n.startswith("shard-3/")) and len(sub) == 2500
        # start_after
        after = [e.name for e in b.list_objects(start_after="shard-9/sample-024900.jpg").entries]
        assert after == sorted(n for n in names if n > "shard-9/sample-024900.jpg")
    finally:
        b.delete()


def test_list_props_and_formats(cluster, client, bucket) -> None:  # type: ignore[no-untyped-def]
    bucket.object("a").get_writer().put_content(b"12345")
    bucket.object("b/c").get_writer().put_content(b"1")
    page = bucket.list_objects(props="name,size,checksum,version,atime,location")
    e = page.entries[0]
    assert e.name == "a" and e.size == 5 and len(e.checksum) == 16 and e.version == "1" and e.atime
    assert e.location.startswith("t[") and e.is_cached() and e.is_ok()
    # raw msgpack: Go field names
    body = {"action": "list", "name": "", "value": {"pagesize": 1, "flags": "0", "props": "name,size"}}
    r = requests.get(f"{cluster.endpoint}/v1/buckets/{bucket.name}", json=body,
                     headers={"Accept": "application/msgpack"}, timeout=10)
    assert r.headers["Content-Type"] == "application/msgpack"
    doc = msgpack.unpackb(r.content)
    assert set(doc) == {"UUID", "ContinuationToken", "Entries", "Flags"}
    assert doc["UUID"] and doc["ContinuationToken"] == "a" and doc["Entries"] == [{"n": "a", "f": 64, "s": 5}]
    # JSON when msgpack is not asked for
    j = requests.get(f"{cluster.endpoint}/v1/buckets/{bucket.name}", json=body, timeout=10).json()
    assert j["entries"][0]["name"] == "a" and j["entries"][0]["size"] == "5" and j["continuation_token"] == "a"
    # page size above the maximum is capped, not an error
    big = {"action": "list", "value": {"pagesize": 10**9, "props": "name"}}
    assert requests.get(f"{cluster.endpoint}/v1/buckets/{bucket.name}", json=big, timeout=10).status_code == 200
