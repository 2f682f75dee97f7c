"""`ais.pytorch` and the official `aistore.pytorch` datasets against a real cluster, through real
DataLoaders (0 and 4 worker processes): every sample exactly once per epoch across workers and
2 simulated ranks, deterministic orders, resumption, 20 WebDataset shards, the batch-get
loader."""

from __future__ import annotations

import io
import os
import random
import tarfile
from collections import Counter
from typing import Any, Iterator

import pytest
import torch
from torch.utils.data import DataLoader

from ais.client import Client
from ais.pytorch import AISBatchLoader, AISIterDataset, AISMapDataset, AISSampler, AISShardDataset
from tests.cluster.conftest import Cluster

N = 240


def _names(batches: Any) -> list[str]:
    return [n for names, _ in batches for n in names]


@pytest.fixture(scope="module")
def ours(cluster: Cluster) -> Iterator[Client]:
    c = Client(cluster.endpoint)
    yield c
    c.close()


@pytest.fixture(scope="module")
def samples(ours: Client) -> Iterator[tuple[str, dict[str, bytes]]]:
    """A bucket of N small objects, shared by the tests of this module (they only read)."""
    name = f"pt-{os.urandom(3).hex()}"
    ours.create_bucket(name)
    rng = random.Random(0)
    data = {f"s/{i:04d}.bin": rng.randbytes(rng.randrange(1, 3000)) for i in range(N)}
    for n, d in data.items():
        ours.put_object(name, n, d)
    yield name, data
    ours.destroy_bucket(name, missing_ok=True)


@pytest.fixture(scope="module")
def shards(ours: Client) -> Iterator[tuple[str, dict[str, dict[str, bytes]]]]:
    """20 TAR shards of 6 samples each (a .jpg and a .cls per sample), WebDataset layout."""
    name = f"wds-{os.urandom(3).hex()}"
    ours.create_bucket(name)
    rng = random.Random(1)
    expected: dict[str, dict[str, bytes]] = {}
    for s in range(20):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for k in range(6):
                key = f"img/{s:02d}-{k}"
                sample = {"jpg": rng.randbytes(rng.randrange(10, 2000)), "cls": str(k).encode()}
                expected[key] = sample
                for ext, payload in sample.items():
                    ti = tarfile.TarInfo(f"{key}.{ext}")
                    ti.size = len(payload)
                    tar.addfile(ti, io.BytesIO(payload))
        ours.put_object(name, f"train-{s:04d}.tar", buf.getvalue())
    ours.put_object(name, "README", b"not a shard")
    yield name, expected
    ours.destroy_bucket(name, missing_ok=True)


def _collate_pairs(batch: list[tuple[str, bytes]]) -> tuple[list[str], list[bytes]]:
    return [n for n, _ in batch], [d for _, d in batch]


# --- ours -----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 4])
def test_map_dataset_through_a_dataloader(ours: Client, samples: Any, workers: int) -> None:
    bname, data = samples
    ds = AISMapDataset(ours, bname, prefix="s/")
    assert len(ds) == N and ds[3] == ("s/0003.bin", data["s/0003.bin"])
    loader = DataLoader(ds, batch_size=16, shuffle=True, num_workers=workers, collate_fn=_collate_pairs,
                        generator=torch.Generator().manual_seed(0))
    got = [(n, d) for names, datas in loader for n, d in zip(names, datas)]
    assert Counter(n for n, _ in got) == Counter(list(data)) and all(d == data[n] for n, d in got)
    # the same minibatches, each fetched with one batch-get
    bg = AISMapDataset(ours, bname, prefix="s/", batch_get=True, transform=len)
    sizes = {n: s for names, ss in DataLoader(bg, batch_size=32, num_workers=workers, collate_fn=_collate_pairs)
             for n, s in zip(names, ss)}
    assert sizes == {n: len(d) for n, d in data.items()}


def test_sampler_splits_two_ranks_and_resumes(samples: Any, ours: Client) -> None:
    bname, data = samples
    ds = AISMapDataset(ours, bname, prefix="s/", transform=len)
    per_rank = []
    for rank in range(2):
        sampler = AISSampler(ds, batch_size=10, seed=4, rank=rank, world_size=2)
        sampler.set_epoch(1)
        per_rank.append([n for names, _ in DataLoader(ds, batch_size=10, sampler=sampler, num_workers=2,
                                                       collate_fn=_collate_pairs) for n in names])
    assert not set(per_rank[0]) & set(per_rank[1]) and sorted(per_rank[0] + per_rank[1]) == sorted(data)
    sampler = AISSampler(ds, batch_size=10, seed=4, rank=1, world_size=2)
    sampler.set_epoch(1, step=5)
    resumed = [n for names, _ in DataLoader(ds, batch_size=10, sampler=sampler, collate_fn=_collate_pairs)
               for n in names]
    assert resumed == per_rank[1][50:]


