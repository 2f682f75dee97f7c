"""ais.pytorch's epoch plan and WebDataset grouping, without a cluster: every item once per epoch
across ranks and workers, the same rank order under any worker count, exact resumption, and
the sample shuffle buffer."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any, AsyncIterator

import pytest

from ais.pytorch import plan
from ais.pytorch.plan import Split
from ais.pytorch.shards import group_samples, shuffle_buffer, split_key

pytestmark = pytest.mark.timeout(20)


def dataloader_order(per_worker: list[list[list[int]]]) -> list[list[int]]:
    """Batches in the order DataLoader yields them: round-robin over workers, skipping the
    exhausted ones (its in-order mode)."""
    out: list[list[int]] = []
    its = [iter(w) for w in per_worker]
    live = list(range(len(its)))
    while live:
        for w in list(live):
            b = next(its[w], None)
            if b is None:
                live.remove(w)
            else:
                out.append(b)
    return out


def rank_order(n: int, rank: int, world: int, workers: int, **kw: Any) -> list[list[int]]:
    return dataloader_order([plan.plan(n, Split(rank, world, w, workers), **kw) for w in range(workers)])


@pytest.mark.parametrize("n,block,world,workers", [(1000, 1, 2, 4), (1003, 16, 2, 4), (7, 4, 3, 2), (0, 8, 2, 4)])
def test_every_item_exactly_once_across_ranks_and_workers(n: int, block: int, world: int, workers: int) -> None:
    seen = [i for r in range(world) for w in range(workers)
            for b in plan.plan(n, Split(r, world, w, workers), seed=3, epoch=1, shuffle=True, block=block)
            for i in b]
    assert sorted(seen) == list(range(n))


def test_rank_order_is_the_same_under_any_number_of_workers() -> None:
    kw = dict(seed=5, epoch=2, shuffle=True, block=8)
    base = rank_order(1001, 1, 2, 1, **kw)
    for workers in (2, 3, 4):
        assert rank_order(1001, 1, 2, workers, **kw) == base
    assert all(len(b) == 8 for b in base[:-1])


def test_epochs_and_seeds_change_the_order_deterministically() -> None:
    a = plan.epoch_order(100, seed=1, epoch=0, shuffle=True)
    assert a == plan.epoch_order(100, seed=1, epoch=0, shuffle=True)
    assert a != plan.epoch_order(100, seed=1, epoch=1, shuffle=True)
    assert a != plan.epoch_order(100, seed=2, epoch=0, shuffle=True)
    assert plan.epoch_order(5, seed=1, epoch=0, shuffle=False) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("workers", [1, 4])
def test_resuming_at_a_step_continues_the_same_sequence(workers: int) -> None:
    kw = dict(seed=9, epoch=4, shuffle=True, block=10)
    full = rank_order(997, 0, 2, workers, **kw)
    for step in (0, 1, 5, 13, len(full)):
        assert rank_order(997, 0, 2, workers, step=step, **kw) == full[step:]


def test_drop_last_gives_ranks_equal_full_batches() -> None:
    counts = []
    for r in range(3):
        blocks = rank_order(100, r, 3, 2, block=8, drop_last=True)
        assert all(len(b) == 8 for b in blocks)
        counts.append(len(blocks))
    assert counts == [4, 4, 4]
    assert plan.rank_block_count(100, 8, 0, 3, drop_last=True) == 4


def test_shards_are_dealt_whole_to_every_reader() -> None:
    shards = [f"s{i:02d}.tar" for i in range(20)]
    got = [plan.assign(shards, Split(r, 2, w, 4), seed=1, epoch=0, shuffle=True) for r, w in
           itertools.product(range(2), range(4))]
    assert sorted(s for g in got for s in g) == shards
    assert {len(g) for g in got} == {2, 3}


def test_split_key_is_webdatasets() -> None:
    assert split_key("a/b/n01.jpg") == ("a/b/n01", "jpg")
    assert split_key("n01.seg.png") == ("n01", "seg.png")
    assert split_key("dir.v2/n01.cls") == ("dir.v2/n01", "cls")
    assert split_key("README") is None


def test_group_samples_joins_consecutive_members_of_a_key() -> None:
    async def members() -> AsyncIterator[tuple[str, bytes]]:
        for m in [("x/a.jpg", b"1"), ("x/a.cls", b"2"), ("x/b.jpg", b"3"), ("NOEXT", b""), ("x/c.cls", b"4")]:
            yield m

    async def collect() -> list[dict[str, Any]]:
        return [s async for s in group_samples(members(), "s.tar")]
    assert asyncio.run(collect()) == [
        {"__key__": "x/a", "__shard__": "s.tar", "jpg": b"1", "cls": b"2"},
        {"__key__": "x/b", "__shard__": "s.tar", "jpg": b"3"},
        {"__key__": "x/c", "__shard__": "s.tar", "cls": b"4"},
    ]


def test_shuffle_buffer_keeps_every_sample_and_is_seeded() -> None:
    samples = [{"__key__": str(i)} for i in range(200)]
    a = [s["__key__"] for s in shuffle_buffer(iter(samples), 32, random.Random(1))]
    b = [s["__key__"] for s in shuffle_buffer(iter(samples), 32, random.Random(1))]
    assert a == b and sorted(a, key=int) == [str(i) for i in range(200)] and a != [str(i) for i in range(200)]
    assert [s["__key__"] for s in shuffle_buffer(iter(samples), 0, random.Random(1))] == [str(i) for i in range(200)]
