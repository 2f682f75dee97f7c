"""Unit tests of the mountpath set (runtime states, HRW ranking) and of one object's copy upkeep
(target/mirror.py `reconcile_blocking`) on temporary directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import xxhash

from ais import hrw
from ais.errors import BadRequest, Conflict, NotFound
from ais.names import make_bucket
from target import mirror
from target.fs import meta as fsmeta
from target.fs.mountpaths import Mountpaths

pytestmark = pytest.mark.timeout(30)

BCK = make_bucket("b", "ais", "")


@pytest.fixture
def mps(tmp_path: Path) -> Iterator[Mountpaths]:
    m = Mountpaths([str(tmp_path / f"mp{i}") for i in range(3)], 2)
    m.init("node1")
    yield m
    m.close()


def put_file(path: str, data: bytes) -> None:
    """An object file with its metadata, as a PUT leaves it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.setxattr(path, fsmeta.XATTR, fsmeta.ObjectMeta(size=len(data), cksum_value=xxhash.xxh64(data).hexdigest(),
                                                      version="1").pack())


def run(mps: Mountpaths, obj: str, wanted: int, owner_here: bool = True) -> mirror.Outcome:
    places = mirror.slots(mps, BCK, obj)
    return mirror.reconcile_blocking(places, len(mps.paths), wanted, owner_here, False, mps.work_path)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_ranked_starts_with_the_hrw_mountpath_and_covers_all(mps: Mountpaths) -> None:
    for i in range(50):
        order = mps.ranked(BCK, f"o{i}")
        assert order[0] == mps.mountpath_of(BCK, f"o{i}") == hrw.choose_mountpath(BCK.object_uname(f"o{i}"), mps.paths)
        assert sorted(order) == sorted(mps.paths)


def test_state_changes_and_their_errors(mps: Mountpaths, tmp_path: Path) -> None:
    a, b, c = mps.paths
    mps.disable(b)
    assert mps.to_wire() == {"available": [a, c], "waiting_dd": [], "disabled": [b]}
    with pytest.raises(Conflict):
        mps.disable(b)
    with pytest.raises(Conflict, match="enable it instead"):
        mps.attach(b)
    mps.enable(b)
    mps.detach(a)
    assert mps.readable == (c, b, a) and mps.state_of(a) == "waiting_dd"
    assert mps.finish_detach([a]) == [a] and mps.state_of(a) == ""
    with pytest.raises(NotFound):
        mps.detach(a)
    mps.detach(c, force=True)
    with pytest.raises(BadRequest, match="last available mountpath"):
        mps.disable(b)
    with pytest.raises(BadRequest, match="last available mountpath"):
        mps.detach(b)
    mps.attach(a)
    assert mps.paths == (b, a)


def test_copies_made_where_hrw_says_and_removed_elsewhere(mps: Mountpaths) -> None:
    order = mps.ranked(BCK, "x/y")
    home = mirror.slots(mps, BCK, "x/y")[0]
    put_file(home.main, b"hello")
    out = run(mps, "x/y", 2)
    assert out.present and out.bytes_written == 5
    assert read(f"{order[1]}/@ais/b/%cp/x/y") == b"hello"
    assert not os.path.exists(f"{order[2]}/@ais/b/%cp/x/y")
    assert os.getxattr(f"{order[1]}/@ais/b/%cp/x/y", fsmeta.XATTR) == os.getxattr(home.main, fsmeta.XATTR)
    assert run(mps, "x/y", 2).actions == []          # nothing to do the second time
    assert len(mirror.copies_blocking(mirror.slots(mps, BCK, "x/y"))) == 2
    run(mps, "x/y", 3)
    assert os.path.isfile(f"{order[2]}/@ais/b/%cp/x/y")
    run(mps, "x/y", 1)
    assert not os.path.exists(f"{order[1]}/@ais/b/%cp/x/y") and not os.path.exists(f"{order[2]}/@ais/b/%cp/x/y")
    assert not os.path.exists(f"{order[1]}/@ais/b/%cp/x"), "emptied directories are pruned"
    assert read(home.main) == b"hello"


def test_overwritten_main_refreshes_a_stale_copy(mps: Mountpaths) -> None:
    places = mirror.slots(mps, BCK, "o")
    put_file(places[0].main, b"old")
    run(mps, "o", 2)
    put_file(places[0].main, b"new!")
    run(mps, "o", 2)
    assert read(places[1].copy) == b"new!"


def test_misplaced_main_moves_home_and_an_older_duplicate_goes(mps: Mountpaths) -> None:
    places = mirror.slots(mps, BCK, "m")
    put_file(places[2].main, b"moved")
    out = run(mps, "m", 1)
    assert out.present and read(places[0].main) == b"moved" and not os.path.exists(places[2].main)
    put_file(places[1].main, b"stale")
    run(mps, "m", 1)
    assert not os.path.exists(places[1].main) and read(places[0].main) == b"moved"


def test_lost_main_is_restored_from_an_intact_copy_and_a_corrupt_copy_is_quarantined(mps: Mountpaths) -> None:
    places = mirror.slots(mps, BCK, "r")
    put_file(places[1].copy, b"good data")
    put_file(places[2].copy, b"good data")
    with open(places[1].copy, "r+b") as f:   # bit rot in one copy
        f.write(b"BAD")
    assert mirror.intact(places[1].copy) is False and mirror.intact(places[2].copy) is True
    out = run(mps, "r", 2)
    assert out.present and read(places[0].main) == b"good data"
    assert read(places[1].copy) == b"good data", "the corrupt copy was replaced by a good one"
    assert not os.path.exists(places[2].copy)
    assert any(n.startswith("corrupt.") for n in os.listdir(f"{places[1].mp}/%wk"))


def test_copies_of_an_object_owned_elsewhere_are_removed(mps: Mountpaths) -> None:
    places = mirror.slots(mps, BCK, "gone")
    put_file(places[1].copy, b"orphan")
    out = run(mps, "gone", 2, owner_here=False)
    assert not out.present and not os.path.exists(places[1].copy)


def test_remove_all_and_checksum(mps: Mountpaths) -> None:
    places = mirror.slots(mps, BCK, "d")
    put_file(places[0].main, b"x")
    run(mps, "d", 3)
    assert mirror.remove_all_blocking(places)
    assert [s.mp for s in places if os.path.exists(s.copy)] == [] and os.path.exists(places[0].main)
    meta, computed = mirror.checksum_of(places[0].main) or (None, "")
    assert meta is not None and computed == meta.cksum_value


def test_disk_errors_past_the_threshold_report_the_mountpath_once(mps: Mountpaths) -> None:
    failing: list[str] = []
    mps.on_failing = failing.append
    mps.io_errors_to_disable = lambda: 3
    bad = mps.paths[1]
    for _ in range(3):
        mps.io_error(bad, OSError(5, "EIO"))
    assert failing == [bad]
    mps.disable(bad)
    mps.io_error(bad, OSError(5, "EIO"))
    assert failing == [bad]