def test_iterable_dataset_every_sample_once_across_two_ranks_and_four_workers(ours: Client, samples: Any) -> None:
    bname, data = samples
    seen: list[str] = []
    orders = {}
    for rank in range(2):
        ds = AISIterDataset(ours, bname, prefix="s/", shuffle=True, seed=7, batch_size=8, rank=rank, world_size=2)
        ds.set_epoch(3)
        for workers in (0, 4):
            loader = DataLoader(ds, batch_size=8, num_workers=workers, collate_fn=_collate_pairs)
            got = [(n, d) for names, datas in loader for n, d in zip(names, datas)]
            assert all(d == data[n] for n, d in got)
            orders[(rank, workers)] = [n for n, _ in got]
        assert orders[(rank, 0)] == orders[(rank, 4)]     # the same order under any number of workers
        assert len(ds) == len(orders[(rank, 0)])
        seen += orders[(rank, 0)]
    assert Counter(seen) == Counter(list(data))       # exactly once across the ranks
    # another epoch, another order; resuming at step 7 continues the interrupted sequence
    ds = AISIterDataset(ours, bname, prefix="s/", shuffle=True, seed=7, batch_size=8, rank=0, world_size=2)
    ds.set_epoch(4)
    epoch4 = _names(DataLoader(ds, batch_size=8, num_workers=4, collate_fn=_collate_pairs))
    assert len(set(epoch4)) == len(orders[(0, 0)]) and epoch4 != orders[(0, 0)]
    ds.set_epoch(3, step=7)
    assert _names(DataLoader(ds, batch_size=8, num_workers=4, collate_fn=_collate_pairs)) == orders[(0, 0)][56:]


def _data_requests(client: Client) -> int:
    return client.stats.requests - client.stats.map_fetches


@pytest.mark.parametrize("workers", [0, 4])
def test_batch_loader_minibatches_by_batch_get(ours: Client, samples: Any, workers: int) -> None:
    bname, data = samples
    loader = AISBatchLoader(ours, bname, prefix="s/", batch_size=32, shuffle=True, seed=2, request_bytes=0,
                            by_owner=False)
    assert len(loader) == (N + 31) // 32
    batches = list(DataLoader(loader, batch_size=None, num_workers=workers))
    assert [len(names) for names, _ in batches] == [32] * (N // 32) + ([N % 32] if N % 32 else [])
    assert Counter(_names(batches)) == Counter(list(data))
    assert all(d == data[n] for names, datas in batches for n, d in zip(names, datas))
    if workers == 0:
        # request_bytes=0: one GetBatch per minibatch (all in this process here); the order is seeded
        before = _data_requests(ours)
        again = list(DataLoader(loader, batch_size=None))
        assert _data_requests(ours) - before == len(again) and _names(again) == _names(batches)
        # grouped: the first `prefetch` requests carry one minibatch each, then ~request_bytes
        # (mean sample ~1.5 KB: 3 minibatches of 32 in 150 KB); the same minibatches come out
        grouped = AISBatchLoader(ours, bname, prefix="s/", batch_size=32, shuffle=True, seed=2,
                                 request_bytes=150_000, by_owner=False)
        before = _data_requests(ours)
        assert list(DataLoader(grouped, batch_size=None)) == again
        assert _data_requests(ours) - before == 2 + 2   # 1 + 1 + 3 + 3 of the 8 minibatches
        # by owner: a minibatch is one request per target owning some of its samples
        split = AISBatchLoader(ours, bname, prefix="s/", batch_size=32, shuffle=True, seed=2, request_bytes=0)
        smap = ours.cluster_map()
        owners = [len({smap.owner(f"ais/@#/{bname}/{n}").id for n in names}) for names, _ in again]
        before = _data_requests(ours)
        assert list(DataLoader(split, batch_size=None)) == again
        assert _data_requests(ours) - before == sum(owners) and max(owners) > 1
        # resuming at step 3 of the epoch, with 4 workers, gives the rest of the same sequence
        loader.set_epoch(0, step=3)
        rest = list(DataLoader(loader, batch_size=None, num_workers=4))
        assert _names(rest) == _names(batches)[3 * 32:]


def test_batch_loader_two_ranks_with_transform_and_collate(ours: Client, samples: Any) -> None:
    bname, data = samples
    got = []
    for rank in range(2):
        loader = AISBatchLoader(ours, bname, prefix="s/", batch_size=20, drop_last=True, rank=rank, world_size=2,
                                transform=len, collate=torch.tensor)
        for names, sizes in DataLoader(loader, batch_size=None, num_workers=2):
            assert isinstance(sizes, torch.Tensor) and sizes.tolist() == [len(data[n]) for n in names]
            got += names
    assert Counter(got) == Counter(list(data))


def test_shard_dataset_over_20_shards(ours: Client, shards: Any) -> None:
    bname, expected = shards
    ds = AISShardDataset(ours, bname, shuffle_shards=True, shuffle_buffer=10, seed=3, batch_size=4)
    assert len(ds.shards) == 20 and "README" not in ds.shards
    assert len(ds) == len(expected)

    def collect(workers: int, **kw: Any) -> list[dict[str, Any]]:
        return [s for batch in DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=list, **kw)
                for s in batch]
    got = collect(4)
    assert Counter(s["__key__"] for s in got) == Counter(list(expected))
    for s in got:
        assert {k: v for k, v in s.items() if not k.startswith("__")} == expected[s["__key__"]]
        assert s["__shard__"] == f"train-{int(s['__key__'][4:6]):04d}.tar"
    assert [s["__key__"] for s in collect(4)] == [s["__key__"] for s in got]   # seeded
    ds.set_epoch(1)
    epoch1 = [s["__key__"] for s in collect(4)]
    assert epoch1 != [s["__key__"] for s in got] and sorted(epoch1) == sorted(expected)
    ds.set_epoch(1, step=5)
    assert [s["__key__"] for s in collect(4)] == epoch1[20:]
    # two ranks: shards dealt whole, nothing read twice
    keys = []
    for rank in range(2):
        r = AISShardDataset(ours, bname, seed=3, rank=rank, world_size=2)
        keys += [s["__key__"] for s in r]
    assert Counter(keys) == Counter(list(expected))


