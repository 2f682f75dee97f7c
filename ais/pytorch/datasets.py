"""Datasets over a bucket: random access, a sharded stream of objects, and minibatches that
each arrive as one batch-get.

All three list the bucket once, in the process that builds them (names sorted, so every rank
lists the same thing), and read through an `ais.client.Client`, which DataLoader workers
inherit by fork (each starts its own loop and connection pool) or rebuild by pickling (spawn).
Orders and the split over ranks and workers come from `plan.py`; `set_epoch(epoch, step)`
before iterating chooses the epoch's permutation and where in it to resume.
"""

from __future__ import annotations

import asyncio
import collections
import os
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence, Sized, TypeVar

import torch.distributed as dist
from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info

from ais.client import AsyncClient, Client
from ais.client.core import BucketLike, to_bucket
from ais.names import Bucket
from ais.pytorch import plan
from ais.pytorch.plan import Split

Transform = Callable[[bytes], Any]
K = TypeVar("K")
V = TypeVar("V")


def make_client(client: Client | str | None) -> Client:
    """A `Client`, or one for an endpoint URL (None: env AIS_ENDPOINT)."""
    return client if isinstance(client, Client) else Client(client)


def list_names(client: Client, bck: Bucket, prefix: str, names: Sequence[str] | None) -> list[str]:
    if names is not None:
        return list(names)
    return sorted(e.name for e in client.list_objects(bck, prefix=prefix, props="name"))


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size): as given, else from torch.distributed, else env RANK/WORLD_SIZE, else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def current_split(rank: int | None = None, world_size: int | None = None) -> Split:
    """This reader's place: its rank and, inside a DataLoader worker, the worker."""
    r, w = distributed_rank(rank, world_size)
    info = get_worker_info()
    if info is None:
        return Split(r, w)
    return Split(r, w, info.id, info.num_workers)


class _Source:
    """What every dataset here holds: a client, a bucket, the object names, read options."""

    def __init__(self, client: Client | str | None, bucket: BucketLike, *, prefix: str = "",
                 names: Sequence[str] | None = None, etl_name: str | None = None,
                 transform: Transform | None = None) -> None:
        self.client = make_client(client)
        self.bucket = to_bucket(bucket)
        self.names = list_names(self.client, self.bucket, prefix, names)
        self.etl_name = etl_name
        self.transform = transform

    def _sample(self, name: str, data: bytes) -> tuple[str, Any]:
        return name, self.transform(data) if self.transform is not None else data


# --- map-style ------------------------------------------------------------------------------

class AISMapDataset(_Source, Dataset[tuple[str, Any]]):
    """Random access: `ds[i]` is `(name, bytes)` (or `(name, transform(bytes))`).

    A DataLoader with batching hands a whole minibatch of indices to `__getitems__`, which
    fetches them concurrently (`batch_get=True`: with one batch-get request instead, unless an
    ETL is applied, which batch-get does not do).
    """

    def __init__(self, client: Client | str | None, bucket: BucketLike, *, prefix: str = "",
                 names: Sequence[str] | None = None, etl_name: str | None = None,
                 transform: Transform | None = None, batch_get: bool = False) -> None:
        super().__init__(client, bucket, prefix=prefix, names=names, etl_name=etl_name, transform=transform)
        self.batch_get = batch_get

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[str, Any]:
        name = self.names[index]
        return self._sample(name, self.client.get_object(self.bucket, name, etl_name=self.etl_name))

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[str, Any]]:
        names = [self.names[i] for i in indices]
        if self.batch_get and not self.etl_name:
            entries = self.client.batch_get(names, bucket=self.bucket)
            return [self._sample(e.name, e.data) for e in entries]
        datas = self.client._run(_get_all(self.client.aio, self.bucket, names, self.etl_name))
        return [self._sample(n, d) for n, d in zip(names, datas)]


