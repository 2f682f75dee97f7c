"""A WebDataset-style dataset: samples streamed out of TAR shards.

Files that share a key (the path up to the first dot of the file name: `a/n01.jpg` and
`a/n01.cls` make sample `a/n01`) and follow each other in a shard form one sample, a dict
`{"__key__": key, "__shard__": shard name, "jpg": bytes, "cls": bytes}`. Shards are dealt to
ranks and DataLoader workers whole (after a per-epoch shard shuffle), each is streamed with one
GET and parsed as it arrives (TAR, TAR.GZ; ZIP is read whole), and samples pass through a
seeded shuffle buffer. Orders depend only on (seed, epoch) and the split.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, AsyncIterator, Iterable, Iterator, Sequence

from torch.utils.data import IterableDataset

from ais.client import LS_ARCH_DIR, AsyncClient, Client
from ais.client.archive import iter_archive_bytes, iter_tar
from ais.client.core import BucketLike, to_bucket
from ais.names import Bucket
from ais.pytorch import plan
from ais.pytorch.datasets import current_split, distributed_rank, make_client

SHARD_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".zip")
_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")   # WebDataset's base_plus_ext

Sample = dict[str, Any]


def split_key(member: str) -> tuple[str, str] | None:
    """(key, extension) of an archive member, WebDataset's way; None for a file without one."""
    m = _KEY.match(member)
    if m is None:
        return None
    return m.group(1), m.group(2)


async def group_samples(members: AsyncIterator[tuple[str, bytes]], shard: str) -> AsyncIterator[Sample]:
    """Consecutive members with the same key, as one sample each (members without one skipped)."""
    current: Sample | None = None
    async for name, data in members:
        kx = split_key(name)
        if kx is None:
            continue
        key, ext = kx
        if current is None or current["__key__"] != key:
            if current is not None:
                yield current
            current = {"__key__": key, "__shard__": shard}
        current[ext] = data
    if current is not None:
        yield current


def shuffle_buffer(samples: Iterator[Sample], size: int, rng: Any) -> Iterator[Sample]:
    """WebDataset's sample shuffle: a buffer of `size`, each arrival swapped for a random resident."""
    if size <= 1:
        yield from samples
        return
    buf: list[Sample] = []
    for s in samples:
        if len(buf) < size:
            buf.append(s)
            continue
        i = rng.randrange(size)
        buf[i], s = s, buf[i]
        yield s
    rng.shuffle(buf)
    yield from buf


class AISShardDataset(IterableDataset[Sample]):
    """Samples from the shards of a bucket (under `prefix`, or the `shards` named).

    `shuffle_shards`: a new shard order every epoch. `shuffle_buffer`: samples held for the
    sample shuffle (0: shard order). `batch_size` (the DataLoader's) makes `set_epoch(epoch,
    step)` resume exactly, while every worker still has shards left.
    """

    def __init__(self, client: Client | str | None, bucket: BucketLike, *, prefix: str = "",
                 shards: Sequence[str] | None = None, shuffle_shards: bool = True, shuffle_buffer: int = 0,
                 seed: int = 0, batch_size: int = 1, etl_name: str | None = None, rank: int | None = None,
                 world_size: int | None = None, prefetch: int = 64) -> None:
        self.client = make_client(client)
        self.bucket = to_bucket(bucket)
        if shards is None:
            shards = sorted(e.name for e in self.client.list_objects(self.bucket, prefix=prefix, props="name")
                            if e.name.endswith(SHARD_SUFFIXES))
        self.shards = list(shards)
        self.shuffle_shards, self.shuffle_buffer, self.seed = shuffle_shards, shuffle_buffer, seed
        self.batch_size, self.etl_name = batch_size, etl_name
        self.rank, self.world_size = rank, world_size
        self.prefetch = prefetch
        self.epoch = 0
        self.step = 0

    def set_epoch(self, epoch: int, step: int = 0) -> None:
        """The epoch to read next; skip what this rank consumed in its first `step` batches."""
        self.epoch, self.step = epoch, step

    def shards_for(self, split: plan.Split) -> list[str]:
        return plan.assign(self.shards, split, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle_shards)

    def __iter__(self) -> Iterator[Sample]:
        here = current_split(self.rank, self.world_size)
        role = plan.resumed_role(here.worker, here.num_workers, self.step)
        split = plan.Split(here.rank, here.world_size, role, here.num_workers)
        if split.count > len(self.shards) and split.index == 0:
            warnings.warn(f"{len(self.shards)} shards for {split.count} readers: some read nothing", stacklevel=2)
        mine = self.shards_for(split)
        stream = _shard_samples(self.client.aio, self.bucket, mine, self.etl_name)
        samples: Iterator[Sample] = self.client.iterate(stream, prefetch=self.prefetch)
        rng = plan.rng_for(self.seed, self.epoch, split.rank, split.worker)
        out = shuffle_buffer(samples, self.shuffle_buffer, rng)
        skip = plan.skipped_blocks(self.step, split.worker, split.num_workers) * self.batch_size
        for i, sample in enumerate(out):
            if i >= skip:
                yield sample

    def __len__(self) -> int:
        """Samples in this rank's shards: one listing of each shard's content (LsArchDir)."""
        r, w = distributed_rank(self.rank, self.world_size)
        keys: set[tuple[str, str]] = set()
        for shard in self.shards_for(plan.Split(r, w)):
            for e in self.client.list_objects(self.bucket, prefix=shard + "/", props="name", flags=LS_ARCH_DIR):
                kx = split_key(e.name[len(shard) + 1:])
                if kx is not None:
                    keys.add((shard, kx[0]))
        return len(keys)


async def _shard_samples(aio: AsyncClient, bck: Bucket, shards: Sequence[str],
                         etl_name: str | None) -> AsyncIterator[Sample]:
    for shard in shards:
        reader = await aio.open_object(bck, shard, etl_name=etl_name)
        try:
            members: AsyncIterator[tuple[str, bytes]]
            if shard.endswith(".zip"):
                members = _aiter(iter_archive_bytes(await reader.read(), shard))
            else:
                members = iter_tar(reader.iter_chunks(), gzip=shard.endswith((".tgz", ".tar.gz")))
            async for sample in group_samples(members, shard):
                yield sample
        finally:
            await reader.aclose()


async def _aiter(it: Iterable[tuple[str, bytes]]) -> AsyncIterator[tuple[str, bytes]]:
    for x in it:
        yield x
