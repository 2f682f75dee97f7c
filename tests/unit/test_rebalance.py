"""Rebalance pieces that need no cluster: when a map change rebalances, the metadata header, and
how a moved object is published next to a copy that may already be there."""

from __future__ import annotations

import os

import pytest

from ais import apc
from ais.cmap import ClusterMap, Node, RebalanceMD, placement_changed
from ais.errors import BadMessage
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.rebalance import _commit_moved, meta_from_wire, meta_to_wire


def _map(*targets: Node) -> ClusterMap:
    p = Node("p1", "proxy", "http://h:1", "http://h:2")
    return ClusterMap(version=1, uuid="u", primary_id="p1", proxies={"p1": p}, targets={t.id: t for t in targets})


def _t(tid: str, flags: int = 0) -> Node:
    return Node(tid, "target", f"http://{tid}:1", f"http://{tid}:2", flags=flags)


def test_placement_changes_on_join_leave_and_maintenance_only() -> None:
    three = _map(_t("a"), _t("b"), _t("c"))
    assert placement_changed(three, _map(_t("a"), _t("b"), _t("c"), _t("d")))
    assert placement_changed(three, _map(_t("a"), _t("b"), _t("c", apc.FLAG_MAINTENANCE)))
    assert placement_changed(three, _map(_t("a"), _t("b"), _t("c", apc.FLAG_DECOMMISSION)))
    assert not placement_changed(three, _map(_t("a"), _t("b"), _t("c")))
    moved_url = _map(_t("a"), _t("b"), Node("c", "target", "http://other:1", "http://other:2"))
    assert not placement_changed(three, moved_url)   # a restart on a new address moves nothing


def test_rmd_versions_and_wire() -> None:
    rmd = RebalanceMD(version=0).next(7).next(9)
    assert (rmd.version, rmd.smap_version, rmd.job_id) == (2, 9, "g2")
    assert RebalanceMD.from_wire(rmd.to_wire()) == rmd


def test_meta_header_round_trip() -> None:
    meta = ObjectMeta(size=5, cksum_type="xxhash", cksum_value="abc", version="3", custom={"k": "v,="},
                      bid=1, md5="m", etag="e", s3_checksums={"crc32": "x"}, mtime_ns=11, atime_ns=12)
    back = meta_from_wire(meta_to_wire(meta), bid=4)
    assert back == ObjectMeta(**{**{f: getattr(meta, f) for f in meta.__slots__}, "bid": 4})  # type: ignore[arg-type]
    with pytest.raises(BadMessage):
        meta_from_wire('{"size": 1}', bid=1)


def _work(tmp: str, data: bytes) -> str:
    path = os.path.join(tmp, "work")
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_moved_object_keeps_its_metadata_and_times(tmp_path: os.PathLike[str]) -> None:
    final = os.path.join(tmp_path, "b", "obj")
    meta = ObjectMeta(size=3, cksum_value="c", version="7", custom={"a": "1"}, mtime_ns=1_000_000_000_123,
                      atime_ns=2_000_000_000_000)
    assert _commit_moved(_work(str(tmp_path), b"old"), final, meta, fsync=True)
    stored = fsmeta.stat_object(final)
    assert stored is not None
    assert (stored.version, stored.custom, stored.cksum_value) == ("7", {"a": "1"}, "c")
    assert (stored.mtime_ns, stored.atime_ns) == (meta.mtime_ns, meta.atime_ns)


def test_newer_local_copy_wins_older_one_is_replaced(tmp_path: os.PathLike[str]) -> None:
    final = os.path.join(tmp_path, "obj")
    mine = ObjectMeta(size=3, version="1", mtime_ns=5_000_000_000_000)
    assert _commit_moved(_work(str(tmp_path), b"new"), final, mine, fsync=False)
    stale = ObjectMeta(size=3, version="9", mtime_ns=4_000_000_000_000)   # written before the client's PUT
    work = _work(str(tmp_path), b"old")
    assert not _commit_moved(work, final, stale, fsync=False)
    assert not os.path.exists(work)
    with open(final, "rb") as f:
        assert f.read() == b"new"
    newer = ObjectMeta(size=3, version="2", mtime_ns=6_000_000_000_000)
    assert _commit_moved(_work(str(tmp_path), b"nwr"), final, newer, fsync=False)
    with open(final, "rb") as f:
        assert f.read() == b"nwr"