class AISSampler(Sampler[int]):
    """Indices of a map-style dataset for one rank: every index once per epoch across ranks,
    the same permutation on every rank for a (seed, epoch), resumable at a step.

    `batch_size` must be the DataLoader's (a step is one batch); `set_epoch(epoch, step)`
    before each epoch.
    """

    def __init__(self, n: int | Sized, *, batch_size: int = 1, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, rank: int | None = None, world_size: int | None = None) -> None:
        self.n = n if isinstance(n, int) else len(n)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank, self.world_size = distributed_rank(rank, world_size)
        self.epoch = 0
        self.step = 0

    def set_epoch(self, epoch: int, step: int = 0) -> None:
        self.epoch, self.step = epoch, step

    def __iter__(self) -> Iterator[int]:
        blocks = plan.plan(self.n, Split(self.rank, self.world_size), seed=self.seed, epoch=self.epoch,
                           shuffle=self.shuffle, block=self.batch_size, step=self.step, drop_last=self.drop_last)
        for b in blocks:
            yield from b

    def __len__(self) -> int:
        blocks = plan.plan(self.n, Split(self.rank, self.world_size), seed=self.seed, epoch=self.epoch,
                           shuffle=self.shuffle, block=self.batch_size, step=self.step, drop_last=self.drop_last)
        return sum(len(b) for b in blocks)


# --- iterable -------------------------------------------------------------------------------

class _Epochs:
    names: list[str]
    seed: int
    shuffle: bool
    batch_size: int
    drop_last: bool
    epoch: int = 0
    step: int = 0

    def _blocks(self, split: Split) -> list[list[int]]:
        """This split's blocks of indices for the current epoch, from the current step on."""
        return plan.plan(len(self.names), split, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle,
                         block=self.batch_size, step=self.step, drop_last=self.drop_last)

    def set_epoch(self, epoch: int, step: int = 0) -> None:
        """The epoch to read next (its permutation), resuming after `step` batches of this rank.

        Call before `iter(DataLoader)`; workers take a copy of the dataset when they start
        (so not with `persistent_workers=True`)."""
        self.epoch, self.step = epoch, step


class AISIterDataset(_Source, _Epochs, IterableDataset[tuple[str, Any]]):
    """A stream of `(name, bytes)` split across DataLoader workers and distributed ranks.

    `batch_size`: the DataLoader's; items are dealt in blocks of that size, so a rank sees the
    same order under any number of workers and resumes exactly at a step. `prefetch`: GETs in
    flight per worker.
    """

    def __init__(self, client: Client | str | None, bucket: BucketLike, *, prefix: str = "",
                 names: Sequence[str] | None = None, shuffle: bool = False, seed: int = 0, batch_size: int = 1,
                 drop_last: bool = False, etl_name: str | None = None, transform: Transform | None = None,
                 rank: int | None = None, world_size: int | None = None, prefetch: int = 16) -> None:
        super().__init__(client, bucket, prefix=prefix, names=names, etl_name=etl_name, transform=transform)
        self.shuffle, self.seed, self.batch_size, self.drop_last = shuffle, seed, batch_size, drop_last
        self.rank, self.world_size = rank, world_size
        self.prefetch = prefetch

    def __len__(self) -> int:
        r, w = distributed_rank(self.rank, self.world_size)
        return sum(len(b) for b in self._blocks(Split(r, w)))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        names = [self.names[i] for b in self._blocks(current_split(self.rank, self.world_size)) for i in b]
        stream = _get_ordered(self.client.aio, self.bucket, names, self.etl_name, self.prefetch)
        for name, data in self.client.iterate(stream, prefetch=self.prefetch):
            yield self._sample(name, data)


class AISBatchLoader(_Source, _Epochs, IterableDataset[tuple[list[str], Any]]):
    """Minibatches, each fetched with one batch-get request: yields `(names, samples)`, where
    samples is `collate([transform(bytes), ...])` (a plain list without `collate`).

    Use with `DataLoader(loader, batch_size=None, num_workers=N)`. Batches are dealt to ranks
    and workers as in `plan.py`; `prefetch` batch requests are in flight per worker. With an
    ETL (which batch-get does not apply) a minibatch is read with concurrent GETs instead.

    `request_bytes`: a worker fetches its next minibatches together, in one request of about
    this many bytes (the first requests carry one minibatch each; later ones as many whole
    minibatches as the sample sizes seen so far allow, at most `MAX_REQUEST_SAMPLES` samples),
    since every batch-get has a fixed cost on the cluster. 0: one request per minibatch.
    Minibatches come out the same either way.

    `by_owner`: a request is sent as one batch-get per target that owns some of its samples (see
    `AsyncClient.batch_get`), so no target relays another's samples: about half the cluster's
    work per sample.
    """

    def __init__(self, client: Client | str | None, bucket: BucketLike, *, batch_size: int, prefix: str = "",
                 names: Sequence[str] | None = None, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 etl_name: str | None = None, transform: Transform | None = None,
                 collate: Callable[[list[Any]], Any] | None = None, rank: int | None = None,
                 world_size: int | None = None, prefetch: int = 2, request_bytes: int = 8 << 20,
                 by_owner: bool = True) -> None:
        super().__init__(client, bucket, prefix=prefix, names=names, etl_name=etl_name, transform=transform)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.collate = collate
        self.rank, self.world_size = rank, world_size
        self.prefetch = prefetch
        self.request_bytes = request_bytes
        self.by_owner = by_owner

    def __len__(self) -> int:
        r, w = distributed_rank(self.rank, self.world_size)
        return len(self._blocks(Split(r, w)))

    def __iter__(self) -> Iterator[tuple[list[str], Any]]:
        batches = [[self.names[i] for i in b] for b in self._blocks(current_split(self.rank, self.world_size))]
        stream = _get_batches(self.client.aio, self.bucket, batches, self.etl_name, self.prefetch,
                              0 if self.etl_name else self.request_bytes, self.by_owner)
        # whole requests cross from the client's loop to this thread (one hop each, not one per minibatch)
        for group, datas in self.client.iterate(stream, prefetch=1):
            pos = 0
            for names in group:
                samples = datas[pos:pos + len(names)]
                pos += len(names)
                if self.transform is not None:
                    samples = [self.transform(d) for d in samples]
                yield names, self.collate(samples) if self.collate is not None else samples


