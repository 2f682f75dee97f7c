"""Shards through the official SDK and plain HTTP on a real cluster: files read out of .tar,
.tgz, .tar.gz, .tar.zst and .zip shards (whole, ranged, by regex/prefix/suffix/substr/wdskey),
listing shard contents, appending to shards, the archive job, errors, and a shard in s3."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from typing import Any, Callable

import pytest
import requests
import zstandard
from aistore.sdk.archive_config import ArchiveConfig, ArchiveMode
from aistore.sdk.errors import AISError, ErrObjNotFound
from aistore.sdk.list_object_flag import ListObjectFlag

from tests.cluster.conftest import make_tar

ENTRY_IS_CACHED, ENTRY_IN_ARCH, ENTRY_IS_ARCHIVE = 1 << 6, 1 << 7, 1 << 9

FILES = {
    "s001.jpg": os.urandom(30_000),
    "s001.cls": b"3",
    "s001.seg.png": os.urandom(5000),
    "s002.jpg": os.urandom(2 << 20 | 17),   # larger than one read chunk
    "s002.cls": b"7",
    "meta/info.json": b'{"version": 1}',
    "empty.txt": b"",
}


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


MAKERS: dict[str, Callable[[dict[str, bytes]], bytes]] = {
    ".tar": make_tar,
    ".tgz": lambda files: make_tar(files, "w:gz"),
    ".tar.gz": lambda files: gzip.compress(make_tar(files)),
    ".tar.zst": lambda files: zstandard.ZstdCompressor().compress(make_tar(files)),
    ".zip": make_zip,
}


def untar(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as tf:
        for ti in tf:
            f = tf.extractfile(ti)
            assert f is not None
            out[ti.name] = f.read()
    return out


def members_of(data: bytes, name: str) -> dict[str, bytes]:
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return {n: zf.read(n) for n in zf.namelist()}
    if name.endswith(".tar.zst"):   # tarfile reads zstd from Python 3.14 on
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    return untar(data)


def put(bucket: Any, name: str, data: bytes) -> None:
    bucket.object(name).get_writer().put_content(data)


def obj_url(cluster: Any, bucket: Any, name: str) -> str:
    return f"{cluster.endpoint}/v1/objects/{bucket.name}/{name}"


def error_text(exc: AISError) -> str:
    return str(exc)


# --- one file out of a shard -----------------------------------------------------------------------

@pytest.mark.parametrize("ext", sorted(MAKERS))
def test_archpath_reads_every_file(bucket, ext: str) -> None:  # type: ignore[no-untyped-def]
    shard = f"shards/train-0001{ext}"
    put(bucket, shard, MAKERS[ext](FILES))
    obj = bucket.object(shard)
    for name, data in FILES.items():
        assert obj.get_reader(archive_config=ArchiveConfig(archpath=name)).read_all() == data
    # the shard's own name may lead the path
    assert obj.get_reader(archive_config=ArchiveConfig(archpath=f"{shard}/s001.cls")).read_all() == b"3"
    # a second read uses the index built by the first: same bytes
    assert obj.get_reader(archive_config=ArchiveConfig(archpath="s002.jpg")).read_all() == FILES["s002.jpg"]


def test_deleting_a_shard_removes_its_index(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    put(bucket, "idx.tar", make_tar(FILES))
    assert bucket.object("idx.tar").get_reader(archive_config=ArchiveConfig(archpath="s001.cls")).read_all() == b"3"

    def sidecars() -> list[str]:
        return [os.path.join(d, f) for t in cluster.targets for mp in t.mountpaths
                for d, _, files in os.walk(os.path.join(mp, "@ais", bucket.name, "%ix")) for f in files]
    assert len(sidecars()) == 1    # the tar's member table, built by the first read
    bucket.object("idx.tar").delete()
    assert sidecars() == []


def test_archpath_headers_and_direct_reads(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    put(bucket, "h.tar", make_tar(FILES))
    r = requests.get(obj_url(cluster, bucket, "h.tar"), params={"archpath": "meta/info.json"}, timeout=30)
    assert r.status_code == 200 and r.content == FILES["meta/info.json"]
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Length"] == str(len(FILES["meta/info.json"]))
    assert "Ais-Checksum-Value" not in r.headers and "Ais-Checksum-Type" not in r.headers
    # the SDK's direct=True goes to the owning target
    got = bucket.object("h.tar").get_reader(direct=True, archive_config=ArchiveConfig(archpath="s001.jpg")).read_all()
    assert got == FILES["s001.jpg"]
    # a shard detected by its content, whatever its name
    put(bucket, "no-extension", MAKERS[".tar.zst"](FILES))
    got = bucket.object("no-extension").get_reader(archive_config=ArchiveConfig(archpath="s002.cls")).read_all()
    assert got == b"7"
    # archmime overrides: a zip named like a tar
    put(bucket, "lying.tar", make_zip({"z": b"zip inside"}))
    r = requests.get(obj_url(cluster, bucket, "lying.tar"), params={"archpath": "z", "archmime": ".zip"}, timeout=30)
    assert r.status_code == 200 and r.content == b"zip inside"


@pytest.mark.parametrize("ext", [".tar", ".tgz", ".zip"])
def test_ranges_inside_a_file(cluster, bucket, ext: str) -> None:  # type: ignore[no-untyped-def]
    shard = f"ranged{ext}"
    put(bucket, shard, MAKERS[ext](FILES))
    data = FILES["s002.jpg"]
    obj = bucket.object(shard)
    cfg = ArchiveConfig(archpath="s002.jpg")
    assert obj.get_reader(archive_config=cfg, byte_range="bytes=1000-1999").read_all() == data[1000:2000]
    assert obj.get_reader(archive_config=cfg, byte_range="bytes=-10").read_all() == data[-10:]
    assert obj.get_reader(archive_config=cfg, byte_range=f"bytes={len(data) - 5}-").read_all() == data[-5:]
    url = obj_url(cluster, bucket, shard)
    r = requests.get(url, params={"archpath": "s002.jpg"}, headers={"Range": "bytes=2000000-2050000"}, timeout=30)
    assert r.status_code == 206 and r.content == data[2_000_000:2_050_001]
    assert r.headers["Content-Range"] == f"bytes 2000000-2050000/{len(data)}"
    r = requests.get(url, params={"archpath": "s001.cls"}, headers={"Range": "bytes=5-9"}, timeout=30)
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */1"


# --- many files: regex and modes -------------------------------------------------------------------

@pytest.mark.parametrize("ext", [".tar", ".tar.zst", ".zip"])
@pytest.mark.parametrize("mode,pattern,expected", [
    (ArchiveMode.REGEXP, r"^s00\d\.cls$", ["s001.cls", "s002.cls"]),
    (ArchiveMode.PREFIX, "s001", ["s001.jpg", "s001.cls", "s001.seg.png"]),
    (ArchiveMode.SUFFIX, ".jpg", ["s001.jpg", "s002.jpg"]),
    (ArchiveMode.SUBSTR, "/info", ["meta/info.json"]),
    (ArchiveMode.WDSKEY, "s001", ["s001.jpg", "s001.cls", "s001.seg.png"]),
    (ArchiveMode.WDSKEY, "s002", ["s002.jpg", "s002.cls"]),
])
def test_regex_modes(bucket, ext: str, mode: ArchiveMode, pattern: str,  # type: ignore[no-untyped-def]
                     expected: list[str]) -> None:
    shard = f"rx{ext}"
    put(bucket, shard, MAKERS[ext](FILES))
    out = bucket.object(shard).get_reader(archive_config=ArchiveConfig(regex=pattern, mode=mode)).read_all()
    got = untar(out)
    assert list(got) == expected
    assert all(got[n] == FILES[n] for n in expected)


def test_regex_answers_a_tar(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    put(bucket, "t.tgz", MAKERS[".tgz"](FILES))
    r = requests.get(obj_url(cluster, bucket, "t.tgz"), params={"archregx": ".", "archmode": "regexp"}, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-tar"
    assert untar(r.content) == FILES


# --- errors ----------------------------------------------------------------------------------------

def test_errors(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    put(bucket, "e.tar", make_tar(FILES))
    put(bucket, "plain.bin", os.urandom(1000))
    put(bucket, "broken.tar", make_tar(FILES)[:3000])
    obj = bucket.object("e.tar")
    # a missing file: 404 naming ais://bucket/shard/file (the SDK's object-not-found)
    with pytest.raises(ErrObjNotFound) as e:
        obj.get_reader(archive_config=ArchiveConfig(archpath="nope.jpg")).read_all()
    assert f"ais://{bucket.name}/e.tar/nope.jpg" in error_text(e.value)
    # a missing shard
    with pytest.raises(ErrObjNotFound):
        bucket.object("absent.tar").get_reader(archive_config=ArchiveConfig(archpath="a")).read_all()
    url = obj_url(cluster, bucket, "e.tar")
    # nothing matches: 404
    r = requests.get(url, params={"archregx": "^zzz", "archmode": "prefix"}, timeout=30)
    assert r.status_code == 404
    # a bad mode, a bad regex, both archpath and archregx, a bad archmime: 400
    for params in ({"archregx": "s0", "archmode": "glob"}, {"archregx": "(", "archmode": "regexp"},
                   {"archregx": "s0", "archpath": "s001.cls"}, {"archpath": "s001.cls", "archmime": "rar"}):
        r = requests.get(url, params=params, timeout=30)
        assert r.status_code == 400, (params, r.text)
    assert "archmode" in requests.get(url, params={"archregx": "x", "archmode": "glob"}, timeout=30).text
    # not an archive, or a damaged one: 400 naming the shard
    with pytest.raises(AISError) as e:
        bucket.object("plain.bin").get_reader(archive_config=ArchiveConfig(archpath="a")).read_all()
    assert e.value.status_code == 400 and f"ais://{bucket.name}/plain.bin" in error_text(e.value)
    r = requests.get(obj_url(cluster, bucket, "broken.tar"), params={"archpath": "s001.cls"}, timeout=30)
    assert r.status_code == 400 and "broken.tar" in r.text
    # and the plain object is still a plain object
    assert len(bucket.object("plain.bin").get_reader().read_all()) == 1000


# --- listing shard contents ------------------------------------------------------------------------

def test_list_arch_dir(bucket) -> None:  # type: ignore[no-untyped-def]
    inner = {"b/2.txt": b"22", "a/1.txt": b"1", "c.txt": b"333"}
    put(bucket, "x.tar", make_tar(inner))
    put(bucket, "x.tar.idx", b"sorts between x.tar and x.tar/...")
    put(bucket, "x.zip", make_zip({"z1": b"z"}))
    put(bucket, "y", b"plain")
    put(bucket, "z.tar", b"named like a shard, but is not one")
    want = ["x.tar", "x.tar.idx", "x.tar/a/1.txt", "x.tar/b/2.txt", "x.tar/c.txt", "x.zip", "x.zip/z1", "y", "z.tar"]
    for page_size in (0, 1, 2, 3):
        entries = bucket.list_all_objects(flags=[ListObjectFlag.ARCH_DIR], page_size=page_size)
        assert [e.name for e in entries] == want, page_size
    by_name = {e.name: e for e in bucket.list_all_objects(flags=[ListObjectFlag.ARCH_DIR])}
    assert by_name["x.tar"].f & ENTRY_IS_ARCHIVE and not by_name["x.tar"].f & ENTRY_IN_ARCH
    assert by_name["x.tar/b/2.txt"].f & ENTRY_IN_ARCH and by_name["x.tar/b/2.txt"].size == 2
    assert by_name["x.tar/c.txt"].size == 3
    assert not by_name["z.tar"].f & ENTRY_IS_ARCHIVE and not by_name["y"].f & (ENTRY_IS_ARCHIVE | ENTRY_IN_ARCH)
    # without the flag, only objects
    assert [e.name for e in bucket.list_all_objects()] == ["x.tar", "x.tar.idx", "x.zip", "y", "z.tar"]
    # the SDK's list_archive, and prefixes inside a shard
    assert [e.name for e in bucket.list_archive("x.tar")] == ["x.tar.idx", "x.tar/a/1.txt", "x.tar/b/2.txt",
                                                              "x.tar/c.txt"]
    entries = bucket.list_all_objects(prefix="x.tar/b", flags=[ListObjectFlag.ARCH_DIR], props="name")
    assert [e.name for e in entries] == ["x.tar/b/2.txt"]
    # what AISMultiShardStream does: list each shard, read each file by archpath
    for e in bucket.list_objects_iter(prefix="x.tar/", props="name", flags=[ListObjectFlag.ARCH_DIR]):
        path = e.name.replace("x.tar/", "", 1)
        assert bucket.object("x.tar").get_reader(archive_config=ArchiveConfig(archpath=path)).read_all() == inner[path]


def test_list_many_shards_pages(bucket) -> None:  # type: ignore[no-untyped-def]
    want = []
    for i in range(6):
        files = {f"k{j}.bin": bytes([j]) * j for j in range(5)}
        put(bucket, f"s{i}.tar", make_tar(files))
        want += [f"s{i}.tar"] + [f"s{i}.tar/k{j}.bin" for j in range(5)]
    for page_size in (4, 7):
        assert [e.name for e in bucket.list_all_objects(flags=[ListObjectFlag.ARCH_DIR], page_size=page_size)] == want


# --- appending to a shard --------------------------------------------------------------------------

def append(cluster: Any, bucket: Any, shard: str, name: str, data: bytes, flags: int | None,
           archmime: str = "") -> requests.Response:
    params = {"archpath": name}
    if archmime:
        params["archmime"] = archmime
    headers = {} if flags is None else {"Ais-Pine": str(flags)}
    return requests.put(obj_url(cluster, bucket, shard), params=params, data=data, headers=headers, timeout=60)


@pytest.mark.parametrize("ext", sorted(MAKERS))
def test_append(cluster, bucket, ext: str) -> None:  # type: ignore[no-untyped-def]
    shard = f"ap{ext}"
    put(bucket, shard, MAKERS[ext](FILES))
    obj = bucket.object(shard)
    assert obj.get_reader(archive_config=ArchiveConfig(archpath="s001.cls")).read_all() == b"3"   # index built
    added = {"new/one.bin": os.urandom(123_457), "new/two.txt": b"two"}
    for name, data in added.items():
        r = append(cluster, bucket, shard, name, data, 1)
        assert r.status_code == 200, r.text
        assert r.headers["Ais-Checksum-Type"] == "xxhash"
    whole = obj.get_reader().read_all()
    assert members_of(whole, shard) == {**FILES, **added}   # stock readers see old and new files
    for name, data in {**FILES, **added}.items():
        assert obj.get_reader(archive_config=ArchiveConfig(archpath=name)).read_all() == data
    assert obj.head().size == len(whole)
    names = [e.name for e in bucket.list_all_objects(prefix=shard, flags=[ListObjectFlag.ARCH_DIR])]
    assert f"{shard}/new/one.bin" in names and f"{shard}/s001.jpg" in names


def test_append_flags(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    # 1: the shard must exist
    r = append(cluster, bucket, "missing.tar", "a", b"x", 1)
    assert r.status_code == 404 and f"ais://{bucket.name}/missing.tar" in r.text
    # 2: append, or create
    assert append(cluster, bucket, "made.tar", "a", b"first", 2).status_code == 200
    assert append(cluster, bucket, "made.tar", "b", b"second", 2).status_code == 200
    assert untar(bucket.object("made.tar").get_reader().read_all()) == {"a": b"first", "b": b"second"}
    # none: a new shard of one file (archmime picks the format of a name without an extension)
    assert append(cluster, bucket, "fresh", "only", b"one", None, archmime="zip").status_code == 200
    with zipfile.ZipFile(io.BytesIO(bucket.object("fresh").get_reader().read_all())) as zf:
        assert zf.namelist() == ["only"]
    # bad flags, a bad name, appending to something that is not a shard
    assert append(cluster, bucket, "made.tar", "c", b"x", 7).status_code == 400
    assert append(cluster, bucket, "made.tar", "../escape", b"x", 1).status_code == 400
    put(bucket, "plain.bin", b"not an archive at all" * 50)
    r = append(cluster, bucket, "plain.bin", "c", b"x", 1)
    assert r.status_code == 400 and "plain.bin" in r.text
    assert bucket.object("plain.bin").get_reader().read_all() == b"not an archive at all" * 50


def test_concurrent_appends_lose_nothing(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor
    put(bucket, "c.tar", make_tar({"first": b"1"}))
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: append(cluster, bucket, "c.tar", f"f{i:02d}", b"%d" % i, 1).status_code,
                              range(16)))
    assert codes == [200] * 16
    got = untar(bucket.object("c.tar").get_reader().read_all())
    assert got == {"first": b"1", **{f"f{i:02d}": b"%d" % i for i in range(16)}}


# --- the archive job -------------------------------------------------------------------------------

def _archive(bucket: Any, **kw: Any) -> list[str]:
    return bucket.objects(**{k: v for k, v in kw.items() if k in ("obj_names", "obj_template")}).archive(
        **{k: v for k, v in kw.items() if k not in ("obj_names", "obj_template")})


def _wait(client: Any, job_id: str) -> Any:
    return client.job(job_id=job_id, job_kind="archive").wait(timeout=120, verbose=False)


@pytest.mark.parametrize("ext", [".tar", ".tgz", ".tar.zst", ".zip"])
def test_archive_job(client, bucket, ext: str) -> None:  # type: ignore[no-untyped-def]
    objects = {f"src/obj-{i:03d}": os.urandom(1000 * i + 1) for i in range(24)}   # spread over every target
    objects["src/big"] = os.urandom(3 << 20 | 5)
    for name, data in objects.items():
        put(bucket, name, data)
    job_ids = _archive(bucket, obj_names=sorted(objects, reverse=True), archive_name=f"out/all{ext}")
    assert len(job_ids) == 1
    result = _wait(client, job_ids[0])
    assert result.success, result.error
    shard = bucket.object(f"out/all{ext}")
    whole = shard.get_reader().read_all()
    got = members_of(whole, ext)
    assert list(got) == sorted(objects)   # in name order
    assert got == objects
    for name in ("src/obj-007", "src/big"):
        assert shard.get_reader(archive_config=ArchiveConfig(archpath=name)).read_all() == objects[name]


def test_archive_job_options(client, bucket) -> None:  # type: ignore[no-untyped-def]
    for i in range(10):
        put(bucket, f"d/f{i}.txt", b"%d" % i)
    dst = client.bucket(f"{bucket.name}-dst")
    dst.create(exist_ok=True)
    try:
        # a template with a hole, continue on error, into another bucket, with the source bucket's name
        ids = _archive(bucket, obj_template="d/f{0..11}.txt", archive_name="t.tar", to_bck=dst,
                       include_source_name=True, continue_on_err=True)
        assert _wait(client, ids[0]).success
        got = untar(dst.object("t.tar").get_reader().read_all())
        assert got == {f"{bucket.name}/d/f{i}.txt": b"%d" % i for i in range(10)}
        # without continue-on-error a missing object fails the job, naming it
        ids = _archive(bucket, obj_names=["d/f1.txt", "d/nope.txt"], archive_name="fail.tar")
        result = _wait(client, ids[0])
        assert not result.success and f"ais://{bucket.name}/d/nope.txt" in (result.error or "")
        with pytest.raises(ErrObjNotFound):
            bucket.object("fail.tar").get_reader().read_all()
        # a prefix (a template without ranges), then append to the existing shard
        ids = _archive(bucket, obj_template="d/f1", archive_name="p.tar")
        assert _wait(client, ids[0]).success
        assert list(untar(bucket.object("p.tar").get_reader().read_all())) == ["d/f1.txt"]
        ids = _archive(bucket, obj_names=["d/f2.txt", "d/f3.txt"], archive_name="p.tar", allow_append=True)
        assert _wait(client, ids[0]).success
        assert untar(bucket.object("p.tar").get_reader().read_all()) == {f"d/f{i}.txt": b"%d" % i for i in (1, 2, 3)}
    finally:
        dst.delete(missing_ok=True)


def test_archive_bad_requests(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    url = f"{cluster.endpoint}/v1/buckets/{bucket.name}"
    for value in ({"objnames": ["a"]}, {"objnames": ["a"], "archname": "x.rar"},
                  {"objnames": ["a"], "archname": "x.tar", "mime": "rar"}, {"objnames": "a", "archname": "x.tar"}):
        r = requests.put(url, json={"action": "archive", "value": value}, timeout=30)
        assert r.status_code == 400, (value, r.text)


def test_archive_job_started_on_the_owner(client, cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    """The target side of the archive action, started the way the proxy starts it (intra
    `POST /v1/jobs` to the shard's owner), and waited for through the SDK."""
    objects = {f"o{i}": os.urandom(500 + i) for i in range(12)}
    for name, data in objects.items():
        put(bucket, name, data)
    smap = client.cluster().get_info()
    owner = smap.get_target_for_object(f"{bucket.get_path()}intra.tar")
    job = {"id": "arch" + os.urandom(4).hex(), "kind": "archive",
           "src": {"name": bucket.name, "provider": "ais", "namespace": {"uuid": "", "name": ""}}, "dst": None,
           "msg": {"objnames": sorted(objects), "archname": "intra.tar"}}
    r = requests.post(f"{owner.intra_control_net.direct_url}/v1/jobs", json=job, timeout=30)
    assert r.status_code == 200, r.text
    assert _wait(client, job["id"]).success
    assert untar(bucket.object("intra.tar").get_reader().read_all()) == objects
    # a bad message is refused as the job is accepted
    bad = {**job, "id": "bad" + os.urandom(4).hex(), "msg": {"objnames": ["o1"], "archname": "x.rar"}}
    r = requests.post(f"{owner.intra_control_net.direct_url}/v1/jobs", json=bad, timeout=30)
    assert r.status_code == 400 and "x.rar" in r.text


# --- a shard in a remote bucket --------------------------------------------------------------------

def test_shard_in_s3(moto, remote_cluster) -> None:  # type: ignore[no-untyped-def]
    """A shard not yet in the cluster is fetched once (cold GET), then read from its copy;
    an append is written through to the backend."""
    from aistore import Client
    name = f"shards-{os.urandom(4).hex()}"
    s3 = moto.client()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="train/s.tar", Body=make_tar(FILES))
    bck = Client(remote_cluster.endpoint).bucket(name, provider="aws")
    shard = bck.object("train/s.tar")
    for member in ("s001.cls", "s002.jpg", "meta/info.json"):
        assert shard.get_reader(archive_config=ArchiveConfig(archpath=member)).read_all() == FILES[member]
    assert moto.count("GET", f"/{name}/train/s.tar") == 1
    got = untar(shard.get_reader(archive_config=ArchiveConfig(regex="s002", mode=ArchiveMode.WDSKEY)).read_all())
    assert got == {"s002.jpg": FILES["s002.jpg"], "s002.cls": b"7"}
    names = [e.name for e in bck.list_all_objects(flags=[ListObjectFlag.ARCH_DIR])]
    assert names == ["train/s.tar"] + [f"train/s.tar/{n}" for n in sorted(FILES)]
    r = requests.put(f"{remote_cluster.endpoint}/v1/objects/{name}/train/s.tar",
                     params={"provider": "aws", "archpath": "added.txt"}, data=b"added",
                     headers={"Ais-Pine": "1"}, timeout=60)
    assert r.status_code == 200, r.text
    in_s3 = untar(s3.get_object(Bucket=name, Key="train/s.tar")["Body"].read())
    assert in_s3 == {**FILES, "added.txt": b"added"}
    assert shard.get_reader(archive_config=ArchiveConfig(archpath="added.txt")).read_all() == b"added"
    # a missing shard in the bucket is the backend's 404
    with pytest.raises(ErrObjNotFound):
        bck.object("train/none.tar").get_reader(archive_config=ArchiveConfig(archpath="a")).read_all()
