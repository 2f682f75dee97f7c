"""Batch-get's fast paths against the general code they stand in for: the client's incremental
TAR parser against tarfile, HRW for a whole batch against one name at a time, batched object
paths against `Mountpaths.object_path`, the stat-and-read pass, the exact .tar length, the
client's split of a batch by owner, and the batch loader's grouping of minibatches."""

from __future__ import annotations

import io
import os
import random
import tarfile
from types import SimpleNamespace
from typing import Any

import pytest

from ais import apc, hrw
from ais.client.archive import TarParser, _byte_sum, _header
from ais.client.errors import DecodeError
from ais.client.routing import BATCH_ROUTE_SAMPLE, Router
from ais.cmap import ClusterMap, Node
from ais.hrw import _mix64_lanes, choose_many
from ais.moss import BatchEntry, owners, parse_request
from ais.names import make_bucket
from ais.pytorch.datasets import MAX_REQUEST_SAMPLES, _Grouper
from target.archive.write import ArchiveWriter, tar_length
from target.fs import meta as fsmeta
from target.fs.mountpaths import Mountpaths
from target.moss import _object_paths, _stat_read_many

pytestmark = pytest.mark.timeout(30)


# --- the client's TAR parser ------------------------------------------------------------------

def _tar(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT, extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti in extra:
            t.addfile(ti)
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), 1_700_000_000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _feed_in_pieces(blob: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    parser, out, pos = TarParser(), [], 0
    while pos < len(blob):
        n = rng.choice([1, 7, 511, 512, 513, 4096, 20000, 1 << 20])
        out += parser.feed(blob[pos:pos + n])
        pos += n
    parser.close()
    return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_parser_reads_what_tarfile_writes_in_any_pieces(fmt: int) -> None:
    rng = random.Random(fmt)
    members = [(f"b/s/{i:04d}.bin", rng.randbytes(rng.choice([0, 1, 511, 512, 513, 16384, 70000])))
               for i in range(60)]
    if fmt != tarfile.USTAR_FORMAT:
        members += [("long/" + "x" * 150 + ".bin", b"long name"), ("ünï/cödé.txt", b"utf-8 name")]
    else:
        members += [("p" * 90 + "/" + "n" * 90, b"ustar prefix")]    # name split into prefix + name
    directory = tarfile.TarInfo("a/dir")
    directory.type = tarfile.DIRTYPE
    blob = _tar(members, fmt, [directory])
    for seed in range(5):
        assert _feed_in_pieces(blob, random.Random(seed)) == members


def test_tar_parser_fast_header_equals_tarfile(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = []
    for name, size in [("a", 0), ("b/s/000001.bin", 16384), ("x" * 100, 8 ** 11 - 1), ("d/" + "y" * 60, 5)]:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime = size, 1_700_000_000
        blocks.append((ti.tobuf(tarfile.USTAR_FORMAT), (name, size, tarfile.REGTYPE)))
        assert _header(blocks[-1][0]) == blocks[-1][1] == (ti.name, ti.size, ti.type)
    ours = ArchiveWriter(".tar").begin("b/s/000002.bin", 7, 1_700_000_000.0)
    with monkeypatch.context() as m:   # read without tarfile: what batch-get and tarfile write
        m.setattr(tarfile.TarInfo, "frombuf", None)
        assert [_header(b) for b, _ in blocks] == [want for _, want in blocks]
        assert _header(ours) == ("b/s/000002.bin", 7, tarfile.REGTYPE)
    blk = bytes(random.Random(1).getrandbits(8) for _ in range(256))
    assert _byte_sum(blk) == sum(blk) and _byte_sum(b"\xff" * 256) == 255 * 256


def test_tar_parser_rejects_corruption_and_truncation() -> None:
    blob = bytearray(_tar([("a", b"x" * 1000), ("b", b"y" * 10)]))
    with pytest.raises(DecodeError):
        p = TarParser()
        p.feed(bytes(blob[:1500]))
        p.close()
    blob[600 - 512 + 0] ^= 0xFF   # inside the first header's name: checksum mismatch
    with pytest.raises(DecodeError, match="bad TAR header"):
        TarParser().feed(bytes(blob))
    # a stream that just stops between members, without the end marker, is a clean end
    whole = _tar([("a", b"x" * 1000)])
    p = TarParser()
    assert p.feed(whole[:512 + 1024]) == [("a", b"x" * 1000)]
    p.close()
    # nothing after the end-of-archive marker is read
    p = TarParser()
    assert p.feed(whole + b"junk" * 200) == [("a", b"x" * 1000)] and p.done


# --- HRW for a whole batch --------------------------------------------------------------------

def test_mix64_lanes_is_mix64() -> None:
    rng = random.Random(3)
    values = [0, 1, 2 ** 64 - 1, 2 ** 63, hrw._GOLDEN] + [rng.getrandbits(64) for _ in range(3000)]
    assert list(_mix64_lanes(values)) == [hrw.mix64(v) for v in values]


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_choose_many_picks_what_choose_picks(k: int) -> None:
    names = [f"ais/@#/b/s/{i:06d}.bin" for i in range(5000)]   # more than one lane block
    candidates = [(hrw.digest(f"node-{i}"), f"node-{i}") for i in range(k)]
    assert choose_many(names, candidates) == [hrw.choose(u, candidates) for u in names]
    tied = [(5, "first"), (5, "second")]   # equal digests: equal scores, the first wins as in hrw.choose
    assert set(choose_many(names[:50], tied)) == {"first"} == {hrw.choose(u, tied) for u in names[:50]}


def _smap(n: int, maintenance: str = "") -> ClusterMap:
    p = Node("P1", "proxy", "http://p:1", "http://p:2")
    flags = {maintenance: apc.FLAG_MAINTENANCE}
    targets = {f"T{i}": Node(f"T{i}", "target", f"http://t{i}:1", f"http://t{i}:2", flags=flags.get(f"T{i}", 0))
               for i in range(n)}
    return ClusterMap(version=3, uuid="u", primary_id="P1", proxies={"P1": p}, targets=targets)


def test_owners_are_the_cluster_maps() -> None:
    names = [f"ais/@#/b/{i}" for i in range(2000)]
    for m in (_smap(3), _smap(5, maintenance="T2")):
        assert owners(m, names) == [m.owner(u) for u in names]
    assert owners(_smap(1, maintenance="T0"), names[:3]) == [None] * 3


def test_router_splits_a_batch_by_owner_and_routes_big_batches_by_a_sample() -> None:
    m = _smap(3)
    r = Router("http://p:1")
    bck = make_bucket("b")
    items = [(bck, f"s/{i}") for i in range(1000)]
    assert r.split_batch(items) == [list(range(1000))]   # no map yet: one request
    r.install(m)
    groups = r.split_batch(items)
    assert sorted(i for g in groups for i in g) == list(range(1000)) and len(groups) == 3
    for g in groups:
        assert g == sorted(g) and len({m.owner(bck.object_uname(items[i][1])) for i in g}) == 1
    # a group's request goes to its owner; a big batch to the owner of most of a sample
    for g in groups:
        assert r.route_batch([items[i] for i in g]).target_id == m.owner(bck.object_uname(items[g[0]][1])).id
    big = max(groups, key=len)
    mostly = [items[i] for i in big] * 3 + items[:len(big)]
    assert len(mostly) > BATCH_ROUTE_SAMPLE and r.route_batch(mostly).target_id == r.route_batch(
        [items[i] for i in big]).target_id
    assert Router("http://p:1", direct=False).split_batch(items) == [list(range(1000))]


# --- the target: object paths, stat-and-read, archive length ----------------------------------

def test_batched_object_paths_equal_object_path(tmp_path: Any) -> None:
    mps = Mountpaths([str(tmp_path / f"mp{i}") for i in range(3)], workers_per_mountpath=1)
    ctx = SimpleNamespace(mountpaths=mps)
    entries = [BatchEntry(make_bucket(b, p), f"d{i % 7}/o{i}") for i in range(500)
               for b, p in (("b1", "ais"), ("b2", "aws"))]
    assert _object_paths(ctx, entries) == [mps.object_path(e.bck, e.obj) for e in entries]  # type: ignore[arg-type]
    with pytest.raises(Exception, match="segment"):
        _object_paths(ctx, [BatchEntry(make_bucket("b"), "a/../../x")])  # type: ignore[arg-type]


def test_stat_read_many_reads_small_objects_within_budget(tmp_path: Any) -> None:
    paths = []
    for i, size in enumerate([10, 300, 300, 0]):
        p = str(tmp_path / f"o{i}")
        with open(p, "wb") as f:
            f.write(bytes([i]) * size)
        if i == 0:
            os.setxattr(p, fsmeta.XATTR, fsmeta.ObjectMeta(size=10, bid=42).pack())
        paths.append(p)
    os.mkdir(tmp_path / "dir")
    items = [(p, True) for p in paths] + [(str(tmp_path / "missing"), True), (str(tmp_path / "dir"), True),
                                          (paths[1], False)]
    got = _stat_read_many(items, budget=400)
    assert [g[0] if g else None for g in got] == [10, 300, 300, 0, None, None, 300]
    assert got[0] is not None and got[0][2] == 42 and got[1] is not None and got[1][2] == 0   # bucket ids
    # 10 + 300 bytes read; the second 300 no longer fits the budget; unwanted content is not read
    assert [g[3] if g else None for g in got] == [b"\0" * 10, b"\1" * 300, None, b"", None, None, None]


@pytest.mark.parametrize("names", [["b/s/1.bin", "b/s/2.bin"], ["l" * 150, "ünï", "__404__/b/x"]])
def test_tar_length_is_what_the_writer_writes(names: list[str]) -> None:
    rng = random.Random(len(names[0]))
    members = [(n, rng.choice([0, 1, 512, 1000]), rng.choice([0.0, 1_700_000_000.5])) for n in names]
    w = ArchiveWriter(".tar")
    out = b"".join(w.begin(n, s, m) + w.data(b"z" * s) + w.end() for n, s, m in members) + w.finish()
    assert tar_length(members) == len(out)


def test_request_parsing_fast_path_matches_case_insensitive_keys() -> None:
    plain = parse_request({"in": [{"objname": "o", "bucket": "b", "provider": "ais", "start": 2, "length": 3,
                                   "archpath": "/a/f", "opaque": "eA=="}]})
    mixed = parse_request({"in": [{"ObjName": "o", "Bucket": "b", "provider": "ais", "Start": 2, "LENGTH": 3,
                                   "archPath": "/a/f", "Opaque": "eA=="}]})
    assert plain == mixed and plain.entries[0].archpath == "a/f" and plain.entries[0].start == 2


# --- the batch loader's grouping --------------------------------------------------------------

def test_grouper_sends_one_minibatch_until_it_knows_sizes_then_about_request_bytes() -> None:
    batches = [[f"s{b}-{i}" for i in range(10)] for b in range(12)] + [["last"]]
    g = _Grouper(request_bytes=3000)
    it = g.groups(batches)
    assert next(it) == batches[:1]
    g.learn([b"x" * 100] * 10)                 # 100 bytes a sample: 30 samples a request
    assert next(it) == batches[1:4]
    g.learn([b"x" * 1000] * 10)                # now (100 * 10 + 1000 * 10) / 20 = 550: 5 samples, one minibatch
    assert next(it) == batches[4:5]
    assert [b for grp in it for b in grp] == batches[5:]
    off = _Grouper(request_bytes=0)
    off.learn([b"x"] * 10)
    assert list(off.groups(batches)) == [[b] for b in batches]
    huge = _Grouper(request_bytes=1 << 40)
    huge.learn([b"x"])
    assert sum(len(b) for b in next(huge.groups([["n"] * 1000] * 10))) <= MAX_REQUEST_SAMPLES
