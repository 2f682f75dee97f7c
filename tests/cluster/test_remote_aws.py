"""s3:// buckets against moto's S3 server: cold and warm GET, single flight, ranges, listing
with cached flags, write-through, latest-ver, and a backend that dies mid-transfer."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from aistore import Client
from aistore.sdk.errors import AISError, ErrRemoteBckNotFound
from aistore.sdk.list_object_flag import ListObjectFlag


def _new_bucket(moto, prefix: str = "rb") -> str:  # type: ignore[no-untyped-def]
    name = f"{prefix}-{os.urandom(4).hex()}"
    moto.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3b(moto):  # type: ignore[no-untyped-def]
    return _new_bucket(moto)


@pytest.fixture
def client(remote_cluster):  # type: ignore[no-untyped-def]
    return Client(remote_cluster.endpoint)


def test_cold_then_warm_get(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    s3 = moto.client()
    small, large = os.urandom(3000), os.urandom(3 << 20)
    s3.put_object(Bucket=s3b, Key="dir/small", Body=small)
    s3.put_object(Bucket=s3b, Key="large", Body=large)
    bck = client.bucket(s3b, provider="aws")
    for _ in range(3):
        assert bck.object("dir/small").get_reader().read_all() == small
        assert bck.object("large").get_reader().read_all() == large
    # one backend GET each: later reads were local
    assert moto.count("GET", f"/{s3b}/dir/small") == 1
    assert moto.count("GET", f"/{s3b}/large") == 1
    props = bck.object("large").head()
    assert props.present and props.size == len(large)


def test_single_flight_100_readers(moto, remote_cluster, s3b) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(8 << 20)
    moto.client().put_object(Bucket=s3b, Key="hot", Body=data)
    url = f"{remote_cluster.endpoint}/v1/objects/{s3b}/hot?provider=aws"
    start = threading.Barrier(100)

    def read(_: int) -> bytes:
        with requests.Session() as s:
            start.wait()
            r = s.get(url, timeout=120)
            r.raise_for_status()
            return r.content
    with ThreadPoolExecutor(100) as pool:
        bodies = list(pool.map(read, range(100)))
    assert all(b == data for b in bodies)
    assert moto.count("GET", f"/{s3b}/hot") == 1


def test_range_of_cold_object(moto, remote_cluster, s3b) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(1 << 20)
    moto.client().put_object(Bucket=s3b, Key="r", Body=data)
    url = f"{remote_cluster.endpoint}/v1/objects/{s3b}/r?provider=aws"
    r = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert r.content == data[1000:2000]
    # now warm: a suffix range served locally
    r = requests.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert r.status_code == 206 and r.content == data[-10:]
    assert moto.count("GET", f"/{s3b}/r") == 1


def test_listing_flags_cached(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    s3 = moto.client()
    names = [f"obj-{i:03d}" for i in range(25)]
    for n in names:
        s3.put_object(Bucket=s3b, Key=n, Body=n.encode())
    bck = client.bucket(s3b, provider="aws")
    for n in names[:5]:
        bck.object(n).get_reader().read_all()
    entries = bck.list_all_objects(page_size=7)
    assert [e.name for e in entries] == names
    assert {e.name for e in entries if e.is_cached()} == set(names[:5])
    assert all(e.size == len(e.name) for e in entries)
    cached = bck.list_all_objects(flags=[ListObjectFlag.CACHED])
    assert [e.name for e in cached] == names[:5]
    not_cached = bck.list_all_objects(flags=[ListObjectFlag.NOT_CACHED])
    assert [e.name for e in not_cached] == names[5:]


def test_write_through_put_and_delete(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    s3 = moto.client()
    bck = client.bucket(s3b, provider="aws")
    bck.object("wt/a").get_writer().put_content(b"written through")
    assert s3.get_object(Bucket=s3b, Key="wt/a")["Body"].read() == b"written through"
    before = moto.count("GET", f"/{s3b}/wt/a")
    assert bck.object("wt/a").get_reader().read_all() == b"written through"
    assert moto.count("GET", f"/{s3b}/wt/a") == before     # served from the local copy
    bck.object("wt/a").delete()
    with pytest.raises(Exception):
        s3.head_object(Bucket=s3b, Key="wt/a")
    with pytest.raises(AISError):
        bck.object("wt/a").head()


def test_latest_ver_catches_remote_change(moto, remote_cluster, client, s3b) -> None:  # type: ignore[no-untyped-def]
    s3 = moto.client()
    s3.put_object(Bucket=s3b, Key="v", Body=b"version one")
    obj = client.bucket(s3b, provider="aws").object("v")
    assert obj.get_reader().read_all() == b"version one"
    s3.put_object(Bucket=s3b, Key="v", Body=b"version two!")
    assert obj.get_reader().read_all() == b"version one"            # warm, not validated
    assert obj.get_reader(latest=True).read_all() == b"version two!"
    assert obj.get_reader().read_all() == b"version two!"            # the new copy is kept
    url = f"{remote_cluster.endpoint}/v1/objects/{s3b}/v?provider=aws&latest-ver=true"
    assert requests.head(url, timeout=10, allow_redirects=True).status_code == 200
    s3.put_object(Bucket=s3b, Key="v", Body=b"version three")
    assert requests.head(url, timeout=10, allow_redirects=True).status_code == 409
    s3.delete_object(Bucket=s3b, Key="v")
    r = requests.head(f"{remote_cluster.endpoint}/v1/objects/{s3b}/v?provider=aws&latest-ver=true", timeout=10,
                      allow_redirects=True)
    assert r.status_code == 410


def test_missing_remote_bucket_is_a_clear_404(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ErrRemoteBckNotFound) as exc:
        client.bucket("no-such-bucket-here", provider="aws").object("x").get_reader().read_all()
    assert "s3://no-such-bucket-here" in str(exc.value)


def test_missing_remote_object_is_404(client, s3b) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AISError) as exc:
        client.bucket(s3b, provider="aws").object("nope").get_reader().read_all()
    assert exc.value.status_code == 404
    assert f"s3://{s3b}/nope" in str(exc.value)


def test_backend_killed_mid_transfer_leaves_nothing(make_cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.emulators import MotoS3
    moto = MotoS3(str(tmp_path / "moto"))
    moto.start()
    try:
        c = make_cluster(targets=1, mountpaths=1, env=dict(moto.env))
        name = _new_bucket(moto)
        data = os.urandom(8 << 20)
        moto.client().put_object(Bucket=name, Key="big", Body=data)
        moto.slow(2 << 20)   # ~4 s for the whole object
        url = f"{c.endpoint}/v1/objects/{name}/big?provider=aws"
        got: dict[str, object] = {}

        def read() -> None:
            try:
                r = requests.get(url, timeout=60)
                got["len"] = len(r.content)
            except requests.RequestException as exc:
                got["error"] = exc
        t = threading.Thread(target=read)
        t.start()
        import time
        time.sleep(1.5)
        moto.kill()
        t.join(60)
        assert "error" in got or got.get("len", 0) < len(data), got   # the reader saw a cut, never a whole object
        # nothing published, no work file left, node healthy
        target_dir = c.targets[0].dir(c.root)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            leftovers = [os.path.join(d, f) for d, _, fs in os.walk(target_dir) for f in fs
                         if "/mp" in d and ("%wk" in d or "/@aws/" in d)]
            if not leftovers:
                break
            time.sleep(0.2)
        assert leftovers == []
        assert requests.get(f"{c.endpoint}/v1/health", timeout=5).status_code == 200
        # the backend is gone: a clear 503, not a hang or a 500
        r = requests.get(f"{c.endpoint}/v1/objects/{name}/other?provider=aws", timeout=60)
        assert r.status_code == 503 and "cannot reach the backend" in r.text, r.text
    finally:
        moto.stop()


def test_boto3_through_our_s3_api(moto, remote_cluster, client, s3b) -> None:  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config
    cloud = moto.client()
    names = ["a/1", "a/2", "a/3", "b/1", "c", "d", "e"]
    for n in names:
        cloud.put_object(Bucket=s3b, Key=n, Body=n.encode() * 100, Metadata={"origin": "cloud"})
    client.bucket(s3b, provider="aws").head()   # first access adds the bucket to the cluster
    ours = boto3.client("s3", endpoint_url=f"{remote_cluster.endpoint}/s3", aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))
    # cold GET with a range, then a full GET; user metadata from the backend
    r = ours.get_object(Bucket=s3b, Key="a/2", Range="bytes=3-9")
    assert r["Body"].read() == (b"a/2" * 100)[3:10]
    full = ours.get_object(Bucket=s3b, Key="a/2")
    assert full["Body"].read() == b"a/2" * 100
    assert ours.head_object(Bucket=s3b, Key="c")["ContentLength"] == 100
    assert full["Metadata"] == {"origin": "cloud"}
    # listing: paging with a delimiter, common prefixes once
    keys, prefixes, token = [], [], None
    while True:
        kw = {"Bucket": s3b, "Delimiter": "/", "MaxKeys": 2}
        if token:
            kw["ContinuationToken"] = token
        page = ours.list_objects_v2(**kw)
        keys += [c["Key"] for c in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert keys == ["c", "d", "e"] and prefixes == ["a/", "b/"]
    # write-through and delete
    ours.put_object(Bucket=s3b, Key="new", Body=b"from boto3")
    assert cloud.get_object(Bucket=s3b, Key="new")["Body"].read() == b"from boto3"
    ours.delete_object(Bucket=s3b, Key="new")
    assert "new" not in [c["Key"] for c in cloud.list_objects_v2(Bucket=s3b).get("Contents", [])]
    with pytest.raises(ours.exceptions.NoSuchKey):
        ours.get_object(Bucket=s3b, Key="missing")


def _cached(bck) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.name for e in bck.list_all_objects(flags=[ListObjectFlag.CACHED])]


def test_prefetch_and_evict_jobs(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    cloud = moto.client()
    names = [f"p-{i:02d}" for i in range(20)] + ["q/1", "q/2"]
    for n in names:
        cloud.put_object(Bucket=s3b, Key=n, Body=n.encode() * 1000)
    bck = client.bucket(s3b, provider="aws")
    # prefetch by template, then by list, then by prefix
    job = bck.objects(obj_template="p-{00..09}").prefetch()
    client.job(job).wait(timeout=60)
    assert _cached(bck) == [f"p-{i:02d}" for i in range(10)]
    client.job(bck.objects(obj_names=["p-15", "p-16"]).prefetch()).wait(timeout=60)
    client.job(bck.objects(obj_template="q/").prefetch()).wait(timeout=60)
    assert _cached(bck) == [f"p-{i:02d}" for i in range(10)] + ["p-15", "p-16", "q/1", "q/2"]
    assert moto.count("GET", f"/{s3b}/p-03") == 1
    assert bck.object("p-03").get_reader().read_all() == b"p-03" * 1000
    assert moto.count("GET", f"/{s3b}/p-03") == 1       # prefetched: a warm read
    status = client.job(job).get_details()
    snaps = status.list_snapshots()
    assert len(snaps) == 3 and all(s.kind == "prefetch-listrange" and s.end_time for s in snaps)
    assert sum(int(s.stats.objects) for s in snaps) == 10
    # evict some by template, then all but the metadata
    client.job(bck.objects(obj_template="p-{00..04}").evict()).wait(timeout=60)
    assert _cached(bck) == [f"p-{i:02d}" for i in range(5, 10)] + ["p-15", "p-16", "q/1", "q/2"]
    bck.evict(keep_md=True)
    assert _cached(bck) == []
    assert s3b in [b.name for b in client.cluster().list_buckets(provider="aws")]
    # the backend still has everything; a read brings one back
    assert bck.object("p-00").get_reader().read_all() == b"p-00" * 1000
    bck.evict(keep_md=False)
    assert s3b not in [b.name for b in client.cluster().list_buckets(provider="aws")]


def test_prefetch_refuses_ais_bucket_and_bad_template(client, remote_cluster) -> None:  # type: ignore[no-untyped-def]
    b = client.bucket("plain-" + os.urandom(3).hex())
    b.create()
    try:
        r = requests.post(f"{remote_cluster.endpoint}/v1/buckets/{b.name}",
                          json={"action": "prefetch-listrange", "value": {"objnames": ["a"]}}, timeout=10)
        assert r.status_code == 400 and "remote bucket" in r.text
    finally:
        b.delete()


def test_delete_listrange_writes_through(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    cloud = moto.client()
    for i in range(6):
        cloud.put_object(Bucket=s3b, Key=f"d{i}", Body=b"x")
    bck = client.bucket(s3b, provider="aws")
    client.job(bck.objects(obj_template="d{0..2}").delete()).wait(timeout=60)
    left = sorted(c["Key"] for c in cloud.list_objects_v2(Bucket=s3b).get("Contents", []))
    assert left == ["d3", "d4", "d5"]


def test_lru_evicts_least_recently_read_copies(make_cluster, moto) -> None:  # type: ignore[no-untyped-def]
    import time
    mib = 1 << 20
    env = {**moto.env, "AIS_SPACE_CAPACITY_BYTES": str(8 * mib), "AIS_SPACE_HIGH_WM_PCT": "80",
           "AIS_SPACE_LOW_WM_PCT": "50", "AIS_SPACE_CHECK_INTERVAL_S": "0.3"}
    c = make_cluster(targets=1, mountpaths=1, env=env)
    client = Client(c.endpoint)
    local = client.bucket("keep-" + os.urandom(3).hex())
    local.create()
    local.object("precious").get_writer().put_content(os.urandom(mib))
    name = _new_bucket(moto)
    cloud = moto.client()
    for i in range(10):
        cloud.put_object(Bucket=name, Key=f"o{i}", Body=os.urandom(mib))
    bck = client.bucket(name, provider="aws")
    r = requests.patch(f"{c.endpoint}/v1/buckets/{name}", params={"provider": "aws"}, timeout=10,
                       json={"action": "set-bprops", "value": {"lru": {"dont_evict_time": "0s"}}})
    assert r.status_code == 200, r.text
    for i in [*range(1, 10), 0]:
        bck.object(f"o{i}").get_reader().read_all()
        time.sleep(0.05)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        cached = _cached(bck)
        if len(cached) <= 5:
            break
        time.sleep(0.2)
    # below the high watermark again: 1 MiB ais + at most 5 MiB cached < 80% of 8 MiB (each LRU run
    # goes down to 50%; reads after the last run may add up to the high watermark)
    assert len(cached) <= 5, cached
    assert "o0" in cached and "o1" not in cached           # the most recently read stays, the oldest went
    assert local.object("precious").head().size == mib     # ais:// data is never evicted
    jobs = client.cluster().list_jobs_status(job_kind="lru")
    assert jobs and all(not j.err for j in jobs)
    assert cloud.head_object(Bucket=name, Key="o1")["ContentLength"] == mib   # the backend keeps everything
    # an explicit start (SDK Job.start) runs one more pass, which finds nothing above the watermark
    job = client.job(job_kind="lru").start()
    client.job(job).wait(timeout=30)
    assert client.job(job).status().end_time and _cached(bck) == cached


def test_blob_download_job_and_header(moto, client, remote_cluster, s3b) -> None:  # type: ignore[no-untyped-def]
    from aistore.sdk.blob_download_config import BlobDownloadConfig
    cloud = moto.client()
    big, other = os.urandom((9 << 20) + 123), os.urandom(5 << 20)
    cloud.put_object(Bucket=s3b, Key="blob", Body=big)
    cloud.put_object(Bucket=s3b, Key="blob2", Body=other)
    obj = client.bucket(s3b, provider="aws").object("blob")
    job = obj.blob_download(chunk_size=1 << 20, num_workers=4)
    client.job(job).wait(timeout=60)
    assert moto.count("GET", f"/{s3b}/blob") == 10       # ten 1 MiB range reads
    assert obj.get_reader().read_all() == big
    assert moto.count("GET", f"/{s3b}/blob") == 10       # then served locally
    # on GET, with the blob-download headers
    obj2 = client.bucket(s3b, provider="aws").object("blob2")
    got = obj2.get_reader(blob_download_config=BlobDownloadConfig(chunk_size="2MiB", num_workers="3")).read_all()
    assert got == other
    assert moto.count("GET", f"/{s3b}/blob2") == 3
    # prefetch sends objects above the blob threshold through the blob downloader (4 MiB ranges)
    cloud.put_object(Bucket=s3b, Key="blob3", Body=os.urandom(12 << 20))
    cloud.put_object(Bucket=s3b, Key="small3", Body=b"tiny")
    bck = client.bucket(s3b, provider="aws")
    client.job(bck.objects(obj_names=["blob3", "small3"]).prefetch(blob_threshold=1 << 20)).wait(timeout=60)
    assert moto.count("GET", f"/{s3b}/blob3") == 3 and moto.count("GET", f"/{s3b}/small3") == 1


def test_throttled_backend_is_retried_then_reported(moto, client, remote_cluster, s3b) -> None:  # type: ignore[no-untyped-def]
    cloud = moto.client()
    cloud.put_object(Bucket=s3b, Key="t1", Body=b"after two 503s")
    cloud.put_object(Bucket=s3b, Key="t2", Body=b"never")
    bck = client.bucket(s3b, provider="aws")
    bck.head()
    moto.fail_next(2, 503)
    assert bck.object("t1").get_reader().read_all() == b"after two 503s"
    assert moto.count("GET", f"/{s3b}/t1") == 3
    moto.fail_next(100, 503)
    try:
        r = requests.get(f"{remote_cluster.endpoint}/v1/objects/{s3b}/t2?provider=aws", timeout=60)
    finally:
        moto.fail_next(0)
    assert r.status_code == 503 and "throttling" in r.text, r.text
    assert _cached(bck) == ["t1"]                             # nothing partial of t2
    assert bck.object("t2").get_reader().read_all() == b"never"


def test_bucket_validate_warm_get_and_synchronize(moto, client, remote_cluster, s3b) -> None:  # type: ignore[no-untyped-def]
    cloud = moto.client()
    cloud.put_object(Bucket=s3b, Key="w", Body=b"one")
    bck = client.bucket(s3b, provider="aws")
    assert bck.object("w").get_reader().read_all() == b"one"
    r = requests.patch(f"{remote_cluster.endpoint}/v1/buckets/{s3b}", params={"provider": "aws"}, timeout=10,
                       json={"action": "set-bprops",
                             "value": {"versioning": {"validate_warm_get": True, "synchronize": True}}})
    assert r.status_code == 200, r.text
    cloud.put_object(Bucket=s3b, Key="w", Body=b"two!")
    assert bck.object("w").get_reader().read_all() == b"two!"      # every warm GET is validated
    cloud.delete_object(Bucket=s3b, Key="w")
    with pytest.raises(AISError) as exc:
        bck.object("w").get_reader().read_all()
    assert exc.value.status_code == 404
    assert _cached(bck) == []                                       # synchronize dropped the copy


def test_wrong_credentials_are_a_clear_403(make_cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.emulators import MotoS3
    moto = MotoS3(str(tmp_path / "moto"))
    moto.process_env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}   # moto checks credentials from the first request
    moto.start()
    try:
        c = make_cluster(targets=1, mountpaths=1, env={**moto.env, "AWS_ACCESS_KEY_ID": "wrong-key"})
        r = requests.get(f"{c.endpoint}/v1/objects/some-bucket/x?provider=aws", timeout=60)
        assert r.status_code == 403 and "access denied" in r.text, r.text
        assert requests.get(f"{c.endpoint}/v1/health", timeout=5).status_code == 200
    finally:
        moto.stop()


def test_copy_remote_bucket_and_list_to_ais(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    cloud = moto.client()
    for i in range(6):
        cloud.put_object(Bucket=s3b, Key=f"c/{i}", Body=f"copy {i}".encode())
    src = client.bucket(s3b, provider="aws")
    src.object("c/0").get_reader().read_all()                  # one cached, the rest only remote
    whole = client.bucket("whole-" + os.urandom(3).hex())
    client.job(src.copy(to_bck=whole, prepend="x-")).wait(timeout=60)
    assert [e.name for e in whole.list_all_objects()] == [f"x-c/{i}" for i in range(6)]
    assert whole.object("x-c/4").get_reader().read_all() == b"copy 4"
    part = client.bucket("part-" + os.urandom(3).hex())
    jobs = src.objects(obj_template="c/{1..3}").copy(to_bck=part)
    for j in jobs:
        client.job(j).wait(timeout=60)
    assert [e.name for e in part.list_all_objects()] == ["c/1", "c/2", "c/3"]
    for b in (whole, part):
        b.delete()


def test_overloaded_target_refuses_cold_gets_but_serves_warm(make_cluster, moto) -> None:  # type: ignore[no-untyped-def]
    # max_inflight=1: the request itself makes the target Critical, so every admission check fails
    c = make_cluster(targets=1, mountpaths=1, env={**moto.env, "AIS_LOAD_MAX_INFLIGHT": "1"})
    client = Client(c.endpoint)
    name = _new_bucket(moto)
    moto.client().put_object(Bucket=name, Key="cold", Body=b"from the backend")
    local = client.bucket("warm-" + os.urandom(3).hex())
    local.create()
    local.object("here").get_writer().put_content(b"local bytes")
    assert local.object("here").get_reader().read_all() == b"local bytes"     # foreground reads go on
    client.bucket(name, provider="aws").head()
    r = requests.get(f"{c.endpoint}/v1/objects/{name}/cold?provider=aws", timeout=30)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
    r = requests.get(f"{c.endpoint}/s3/{name}/cold", timeout=30)
    assert r.status_code == 503 and "<Code>SlowDown</Code>" in r.text and r.headers.get("Retry-After"), r.text
    assert moto.count("GET", f"/{name}/cold") == 0
    smap = requests.get(f"{c.endpoint}/v1/daemon", params={"what": "smap"}, timeout=10).json()
    target_url = next(iter(smap["tmap"].values()))["public_net"]["direct_url"]
    load = requests.get(f"{target_url}/v1/daemon", params={"what": "node_status"}, timeout=10).json()["load"]
    # the sampled view (each second); admission above used the live in-flight count
    assert load["overall"] in ("low", "moderate", "high", "critical") and "memory" in load["grades"], load


def test_prefetch_aborted_midway(moto, client, s3b) -> None:  # type: ignore[no-untyped-def]
    import time
    cloud = moto.client()
    for i in range(40):
        cloud.put_object(Bucket=s3b, Key=f"a{i:02d}", Body=os.urandom(256 << 10))
    bck = client.bucket(s3b, provider="aws")
    moto.slow(256 << 10)   # ~1 s per object
    try:
        job = client.job(bck.objects(obj_template="a{00..39}").prefetch(num_workers=2))
        # abort once the job has fetched something (a fixed sleep raced a loaded CI machine)
        deadline = time.monotonic() + 30
        while not _cached(bck) and time.monotonic() < deadline:
            time.sleep(0.1)
        job.abort()
        deadline = time.monotonic() + 30
        while not job.status().end_time and time.monotonic() < deadline:
            time.sleep(0.2)
        status = job.status()
    finally:
        moto.slow(0)
    assert status.end_time and status.aborted, status
    cached = _cached(bck)
    assert 0 < len(cached) < 40, cached
    assert client.cluster().list_running_jobs(job_kind="prefetch-listrange") == []


def test_blob_download_bad_input(moto, remote_cluster, s3b) -> None:  # type: ignore[no-untyped-def]
    moto.client().put_object(Bucket=s3b, Key="b", Body=b"x" * 100)
    url = f"{remote_cluster.endpoint}/v1/objects/{s3b}/b?provider=aws"
    r = requests.get(url, headers={"Ais-Blob-Download": "true", "Ais-Blob-Workers": "several"}, timeout=30)
    assert r.status_code == 400 and "Ais-Blob-Workers" in r.text, r.text
    r = requests.get(url, headers={"Ais-Blob-Download": "true", "Ais-Blob-Chunk": "4 parsecs"}, timeout=30)
    assert r.status_code == 400 and "4 parsecs" in r.text, r.text
    r = requests.post(f"{remote_cluster.endpoint}/v1/objects/{s3b}?provider=aws", timeout=30,
                      json={"action": "blob-download", "name": "b", "value": {"chunk-size": "big"}})
    assert r.status_code == 400 and "chunk-size" in r.text, r.text
    r = requests.post(f"{remote_cluster.endpoint}/v1/objects/{s3b}?provider=aws", timeout=30,
                      json={"action": "blob-download", "name": "", "value": {}})
    assert 400 <= r.status_code < 500, r.text
