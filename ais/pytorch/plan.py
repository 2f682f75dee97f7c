"""Who reads what, in which order: the deterministic epoch plan behind every dataset here.

Torch-free, so it can be tested on its own. An epoch's order is a permutation of the item
indices drawn from (seed, epoch) alone, so every rank computes the same one. The order is cut
into blocks of `block` items (the DataLoader's batch size); block j belongs to rank
`j % world_size`, and the rank's i-th block to DataLoader worker `i % num_workers`. DataLoader
collects batches from its workers round-robin, so a rank sees its blocks in plan order whatever
the number of workers. Resuming at step s (s batches already consumed by the rank) deals the
blocks from s on afresh: block s + j to worker j % num_workers, since a new DataLoader starts its
round-robin at worker 0. No item is read twice in an epoch, across ranks and workers, and none
is missed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Split:
    """One reader's place: its distributed rank and its DataLoader worker."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size or not 0 <= self.worker < self.num_workers:
            raise ValueError(f"invalid split {self}")

    @property
    def index(self) -> int:
        """This reader among all readers (rank-major)."""
        return self.rank * self.num_workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.num_workers


def rng_for(seed: int, epoch: int, *salt: int) -> random.Random:
    """A generator determined by (seed, epoch, *salt) only (not by the process or hash seed)."""
    return random.Random(":".join(str(x) for x in (seed, epoch, *salt)))


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    order = list(range(n))
    if shuffle:
        rng_for(seed, epoch).shuffle(order)
    return order


def rank_blocks(n: int, block: int, rank: int, world_size: int) -> list[range]:
    """The positions (in epoch order) of the rank's blocks, in the order the rank consumes them."""
    if block < 1:
        raise ValueError("block size must be at least 1")
    starts = range(rank * block, n, block * world_size)
    return [range(s, min(s + block, n)) for s in starts]


def worker_blocks(blocks: Sequence[T], worker: int, num_workers: int, step: int = 0) -> list[T]:
    """The rank's blocks from `step` on that one DataLoader worker produces."""
    return list(blocks[step + worker::num_workers])


def resumed_role(worker: int, num_workers: int, step: int) -> int:
    """For streams that cannot be re-dealt (shards): which worker of the interrupted run a worker
    of a run resumed at `step` must continue, so that DataLoader's round-robin (restarting at
    worker 0) yields the batches in the interrupted run's order."""
    return (worker + step) % num_workers


def skipped_blocks(step: int, worker: int, num_workers: int) -> int:
    """How many of a worker's blocks are among the rank's first `step` blocks."""
    return max(0, (step - worker + num_workers - 1) // num_workers)


def plan(n: int, split: Split, *, seed: int = 0, epoch: int = 0, shuffle: bool = False, block: int = 1,
         step: int = 0, drop_last: bool = False) -> list[list[int]]:
    """Item indices, block by block, that `split` reads in this epoch from step `step` on.

    `drop_last`: leave out a final short block (and keep ranks' block counts equal by leaving
    out the blocks of an incomplete last round), for training steps that need full batches.
    """
    order = epoch_order(n, seed, epoch, shuffle)
    usable = n
    if drop_last:
        full_rounds = n // (block * split.world_size)
        usable = full_rounds * block * split.world_size
    blocks = rank_blocks(usable, block, split.rank, split.world_size)
    return [[order[i] for i in r] for r in worker_blocks(blocks, split.worker, split.num_workers, step)]


def rank_block_count(n: int, block: int, rank: int, world_size: int, drop_last: bool = False) -> int:
    if drop_last:
        return n // (block * world_size)
    return len(rank_blocks(n, block, rank, world_size))


def assign(items: Sequence[T], split: Split, *, seed: int = 0, epoch: int = 0, shuffle: bool = False) -> list[T]:
    """Whole items (shards) for one reader: a permutation dealt round-robin over all readers."""
    order = epoch_order(len(items), seed, epoch, shuffle)
    return [items[i] for i in order[split.index::split.count]]
