"""The blocking halves of a PUT on a target: the one-hop store of a small body (`fsmeta.store`,
`objects._store_small`), the streamed work file (`objects._WorkFile`), publishing and versions."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import xxhash

from ais.errors import BadRequest, Conflict, InsufficientStorage
from target import objects
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def mp(tmp_path: Path) -> Path:
    (tmp_path / "%wk").mkdir()
    (tmp_path / "bucket").mkdir()
    try:
        os.setxattr(tmp_path, "user.test", b"1")
    except OSError:
        pytest.skip("the temp filesystem has no user xattrs")
    return tmp_path


def _stored(path: Path) -> ObjectMeta:
    return ObjectMeta.unpack(os.getxattr(path, fsmeta.XATTR), os.stat(path))


def test_store_writes_data_metadata_and_versions(mp: Path) -> None:
    final = mp / "bucket" / "a" / "b" / "obj"          # its directories do not exist yet
    for version, data in enumerate([b"first" * 1000, b"second"], start=1):
        work = mp / "%wk" / f"w{version}"
        meta = ObjectMeta(size=len(data), cksum_value=xxhash.xxh64(data).hexdigest(), md5="m", custom={"k": "v"})
        got = fsmeta.store(str(work), str(final), [data[:7], data[7:]], meta, fsync=True, versioning=True)
        assert final.read_bytes() == data
        assert got.version == str(version) and got.mtime_ns == os.stat(final).st_mtime_ns
        on_disk = _stored(final)
        assert on_disk.version == str(version) and on_disk.cksum_value == meta.cksum_value
        assert on_disk.md5 == "m" and on_disk.custom == {"k": "v"} and on_disk.size == len(data)
        assert not work.exists()
    assert os.listdir(mp / "%wk") == []


def test_store_without_versioning_keeps_the_given_version(mp: Path) -> None:
    final = mp / "bucket" / "obj"
    got = fsmeta.store(str(mp / "%wk" / "w"), str(final), [b"x"], ObjectMeta(size=1, version="7"), False, False)
    assert got.version == "7" and _stored(final).version == "7"


def test_store_refuses_a_name_under_an_object_or_over_a_directory(mp: Path) -> None:
    (mp / "bucket" / "file").write_bytes(b"an object")
    (mp / "bucket" / "dir").mkdir()
    for name in ("file/below", "dir"):
        with pytest.raises(Conflict):
            fsmeta.store(str(mp / "%wk" / "w"), str(mp / "bucket" / name), [b"x"], ObjectMeta(size=1), False, True)
        assert os.listdir(mp / "%wk") == [], "a failed store left its work file"
    assert (mp / "bucket" / "file").read_bytes() == b"an object"


def test_next_version(mp: Path) -> None:
    path = mp / "bucket" / "o"
    assert fsmeta.next_version(str(path)) == "1"                  # no object
    path.write_bytes(b"")
    assert fsmeta.next_version(str(path)) == "1"                  # no metadata
    os.setxattr(path, fsmeta.XATTR, ObjectMeta(size=0, version="41").pack())
    assert fsmeta.next_version(str(path)) == "42"
    os.setxattr(path, fsmeta.XATTR, b"\xc1garbage")
    assert fsmeta.next_version(str(path)) == "1"                  # unreadable metadata


def test_store_small_validates_before_touching_the_disk(mp: Path) -> None:
    data = os.urandom(5000)
    md5 = hashlib.md5()

    def refuse(rec: objects.Received) -> ObjectMeta:
        assert rec.size == len(data) and rec.hasher.hexdigest() == xxhash.xxh64(data).hexdigest()
        assert md5.hexdigest() == hashlib.md5(data).hexdigest()   # the extra hashers saw the body too
        raise BadRequest("checksum mismatch")

    final = mp / "bucket" / "obj"
    with pytest.raises(BadRequest):
        objects._store_small(data, objects.Received(extra=[md5]), refuse, str(mp / "%wk" / "w"), str(final), True, True)
    assert not final.exists() and os.listdir(mp / "%wk") == []

    def accept(rec: objects.Received) -> ObjectMeta:
        return ObjectMeta(size=rec.size, cksum_value=rec.hasher.hexdigest())

    got = objects._store_small(data, objects.Received(), accept, str(mp / "%wk" / "w"), str(final), True, True)
    assert final.read_bytes() == data and got.cksum_value == xxhash.xxh64(data).hexdigest() and got.version == "1"


def test_received_decodes_then_hashes_the_stored_bytes() -> None:
    rec = objects.Received(decode=lambda b: b.replace(b"-", b""))
    assert rec.digest([b"a-b", b"--", b"c"]) == [b"ab", b"c"]
    assert (rec.raw_size, rec.size) == (6, 3) and rec.hasher.hexdigest() == xxhash.xxh64(b"abc").hexdigest()


def test_work_file_batches_finish_and_discard(mp: Path) -> None:
    data = [os.urandom(1000) for _ in range(3)]
    work = mp / "%wk" / "streamed"
    wf = objects._WorkFile(str(work))
    rec = objects.Received()
    wf.open(False, 3000)
    for i, chunk in enumerate(data):
        wf.write([chunk], rec, i == 2, True)
    assert wf.closed and wf.fd is None
    assert work.read_bytes() == b"".join(data) and rec.hasher.hexdigest() == xxhash.xxh64(b"".join(data)).hexdigest()
    with pytest.raises(RuntimeError):
        wf.write([b"late"], rec, False, True)                     # closed: no write after the end
    assert work.read_bytes() == b"".join(data)

    empty = objects._WorkFile(str(mp / "%wk" / "empty"))
    empty.open(False, 0)
    empty.finish(True)                                            # an empty body still makes a file
    assert (mp / "%wk" / "empty").read_bytes() == b"" and empty.closed

    broken = objects._WorkFile(str(mp / "%wk" / "broken"))
    broken.open(False, 0)
    broken.write([b"partial"], objects.Received(), False, False)
    fd = broken.fd
    assert fd is not None
    broken.discard()
    assert broken.fd is None and not (mp / "%wk" / "broken").exists()
    with pytest.raises(OSError):
        os.fstat(fd)                                              # its descriptor was closed


def test_work_file_refuses_to_open_without_room(mp: Path) -> None:
    st = os.statvfs(mp)
    wf = objects._WorkFile(str(mp / "%wk" / "w"))
    with pytest.raises(InsufficientStorage):
        wf.open(False, st.f_blocks * st.f_frsize * 2)
    assert os.listdir(mp / "%wk") == []


def test_work_file_closes_its_descriptor_when_decoding_fails(mp: Path) -> None:
    def bad(_: bytes) -> bytes:
        raise BadRequest("bad chunk signature")

    wf = objects._WorkFile(str(mp / "%wk" / "w"))
    wf.open(False, 0)
    with pytest.raises(BadRequest):
        wf.write([b"x"], objects.Received(decode=bad), False, False)
    assert wf.fd is None and wf.closed
    wf.discard()
    assert os.listdir(mp / "%wk") == []


def test_check_space_refuses_what_cannot_fit(mp: Path) -> None:
    st = os.statvfs(mp)
    objects._check_space(str(mp / "%wk" / "w"), 1)
    with pytest.raises(InsufficientStorage):
        objects._check_space(str(mp / "%wk" / "w"), st.f_blocks * st.f_frsize * 2)