def test_etl_name_is_sent_on_every_read(ours: Client, samples: Any) -> None:
    """No ETL runtime on this cluster: a GET with etl_name must reach the target with it and fail
    there, rather than silently returning the raw object."""
    bname, _ = samples
    ds = AISMapDataset(ours, bname, names=["s/0000.bin"], etl_name="no-such-etl")
    with pytest.raises(Exception) as ei:
        ds[0]
    assert "no-such-etl" in str(ei.value) or "etl" in str(ei.value).lower()


# --- the official SDK's datasets ------------------------------------------------------------

def test_official_map_and_iter_datasets(cluster: Cluster, samples: Any) -> None:
    from aistore import Client as SdkClient
    from aistore.pytorch import AISIterDataset as SdkIter
    from aistore.pytorch import AISMapDataset as SdkMap
    bname, data = samples
    bck = SdkClient(cluster.endpoint).bucket(bname)
    ds = SdkMap(ais_source_list=[bck], prefix_map={bck: "s/"})
    assert len(ds) == N
    got = {n: d for names, datas in DataLoader(ds, batch_size=16, num_workers=2, collate_fn=_collate_pairs)
           for n, d in zip(names, datas)}
    assert got == data
    it = SdkIter(ais_source_list=[bck], prefix_map={bck: "s/"})
    got_it = [(n, d) for names, datas in DataLoader(it, batch_size=16, num_workers=2, collate_fn=_collate_pairs)
              for n, d in zip(names, datas)]
    assert Counter(n for n, _ in got_it) == Counter(list(data)) and all(d == data[n] for n, d in got_it)


def test_official_shard_reader_and_multishard_stream(cluster: Cluster, shards: Any) -> None:
    from aistore import Client as SdkClient
    from aistore.pytorch import AISMultiShardStream, AISShardReader
    bname, expected = shards
    bck = SdkClient(cluster.endpoint).bucket(bname)
    reader = AISShardReader(bucket_list=[bck], prefix_map={bck: "train-"})
    # the SDK keys samples by the file's base name without its directory
    got = {f"img/{key}": {k: v for k, v in content.items() if v} for key, content in reader}
    assert got == expected
    # (AISShardReader.__len__ is broken in SDK 2.0.0 itself: it reads `Object.bucket`, which is gone)
    # two shard streams zipped: row i = the i-th file (by name) of each shard, read with archpath
    from aistore.sdk.dataset.data_shard import DataShard
    sources = [DataShard(client_url=cluster.endpoint, bucket_name=bname, prefix=f"train-{s:04d}.tar") for s in (0, 1)]
    rows = list(AISMultiShardStream(data_sources=sources))

    def files(s: int) -> list[bytes]:
        return [expected[f"img/{s:02d}-{k}"][ext] for k in range(6) for ext in ("cls", "jpg")]
    assert rows == list(zip(files(0), files(1)))


def test_official_batch_iter_dataset(cluster: Cluster, samples: Any) -> None:
    from aistore import Client as SdkClient
    from aistore.pytorch.batch_iter_dataset import AISBatchIterDataset
    bname, data = samples
    sdk = SdkClient(cluster.endpoint)
    bck = sdk.bucket(bname)
    ds = AISBatchIterDataset(ais_source_list=[bck], client=sdk, prefix_map={bck: "s/"}, max_batch_size=25)
    got = [(n, d) for names, datas in DataLoader(ds, batch_size=16, num_workers=2, collate_fn=_collate_pairs)
           for n, d in zip(names, datas)]
    assert Counter(n for n, _ in got) == Counter(list(data)) and all(d == data[n] for n, d in got)


def test_readme_client_example(cluster: Cluster, ours: Client) -> None:
    import contextlib
    import re
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        block = re.search(r"## Our client and PyTorch loaders.*?```python\n(.*?)```", f.read(), re.S)
    assert block, "README lost its client example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1).replace("http://127.0.0.1:8080", cluster.endpoint), "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[:2] == [repr(bytes([7]) * 4), repr(["train/0000.bin", "train/0001.bin", "train/0002.bin"])]
    assert lines[2:] == ["25 100"] * 4
    ours.destroy_bucket("ds")
