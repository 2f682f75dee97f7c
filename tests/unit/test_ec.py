"""Erasure coding without a cluster: zfec slices (any d of d+p rebuild the object), the `ec`
bucket props checks, and slice storage on disk (generations, removal)."""

from __future__ import annotations

import itertools
import os
import random

import pytest

from ais.ec import EcConf, check_props
from ais.errors import BadMessage, BadRequest
from ais.names import make_bucket
from target import ec_codec, ec_store
from target.ec_store import EcMeta, EcPaths

pytestmark = pytest.mark.timeout(60)


# --- codec ------------------------------------------------------------------------------------

@pytest.mark.parametrize("d,p", [(1, 1), (2, 1), (2, 2), (3, 2), (4, 2)])
@pytest.mark.parametrize("size", [0, 1, 7, 4096, 100_003])
def test_any_d_slices_rebuild_the_object(d: int, p: int, size: int) -> None:
    data = random.Random(size * 31 + d).randbytes(size)
    slices = ec_codec.encode(data, d, p)
    assert len(slices) == d + p
    assert {len(s) for s in slices} == {ec_codec.slice_size(size, d)}
    assert b"".join(slices[:d])[:size] == data   # data slices are the object, padded
    for chosen in itertools.combinations(range(1, d + p + 1), d):
        assert ec_codec.decode({i: slices[i - 1] for i in chosen}, d, p, size) == data, chosen


def test_parity_differs_from_data_and_too_few_slices_fail() -> None:
    data = random.Random(1).randbytes(8000)
    slices = ec_codec.encode(data, 2, 2)
    assert slices[2] != slices[0] and slices[3] != slices[1] and slices[2] != slices[3]
    with pytest.raises(ValueError):
        ec_codec.decode({3: slices[2]}, 2, 2, len(data))
    with pytest.raises(ValueError):   # a slice of the wrong length (another generation) is refused
        ec_codec.decode({1: slices[0], 2: slices[1][:-1]}, 2, 2, len(data))


def test_a_corrupted_slice_changes_the_result() -> None:
    """The decoder cannot detect corruption itself: that is what per-slice checksums are for."""
    data = os.urandom(5000)
    slices = ec_codec.encode(data, 2, 1)
    bad = bytearray(slices[2])
    bad[10] ^= 0xFF
    assert ec_codec.decode({1: slices[0], 3: bytes(bad)}, 2, 1, len(data)) != data


# --- props ------------------------------------------------------------------------------------

def _props(**ec: object) -> dict[str, object]:
    return {"ec": {"enabled": True, "data_slices": 2, "parity_slices": 1, "objsize_limit": 1024, **ec}}


def test_props_need_d_plus_p_plus_one_targets() -> None:
    bck = make_bucket("b")
    assert check_props(bck, _props(), None, 4) is True          # turned on
    assert check_props(bck, _props(), _props(), 4) is False     # already on
    assert check_props(bck, _props(enabled=False), None, 1) is False   # off: no target count needed
    with pytest.raises(BadRequest, match=r"ec\.data_slices.*4 targets.*3 active"):
        check_props(bck, _props(), None, 3)
    # replication only (-1): p + 1 targets suffice
    assert check_props(bck, _props(objsize_limit=-1, data_slices=5), None, 2) is True


@pytest.mark.parametrize("field,value", [("data_slices", 0), ("data_slices", 33), ("parity_slices", 0),
                                         ("parity_slices", 1.5), ("data_slices", "2"), ("objsize_limit", -2),
                                         ("parity_slices", True), ("enabled", "yes")])
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(BadRequest, match=rf"ec\.{field}"):
        check_props(make_bucket("b"), _props(**{field: value}), None, 40)


def test_scheme_cannot_change_while_enabled_and_remote_buckets_are_refused() -> None:
    bck = make_bucket("b")
    with pytest.raises(BadRequest, match=r"ec\.parity_slices.*cannot change"):
        check_props(bck, _props(parity_slices=2), _props(), 10)
    assert check_props(bck, _props(parity_slices=2), _props(enabled=False), 10) is True
    with pytest.raises(BadRequest, match="ais:// buckets only"):
        check_props(make_bucket("b", "aws"), _props(), None, 10)


def test_replicate_below_the_limit() -> None:
    conf = EcConf.from_props(_props(objsize_limit=100))
    assert conf.replicated(99) and not conf.replicated(100) and not conf.replicated(10**9)
    assert EcConf.from_props(_props(objsize_limit=-1)).replicated(10**9)
    assert EcConf.from_props(_props(objsize_limit=0)).replicated(0) is False
    assert not EcConf.from_props({}).enabled


# --- storage ----------------------------------------------------------------------------------

def _paths(root: str) -> EcPaths:
    base = os.path.join(root, "@ais", "b")
    return EcPaths(root, f"{base}/%ec/dir/o", f"{base}/%mt/dir/o", f"{base}/%ec", f"{base}/%mt")


def _meta(generation: int, index: int = 1) -> EcMeta:
    return EcMeta(size=10, data=2, parity=1, generation=generation, role=ec_store.ROLE_SLICE, index=index,
                  cksum_value="abc", custom={"k": "v"}, nodes={"t1": 1, "t2": 2})


def test_metadata_round_trips_and_garbage_is_refused() -> None:
    m = _meta(5)
    assert EcMeta.from_json(m.to_json()) == m
    for bad in ("", "{}", '{"size": 1, "data": 0, "parity": 1, "generation": 1, "role": "slice"}',
                '{"size": 1, "data": 1, "parity": 1, "generation": 1, "role": "boss"}'):
        with pytest.raises(BadMessage):
            EcMeta.from_json(bad)


def test_newer_generation_wins_and_remove_below(tmp_path: "os.PathLike[str]") -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "%wk"))
    paths = _paths(root)

    def publish(gen: int, body: bytes) -> bool:
        work, mwork = os.path.join(root, "%wk", f"s{gen}"), os.path.join(root, "%wk", f"m{gen}")
        ec_store.write_work(work, body, fsync=False)
        return ec_store.publish_slice(paths, work, mwork, _meta(gen), fsync=False)

    assert publish(10, b"new")
    assert not publish(5, b"old")            # an older generation arriving late is dropped
    got = ec_store.read_slice(paths)
    assert got is not None and got[0] == b"new" and got[1].generation == 10
    assert os.listdir(os.path.join(root, "%wk")) == []   # no work file left either way
    assert not ec_store.remove(paths, below=10)          # not older than 10: kept
    assert ec_store.remove(paths, below=11)
    assert ec_store.read_slice(paths) is None and ec_store.read_meta(paths.meta) is None
    assert os.listdir(paths.slice_root) == [] and os.listdir(paths.meta_root) == []   # empty dirs pruned
    assert not ec_store.remove(paths)
