"""target/archive: format detection, member tables and reads of every format, the persistent
tar index, appends and rewrites, member matching, and damaged inputs."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from typing import Callable

import pytest
import zstandard

from ais.errors import BadRequest
from target.archive import formats, index
from target.archive.append import append_tar, rewrite
from target.archive.match import matcher, wds_keys
from target.archive.read import ArchiveError, Index, ShardReader, build

FILES = {
    "a.txt": b"hello",
    "dir/b.bin": os.urandom(70_000),
    "dir/sub/c.jpg": os.urandom(1 << 20 | 123),   # more than one read chunk
    "empty": b"",
    "x" * 150 + "/long-name.cls": b"long names need PAX or GNU headers",
}


def tar_bytes(files: dict[str, bytes], fmt: int = tarfile.PAX_FORMAT, dirs: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        if dirs:
            d = tarfile.TarInfo("dir")
            d.type = tarfile.DIRTYPE
            tf.addfile(d)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes], compression: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        zf.writestr("dir/", b"")
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


MAKERS: dict[str, Callable[[dict[str, bytes]], bytes]] = {
    "shard.tar": tar_bytes,
    "shard.gnu.tar": lambda files: tar_bytes(files, tarfile.GNU_FORMAT),
    "shard.tgz": lambda files: gzip.compress(tar_bytes(files)),
    "shard.tar.gz": lambda files: gzip.compress(tar_bytes(files)),
    "shard.tar.zst": lambda files: zstandard.ZstdCompressor().compress(tar_bytes(files)),
    "shard.zip": lambda files: zip_bytes(files, zipfile.ZIP_DEFLATED),
    "stored.zip": lambda files: zip_bytes(files, zipfile.ZIP_STORED),
}


def write(tmp_path: os.PathLike[str], name: str, data: bytes) -> str:
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def open_reader(path: str, fmt: str = "") -> ShardReader:
    f = open(path, "rb")  # noqa: SIM115 - the reader owns it
    fmt = fmt or formats.detect(path, os.pread(f.fileno(), formats.MAGIC_BYTES, 0))
    return ShardReader(f, build(f, fmt, path), path)


# --- formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,fmt", [("a.tar", ".tar"), ("d/a.tgz", ".tgz"), ("a.TAR.GZ", ".tgz"),
                                      ("a.tar.zst", ".tar.zst"), ("a.zip", ".zip"), ("a.gz", ""), ("tar", ""),
                                      ("a.tar/b", ""), (".tar", "")])
def test_format_by_name(name: str, fmt: str) -> None:
    assert formats.by_name(name) == fmt


@pytest.mark.parametrize("maker,fmt", [("shard.tar", ".tar"), ("shard.gnu.tar", ".tar"), ("shard.tgz", ".tgz"),
                                       ("shard.tar.zst", ".tar.zst"), ("shard.zip", ".zip")])
def test_format_by_magic(maker: str, fmt: str) -> None:
    data = MAKERS[maker]({"a": b"1"})
    assert formats.detect("no-extension", data[:formats.MAGIC_BYTES]) == fmt
    assert formats.detect("no-extension", b"just some text" * 40) == ""
    assert formats.by_magic(zip_bytes({}, zipfile.ZIP_STORED)) == ".zip"   # empty zip: end record only


def test_archmime_overrides_name_and_magic() -> None:
    tar = tar_bytes({"a": b"1"})
    assert formats.detect("x.zip", tar[:formats.MAGIC_BYTES], "tar") == ".tar"
    assert formats.detect("x", b"", "application/zip") == ".zip"
    assert formats.detect("x", b"", ".tar.gz") == ".tgz"
    with pytest.raises(BadRequest, match="archmime"):
        formats.detect("x.tar", tar, "rar")


# --- reading every format --------------------------------------------------------------------

@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_every_member_reads_back(tmp_path: os.PathLike[str], maker: str) -> None:
    path = write(tmp_path, maker, MAKERS[maker](FILES))
    reader = open_reader(path)
    try:
        assert [m.name for m in reader.index.members] == list(FILES)   # archive order, no directories
        for m in reader.index.members:
            assert m.size == len(FILES[m.name])
            assert b"".join(reader.iter(m, chunk=65_536)) == FILES[m.name]
        # ranges inside members, out of order (streams go back to the start when they must)
        c = reader.index.find("dir/sub/c.jpg")
        b = reader.index.find("dir/b.bin")
        assert c is not None and b is not None
        assert reader.read(c, 1_000_000, 100) == FILES["dir/sub/c.jpg"][1_000_000:1_000_100]
        assert reader.read(b, 5, 10) == FILES["dir/b.bin"][5:15]
        assert reader.read(c, c.size - 3, 100) == FILES["dir/sub/c.jpg"][-3:]   # clipped at the member's end
        assert reader.read(c, c.size, 10) == b""
        assert reader.index.find("missing") is None
    finally:
        reader.close()


@pytest.mark.parametrize("maker", ["shard.tar", "shard.gnu.tar", "stored.zip"])
def test_raw_offsets_point_at_the_bytes(tmp_path: os.PathLike[str], maker: str) -> None:
    data = MAKERS[maker](FILES)
    reader = open_reader(write(tmp_path, maker, data))
    try:
        for m in reader.index.members:
            raw = reader.raw_offset(m)
            assert raw is not None
            assert data[raw:raw + m.size] == FILES[m.name]
    finally:
        reader.close()


def test_tar_index_end_and_duplicates(tmp_path: os.PathLike[str]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("a", b"old"), ("b", b"bb"), ("a", b"new!")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        end = tf.offset
    reader = open_reader(write(tmp_path, "dup.tar", buf.getvalue()))
    try:
        assert reader.index.end == end
        assert [m.name for m in reader.index.members] == ["b", "a"]   # the later "a" wins, as extraction does
        a = reader.index.find("a")
        assert a is not None and reader.read(a, 0, 10) == b"new!"
    finally:
        reader.close()


def test_compressed_formats_are_not_raw(tmp_path: os.PathLike[str]) -> None:
    for maker in ("shard.tgz", "shard.tar.zst", "shard.zip"):
        reader = open_reader(write(tmp_path, maker, MAKERS[maker]({"a": b"x" * 1000})))
        try:
            assert all(reader.raw_offset(m) is None for m in reader.index.members)
        finally:
            reader.close()


# --- the persistent index --------------------------------------------------------------------

def test_index_sidecar_is_reused_and_invalidated(tmp_path: os.PathLike[str]) -> None:
    bucket_dir = os.path.join(tmp_path, "@ais", "b", "%ob")
    os.makedirs(bucket_dir)
    path = write(bucket_dir, "s.tar", tar_bytes({"a": b"1", "b": b"22"}))
    sidecar = index.sidecar_path(bucket_dir, "s.tar")
    assert sidecar.startswith(os.path.join(tmp_path, "@ais", "b", "%ix") + "/")
    with open(path, "rb") as f:
        first = index.get(f, ".tar", "cksum1", bucket_dir, "s.tar", "ais://b/s.tar")
    assert os.path.isfile(sidecar)
    key = index.key_of(os.stat(path), "cksum1")
    index._cache.clear()   # read it back from disk, not from memory
    loaded = index.load(sidecar, "s.tar", key)
    assert loaded is not None and loaded.members == first.members and loaded.end == first.end
    # another object's name, or another version of this one, does not match
    assert index.load(sidecar, "other.tar", key) is None
    assert index.load(sidecar, "s.tar", (key[0], key[1], "cksum2")) is None
    # the shard changes: the stale sidecar is ignored and rebuilt
    write(bucket_dir, "s.tar", tar_bytes({"a": b"1", "b": b"22", "c": b"333"}))
    with open(path, "rb") as f:
        second = index.get(f, ".tar", "cksum2", bucket_dir, "s.tar", "ais://b/s.tar")
    assert [m.name for m in second.members] == ["a", "b", "c"]
    index._cache.clear()
    reloaded = index.load(sidecar, "s.tar", index.key_of(os.stat(path), "cksum2"))
    assert reloaded is not None and [m.name for m in reloaded.members] == ["a", "b", "c"]
    index.drop(bucket_dir, "s.tar")
    assert not os.path.exists(sidecar)


def test_damaged_sidecar_is_rebuilt(tmp_path: os.PathLike[str]) -> None:
    bucket_dir = os.path.join(tmp_path, "%ob")
    os.makedirs(bucket_dir)
    path = write(bucket_dir, "s.tar", tar_bytes({"a": b"1"}))
    sidecar = index.sidecar_path(bucket_dir, "s.tar")
    os.makedirs(os.path.dirname(sidecar))
    write(os.path.dirname(sidecar), os.path.basename(sidecar), b"\xc1 not msgpack")
    index._cache.clear()
    with open(path, "rb") as f:
        idx = index.get(f, ".tar", "", bucket_dir, "s.tar", "s.tar")
    assert [m.name for m in idx.members] == ["a"]


# --- append and rewrite ----------------------------------------------------------------------

def test_append_to_tar_keeps_bytes_and_index(tmp_path: os.PathLike[str]) -> None:
    original = tar_bytes(FILES)
    path = write(tmp_path, "s.tar", original)
    body = write(tmp_path, "body", b"appended " * 1000)
    reader = open_reader(path)
    work = os.path.join(tmp_path, "work")
    try:
        done = append_tar(reader, work, "new/one.txt", body, 9000, fsync=True)
        end = reader.index.end
    finally:
        reader.close()
    with open(work, "rb") as f:
        data = f.read()
    assert data[:end] == original[:end]   # a true append: the old members' bytes as they were
    assert done.size == len(data)
    import xxhash
    assert done.xxhash == xxhash.xxh64(data).hexdigest()
    with tarfile.open(work) as tf:   # stock tarfile reads it, old and new members alike
        assert tf.getnames()[-1] == "new/one.txt"
        got = tf.extractfile("new/one.txt")
        assert got is not None and got.read() == b"appended " * 1000
        first = tf.extractfile("dir/b.bin")
        assert first is not None and first.read() == FILES["dir/b.bin"]
    # the index computed by the append equals a fresh scan
    assert done.index is not None
    rescanned = open_reader(work)
    try:
        assert rescanned.index.members == done.index.members
        assert rescanned.index.end == done.index.end
        m = rescanned.index.find("new/one.txt")
        assert m is not None and data[m.offset:m.offset + m.size] == b"appended " * 1000
    finally:
        rescanned.close()


@pytest.mark.parametrize("maker", ["shard.tgz", "shard.tar.zst", "shard.zip"])
def test_rewrite_other_formats(tmp_path: os.PathLike[str], maker: str) -> None:
    files = {"a": b"1" * 10, "b": b"2" * 20000}
    path = write(tmp_path, maker, MAKERS[maker](files))
    body = write(tmp_path, "body", b"replaced")
    reader = open_reader(path)
    work = os.path.join(tmp_path, "work" + maker)
    try:
        rewrite(reader, reader.index.fmt, work, "a", body, 8, fsync=False)
        fmt = reader.index.fmt
    finally:
        reader.close()
    out = open_reader(work, fmt)
    try:
        assert out.index.fmt == fmt
        assert [m.name for m in out.index.members] == ["b", "a"]   # a same-name member is replaced
        assert b"".join(out.iter(out.index.members[0])) == files["b"]
        assert b"".join(out.iter(out.index.members[1])) == b"replaced"
    finally:
        out.close()


def test_new_shard_from_one_file(tmp_path: os.PathLike[str]) -> None:
    body = write(tmp_path, "body", b"only")
    work = os.path.join(tmp_path, "new.zip")
    rewrite(None, ".zip", work, "f.txt", body, 4, fsync=False)
    with zipfile.ZipFile(work) as zf:
        assert zf.read("f.txt") == b"only"


# --- matching ----------------------------------------------------------------------------------

NAMES = ["a/sample1.jpg", "a/sample1.cls", "a/sample1.seg.png", "a/sample10.jpg", "b/x.txt", "README"]


@pytest.mark.parametrize("mode,pattern,expected", [
    ("regexp", r"sample1\.", ["a/sample1.jpg", "a/sample1.cls", "a/sample1.seg.png"]),
    ("regexp", r"^b/", ["b/x.txt"]),
    ("", r"txt$", ["b/x.txt"]),   # the default mode is regexp
    ("prefix", "a/sample1", ["a/sample1.jpg", "a/sample1.cls", "a/sample1.seg.png", "a/sample10.jpg"]),
    ("suffix", ".jpg", ["a/sample1.jpg", "a/sample10.jpg"]),
    ("substr", "mple1.", ["a/sample1.jpg", "a/sample1.cls", "a/sample1.seg.png"]),
    ("wdskey", "a/sample1", ["a/sample1.jpg", "a/sample1.cls", "a/sample1.seg.png"]),
    ("wdskey", "a/sample1.seg", ["a/sample1.seg.png"]),
    ("wdskey", "README", ["README"]),
    ("WDSKEY", "sample1", []),   # the key keeps its directory
])
def test_match_modes(mode: str, pattern: str, expected: list[str]) -> None:
    match = matcher(pattern, mode)
    assert [n for n in NAMES if match(n)] == expected


def test_wds_keys() -> None:
    assert wds_keys("d/s.seg.png") == ("d/s.seg", "d/s")
    assert wds_keys("/s.jpg") == ("s", "s")
    assert wds_keys("d.x/noext") == ("d.x/noext", "d.x/noext")
    assert wds_keys(".hidden") == (".hidden", ".hidden")


def test_bad_mode_and_regex() -> None:
    with pytest.raises(BadRequest, match="archmode"):
        matcher("x", "glob")
    with pytest.raises(BadRequest, match="archregx"):
        matcher("(unclosed", "regexp")


# --- damaged inputs ----------------------------------------------------------------------------

def _build(tmp_path: os.PathLike[str], name: str, data: bytes, fmt: str) -> Index:
    with open(write(tmp_path, name, data), "rb") as f:
        return build(f, fmt, f"ais://b/{name}")


@pytest.mark.parametrize("cut", [100, 700, 3000, 71_000])
def test_cut_off_tar(tmp_path: os.PathLike[str], cut: int) -> None:
    with pytest.raises(ArchiveError, match=r"ais://b/t\.tar is not a valid \.tar"):
        _build(tmp_path, "t.tar", tar_bytes(FILES)[:cut], ".tar")


def test_garbage_is_not_an_archive(tmp_path: os.PathLike[str]) -> None:
    junk = os.urandom(5000)
    for fmt in (".tar", ".tgz", ".tar.zst", ".zip"):
        with pytest.raises(ArchiveError, match=f"not a valid {fmt}"):
            _build(tmp_path, "junk" + fmt, junk, fmt)


def test_garbage_after_the_members(tmp_path: os.PathLike[str]) -> None:
    tar = tar_bytes({"a": b"1"})
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        tf.getmembers()
        end = tf.offset
    damaged = tar[:end] + b"\x01" * 512 + tar[end + 512:]
    with pytest.raises(ArchiveError, match="damaged or cut off"):
        _build(tmp_path, "g.tar", damaged, ".tar")


@pytest.mark.parametrize("fmt,compress", [(".tgz", gzip.compress),
                                           (".tar.zst", lambda b: zstandard.ZstdCompressor().compress(b))])
def test_cut_off_compressed(tmp_path: os.PathLike[str], fmt: str, compress: Callable[[bytes], bytes]) -> None:
    whole = compress(tar_bytes(FILES))
    for cut in (len(whole) // 3, len(whole) - 8):
        with pytest.raises(ArchiveError):
            _build(tmp_path, "c" + fmt, whole[:cut], fmt)
    # compressed fine, but the tar inside is cut off
    with pytest.raises(ArchiveError):
        _build(tmp_path, "c2" + fmt, compress(tar_bytes(FILES)[:3000]), fmt)


def test_zip_with_bad_crc(tmp_path: os.PathLike[str]) -> None:
    data = bytearray(zip_bytes({"a.txt": os.urandom(1000)}, zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        zi = zf.getinfo("a.txt")
        start = zi.header_offset + 30 + len(zi.filename.encode()) + len(zi.extra)
    data[start + 10] ^= 0xFF   # one byte of the stored data: the CRC no longer matches
    reader = open_reader(write(tmp_path, "bad.zip", bytes(data)))
    try:
        m = reader.index.find("a.txt")
        assert m is not None and reader.raw_offset(m) == start   # raw reads (sendfile) do not check CRCs
    finally:
        reader.close()
    data = bytearray(zip_bytes({"a.txt": b"A" * 1000}, zipfile.ZIP_DEFLATED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        zi = zf.getinfo("a.txt")
        start = zi.header_offset + 30 + len(zi.filename.encode()) + len(zi.extra)
    data[start + 2] ^= 0xFF   # the deflated stream: decompression or the CRC check fails
    data[start + 3] ^= 0xFF
    reader = open_reader(write(tmp_path, "bad2.zip", bytes(data)))
    try:
        m = reader.index.find("a.txt")
        assert m is not None
        with pytest.raises(ArchiveError, match="cannot read 'a.txt'"):
            b"".join(reader.iter(m))
    finally:
        reader.close()


def test_cut_off_member_of_stream(tmp_path: os.PathLike[str]) -> None:
    """An index from a good shard, data from a shorter one: a read says the member is cut off."""
    good = tar_bytes(FILES)
    path = write(tmp_path, "s.tar", good)
    reader = open_reader(path)
    idx = reader.index
    reader.close()
    write(tmp_path, "s.tar", good[:4000])
    f = open(path, "rb")  # noqa: SIM115 - the reader owns it
    short = ShardReader(f, idx, "ais://b/s.tar")
    try:
        m = idx.find("dir/b.bin")
        assert m is not None
        with pytest.raises(ArchiveError, match="cut off"):
            short.read(m, 0, m.size)
    finally:
        short.close()


@pytest.mark.parametrize("name", ["a", "bck/s/000123.jpg", "x" * 100, "x" * 101, "dir with space/é.bin", "a\tb"])
@pytest.mark.parametrize("size,mtime", [(0, 0), (16384, 1_700_000_000), (8**11 - 1, 8**11 - 1), (8**11, 5)])
def test_ustar_header_is_tarfiles_own(name: str, size: int, mtime: int) -> None:
    """The direct header builder writes the very bytes tarfile writes, or declines (None) where
    tarfile needs a PAX extended header; the writer then uses tarfile."""
    from target.archive.write import ArchiveWriter, ustar_header
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = size, mtime, 0o644
    expected = ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    got = ustar_header(name, size, mtime)
    simple = len(name) <= 100 and name.isascii() and size < 8**11 and mtime < 8**11
    assert got == (expected if simple else None)
    if mtime:   # 0 means "now" to the writer
        assert ArchiveWriter(".tar").begin(name, size, mtime) == expected
