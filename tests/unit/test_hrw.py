"""Golden HRW vectors: placement must stay bit-exact with AIStore and the SDK (reference §3.2)."""

import random

import pytest

from ais import hrw
from ais.cmap import ClusterMap, Node

IDS = ["KoplySra", "PCSedjCx", "QjSprbPc", "MGAJApHg", "QgNsiHKc"]
DIGESTS = {"KoplySra": 12177436114116607030, "PCSedjCx": 10363448138585287646, "QjSprbPc": 5452458784859333926,
           "MGAJApHg": 1395800579342643088, "QgNsiHKc": 14968041631330270863}
OWNERS = {"ais/@#/mybucket/dir/file.jpg": "PCSedjCx", "ais/@#/imagenet/train/n01440764/x.jpg": "QjSprbPc",
          "aws/@#/b/o": "QjSprbPc", "ais/@uuid#ns/b/obj": "QgNsiHKc", "ais/@#/b/é": "MGAJApHg"}
MOUNTPATHS = ["/data/1", "/data/2", "/tmp/x/mp0"]
MP_OWNERS = {"ais/@#/mybucket/dir/file.jpg": "/data/1", "ais/@#/imagenet/train/n01440764/x.jpg": "/tmp/x/mp0",
             "aws/@#/b/o": "/tmp/x/mp0", "ais/@uuid#ns/b/obj": "/data/2", "ais/@#/b/é": "/data/1"}


def _cmap(ids: list[str], flags: dict[str, int] | None = None) -> ClusterMap:
    flags = flags or {}
    p = Node("p1", "proxy", "http://h:1", "http://h:2")
    targets = {i: Node(i, "target", f"http://h:{n}", f"http://h:{n + 1}", flags.get(i, 0)) for n, i in enumerate(ids)}
    return ClusterMap(version=1, uuid="u", primary_id="p1", proxies={"p1": p}, targets=targets)


def test_mix64_reference_vectors() -> None:
    assert hrw.mix64(4573842) == 5026071747115404967
    assert hrw.mix64(0) == 1905207664160064169
    assert hrw.mix64(2**64 - 1) == 10227601306713020730
    assert hrw.mix64(123456789) == 5288836854215336256


def test_digest_golden() -> None:
    for node_id, d in DIGESTS.items():
        assert hrw.digest(node_id) == d


def test_owner_golden() -> None:
    cmap = _cmap(IDS)
    for uname, owner in OWNERS.items():
        node = cmap.owner(uname)
        assert node is not None and node.id == owner, uname


def test_mountpath_golden() -> None:
    for uname, mp in MP_OWNERS.items():
        assert hrw.choose_mountpath(uname, MOUNTPATHS) == mp


def test_maintenance_targets_are_skipped() -> None:
    cmap = _cmap(IDS, {"PCSedjCx": 4})
    node = cmap.owner("ais/@#/mybucket/dir/file.jpg")
    assert node is not None and node.id != "PCSedjCx"


def test_matches_sdk_hashing_on_random_names() -> None:
    """Our placement equals the official SDK's for its own direct=True reads."""
    sdk_utils = pytest.importorskip("aistore.sdk.utils")
    sdk_types = pytest.importorskip("aistore.sdk.types")
    rng = random.Random(7)
    ids = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
           for _ in range(7)]
    tmap = {i: sdk_types.Snode(daemon_id=i, daemon_type="target", id_digest=sdk_utils.get_digest(i)) for i in ids}
    smap = sdk_types.Smap(tmap=tmap, pmap={}, proxy_si=sdk_types.Snode(daemon_id="p", daemon_type="proxy"))
    ours = _cmap(ids)
    for n in range(2000):
        uname = f"ais/@#/bucket-{n % 7}/dir{n % 13}/obj-{rng.random()}"
        assert hrw.digest(uname) == sdk_utils.get_digest(uname)
        assert ours.owner(uname).id == smap.get_target_for_object(uname).daemon_id  # type: ignore[union-attr]
    for x in (rng.getrandbits(64) for _ in range(1000)):
        assert hrw.mix64(x) == sdk_utils.xoshiro256_hash(x)
