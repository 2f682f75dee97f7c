"""Stock S3 clients against the cluster: aws-cli, s3fs, the minio SDK, presigned URLs over plain
HTTP, and the proxy's memory while 2 GiB stream through it."""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time

import boto3
import pytest
import requests
from botocore.config import Config


def _aws(cluster, home: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "HOME": home, "AWS_CONFIG_FILE": os.path.join(home, "none"),
           "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "none")}
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", f"{cluster.endpoint}/s3", *args]
    r = subprocess.run(cmd, capture_output=True, env=env, input=stdin, timeout=300)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    return r


def _sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_aws_cli(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = str(tmp_path)
    b = "awscli-" + os.urandom(3).hex()
    _aws(cluster, home, "s3", "mb", f"s3://{b}")
    src = tmp_path / "one.txt"
    src.write_bytes(b"hello from aws-cli\n")
    _aws(cluster, home, "s3", "cp", str(src), f"s3://{b}/dir/one.txt")
    assert b"one.txt" in _aws(cluster, home, "s3", "ls", f"s3://{b}/dir/").stdout
    assert _aws(cluster, home, "s3", "cp", f"s3://{b}/dir/one.txt", "-").stdout == b"hello from aws-cli\n"
    # sync a directory tree up, then back down
    tree = tmp_path / "tree"
    for i in range(12):
        (tree / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 3}" / f"f{i}.bin").write_bytes(os.urandom(1000 + i))
    _aws(cluster, home, "s3", "sync", str(tree), f"s3://{b}/sync/")
    out = tmp_path / "back"
    _aws(cluster, home, "s3", "sync", f"s3://{b}/sync/", str(out))
    for p in tree.rglob("*.bin"):
        assert (out / p.relative_to(tree)).read_bytes() == p.read_bytes()
    # second sync uploads nothing
    assert b"upload:" not in _aws(cluster, home, "s3", "sync", str(tree), f"s3://{b}/sync/").stdout
    # s3api
    head = json.loads(_aws(cluster, home, "s3api", "head-object", "--bucket", b, "--key", "dir/one.txt").stdout)
    assert head["ContentLength"] == 19 and head["ETag"] == '"' + hashlib.md5(src.read_bytes()).hexdigest() + '"'
    listed = json.loads(_aws(cluster, home, "s3api", "list-objects-v2", "--bucket", b, "--prefix", "sync/",
                             "--page-size", "5").stdout)
    assert len(listed["Contents"]) == 12
    # a 200 MiB multipart upload (aws-cli splits above 8 MiB) and its download
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    _aws(cluster, home, "s3", "cp", str(big), f"s3://{b}/big.bin")
    etag = json.loads(_aws(cluster, home, "s3api", "head-object", "--bucket", b, "--key", "big.bin").stdout)["ETag"]
    assert etag.endswith('-25"')  # 25 parts of 8 MiB
    _aws(cluster, home, "s3", "cp", f"s3://{b}/big.bin", str(tmp_path / "big.back"))
    assert _sha(str(big)) == _sha(str(tmp_path / "big.back"))
    _aws(cluster, home, "s3", "rm", f"s3://{b}/sync/", "--recursive")
    assert b"sync/" not in _aws(cluster, home, "s3", "ls", f"s3://{b}/").stdout
    _aws(cluster, home, "s3", "rb", f"s3://{b}", "--force")


def test_s3fs(cluster) -> None:  # type: ignore[no-untyped-def]
    s3fs = pytest.importorskip("s3fs")
    fs = s3fs.S3FileSystem(key="test", secret="test", use_listings_cache=False,
                           client_kwargs={"endpoint_url": f"{cluster.endpoint}/s3", "region_name": "us-east-1"})
    b = "s3fs-" + os.urandom(3).hex()
    fs.mkdir(b)
    data = os.urandom(3 << 20)
    fs.pipe(f"{b}/a/x.bin", data)
    fs.pipe(f"{b}/a/y.txt", b"y")
    assert fs.cat(f"{b}/a/x.bin") == data
    with fs.open(f"{b}/a/x.bin", "rb", block_size=1 << 20) as f:
        f.seek(2_000_000)
        assert f.read(1000) == data[2_000_000:2_001_000]
    with fs.open(f"{b}/w.bin", "wb", block_size=5 << 20) as f:  # multipart from s3fs
        for _ in range(3):
            f.write(os.urandom(4 << 20))
    assert fs.info(f"{b}/w.bin")["size"] == 12 << 20
    assert sorted(fs.ls(f"{b}/a", detail=False)) == [f"{b}/a/x.bin", f"{b}/a/y.txt"]
    assert sorted(fs.find(b)) == [f"{b}/a/x.bin", f"{b}/a/y.txt", f"{b}/w.bin"]
    fs.rm(b, recursive=True)
    assert b not in [p.rstrip("/") for p in fs.ls("", detail=False)]


def test_minio_sdk(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    minio = pytest.importorskip("minio")
    host = cluster.endpoint.split("://", 1)[1]
    m = minio.Minio(host, access_key="test", secret_key="testtesttest", secure=False, region="us-east-1")
    b = "minio-" + os.urandom(3).hex()
    m.make_bucket(b)
    assert m.bucket_exists(b) and b in [x.name for x in m.list_buckets()]
    import io
    m.put_object(b, "k/small", io.BytesIO(b"minio data"), length=10, metadata={"x-amz-meta-label": "cat"})
    assert m.get_object(b, "k/small").read() == b"minio data"
    st = m.stat_object(b, "k/small")
    assert st.size == 10 and st.metadata.get("x-amz-meta-label") == "cat"
    big = tmp_path / "big"
    big.write_bytes(os.urandom(12 << 20))
    m.fput_object(b, "k/big", str(big), part_size=5 << 20)  # multipart
    m.fget_object(b, "k/big", str(tmp_path / "big.back"))
    assert _sha(str(big)) == _sha(str(tmp_path / "big.back"))
    assert sorted(o.object_name for o in m.list_objects(b, recursive=True)) == ["k/big", "k/small"]
    url = m.presigned_get_object(b, "k/small")
    assert requests.get(url, timeout=10).content == b"minio data"
    for name in ("k/big", "k/small"):
        m.remove_object(b, name)
    m.remove_bucket(b)
    assert not m.bucket_exists(b)


def test_presigned_put_and_get_over_plain_http(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    s3 = boto3.client("s3", endpoint_url=f"{cluster.endpoint}/s3", aws_access_key_id="t", aws_secret_access_key="t",
                      region_name="us-east-1", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket.name, "Key": "pre/x"}, ExpiresIn=300)
    assert requests.put(put, data=b"presigned body", timeout=10).status_code == 200
    get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket.name, "Key": "pre/x"}, ExpiresIn=300)
    r = requests.get(get, timeout=10)
    assert r.status_code == 200 and r.content == b"presigned body"
    # and the same object through the native API
    assert bucket.object("pre/x").get_reader().read_all() == b"presigned body"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_proxy_memory_flat_while_2gib_pass_through(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    proxy_pid = cluster.node("p0").pid
    base = _rss_kib(proxy_pid)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib(proxy_pid))
            time.sleep(0.05)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    size, chunk = 2 << 30, os.urandom(1 << 20)
    url = f"{cluster.endpoint}/s3/{bucket.name}/big-through-proxy"
    try:
        class Body:
            """A 2 GiB file-like body that is never in memory (requests sends its length)."""

            def __init__(self) -> None:
                self.left = size

            def __len__(self) -> int:
                return self.left

            def read(self, n: int = -1) -> bytes:
                n = min(self.left, len(chunk) if n is None or n < 0 else min(n, len(chunk)))
                self.left -= n
                return chunk[:n]
        r = requests.put(url, data=Body(), timeout=300)
        assert r.status_code == 200, r.text
        got = 0
        with requests.get(url, stream=True, timeout=300) as r:
            assert r.status_code == 200
            for part in r.iter_content(1 << 20):
                got += len(part)
        assert got == size
    finally:
        done.set()
        t.join()
    grown_mib = (peak[0] - base) / 1024
    assert grown_mib < 48, f"proxy RSS grew by {grown_mib:.1f} MiB while 2 GiB passed through"


def test_large_bodies_relayed_by_splice_stay_exact(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    """Concurrent large GETs (whole and ranged) through the proxy's zero-copy relay, and a
    client that hangs up mid-body: the proxy keeps serving."""
    from concurrent.futures import ThreadPoolExecutor
    url = f"{cluster.endpoint}/s3/{bucket.name}/spliced"
    data = os.urandom((12 << 20) + 12345)
    assert requests.put(url, data=data, timeout=60).status_code == 200

    def fetch(i: int) -> bool:
        if i % 2:
            lo, hi = 1000 * i, (3 << 20) + 77 * i
            r = requests.get(url, headers={"Range": f"bytes={lo}-{hi}"}, timeout=60)
            return r.status_code == 206 and r.content == data[lo:hi + 1]
        return requests.get(url, timeout=60).content == data
    with ThreadPoolExecutor(8) as ex:
        assert all(ex.map(fetch, range(24)))
    with requests.get(url, stream=True, timeout=60) as r:  # hang up after the first MiB
        next(r.iter_content(1 << 20))
    assert requests.get(url, timeout=60).content == data