# --- the async side (runs on the client's loop) ---------------------------------------------

async def _get_all(aio: AsyncClient, bck: Bucket, names: Sequence[str], etl_name: str | None) -> list[bytes]:
    return list(await asyncio.gather(*(aio.get_object(bck, n, etl_name=etl_name) for n in names)))


async def _in_order(items: Iterable[K], fetch: Callable[[K], Awaitable[V]], window: int) -> AsyncIterator[tuple[K, V]]:
    """`fetch` each item, up to `window` at once, yielding `(item, result)` in the given order."""
    pending: collections.deque[tuple[K, asyncio.Task[V]]] = collections.deque()
    try:
        for item in items:
            pending.append((item, asyncio.ensure_future(fetch(item))))
            if len(pending) >= max(1, window):
                k, task = pending.popleft()
                yield k, await task
        while pending:
            k, task = pending.popleft()
            yield k, await task
    finally:
        await _cancel(t for _, t in pending)


def _get_ordered(aio: AsyncClient, bck: Bucket, names: Sequence[str], etl_name: str | None,
                 window: int) -> AsyncIterator[tuple[str, bytes]]:
    """GET each object, up to `window` at once, yielding in the given order."""
    return _in_order(names, lambda name: aio.get_object(bck, name, etl_name=etl_name), window)


MAX_REQUEST_SAMPLES = 4096


class _Grouper:
    """Cuts a worker's minibatches into batch-get requests of about `request_bytes`, learning the
    mean sample size from the answers (so a group is decided only when its request is sent)."""

    def __init__(self, request_bytes: int) -> None:
        self.request_bytes = request_bytes
        self.samples = 0
        self.bytes = 0

    def learn(self, datas: Sequence[bytes]) -> None:
        self.samples += len(datas)
        self.bytes += sum(map(len, datas))

    def groups(self, batches: Sequence[list[str]]) -> Iterator[list[list[str]]]:
        i = 0
        while i < len(batches):
            want = 0
            if self.request_bytes > 0 and self.samples:
                want = min(MAX_REQUEST_SAMPLES, self.request_bytes * self.samples // max(self.bytes, 1))
            group, count = [batches[i]], len(batches[i])
            i += 1
            while i < len(batches) and count + len(batches[i]) <= want:
                group.append(batches[i])
                count += len(batches[i])
                i += 1
            yield group


def _get_batches(aio: AsyncClient, bck: Bucket, batches: Sequence[list[str]], etl_name: str | None,
                 window: int, request_bytes: int, by_owner: bool) -> AsyncIterator[tuple[list[list[str]], list[bytes]]]:
    """Groups of minibatches (see `_Grouper`) with the data of all their samples, in order: one
    batch-get per group (concurrent GETs with an ETL), up to `window` requests at once."""
    grouper = _Grouper(request_bytes)

    async def one(group: list[list[str]]) -> list[bytes]:
        names = [n for b in group for n in b]
        if etl_name:
            return await _get_all(aio, bck, names, etl_name)
        datas = await aio.batch_get_bytes(names, bucket=bck, by_owner=by_owner)
        grouper.learn(datas)
        return datas
    return _in_order(grouper.groups(batches), one, window)


async def _cancel(tasks: Any) -> None:
    tasks = list(tasks)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
