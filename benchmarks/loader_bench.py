"""PyTorch loaders over the cluster: samples/s through a DataLoader with 4 workers.

One run, one cluster (1 proxy, 3 targets, 2 mountpaths each, on loopback), N samples
(default 20,000 × 16 KiB) stored as objects, as 20 TAR shards, and as plain files in a local
directory. Each case reads every sample once per round through `DataLoader(num_workers=4)`,
64 samples a batch, shuffled:

  (a) ours-direct   ais.pytorch.AISIterDataset, GETs straight to the owning targets (16 in flight per worker)
  (b) ours-proxy    the same through the proxy (each GET redirected)
  (c) sdk-map       the official aistore.pytorch.AISMapDataset (one blocking GET per sample)
  (d) shards        ais.pytorch.AISShardDataset over the 20 shards (shard shuffle, 1,000-sample buffer)
  (e) batch-get     ais.pytorch.AISBatchLoader: GetBatch requests of ~8 MiB (several minibatches), one per
                    owning target (2 in flight per worker)
  (f) local-disk    the same files read with open().read() by a map-style dataset: the ceiling
  (g) no-io         batches of zero bytes made in the workers, no reads at all: what the DataLoader's
                    own plumbing (worker -> main pickling through a pipe) costs, the floor under (f)

Rounds interleave the cases so machine drift hits all alike; the table has medians and each
case's ratio to (f). Issue-6 target: (e) >= 0.5 x (f). Everything (cluster, workers, this
process) shares the machine's cores; each row also has the CPU time per sample of the cluster's
nodes and of the client side (this process and its DataLoader workers), steadier than
throughput on a shared machine.

    .venv/bin/python benchmarks/loader_bench.py [--samples 20000] [--size-kib 16] [--reps 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import resource
import statistics
import sys
import tarfile
import tempfile
import time
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ais.cli import localcluster  # noqa: E402
from ais.client import AsyncClient, Client  # noqa: E402
from ais.pytorch import AISBatchLoader, AISIterDataset, AISShardDataset  # noqa: E402
from tests.cluster.conftest import free_base_port  # noqa: E402

BUCKET = "bench-loader"
SHARDS = 20
BATCH = 64
WORKERS = 4


def as_list(batch: list[Any]) -> list[Any]:
    return batch


class LocalFiles(Dataset[tuple[str, bytes]]):
    def __init__(self, root: str, names: list[str]) -> None:
        self.root, self.names = root, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[str, bytes]:
        with open(os.path.join(self.root, self.names[i]), "rb") as f:
            return self.names[i], f.read()


class NoIO(IterableDataset[tuple[list[str], list[bytes]]]):
    """Each worker's share of the minibatches, made of `bytes(size)`: no storage at all."""

    def __init__(self, names: list[str], size: int) -> None:
        self.names, self.size = names, size

    def __iter__(self) -> Any:
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        for start in range(w * BATCH, len(self.names), n * BATCH):
            names = self.names[start:start + BATCH]
            yield names, [bytes(self.size) for _ in names]


def node_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the cluster's node processes have used so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def client_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the DataLoader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def count(loader: Any, per_item: Callable[[Any], int]) -> int:
    return sum(per_item(batch) for batch in loader)


async def load(endpoint: str, data: dict[str, bytes], shards: dict[str, bytes]) -> None:
    async with AsyncClient(endpoint) as c:
        await c.create_bucket(BUCKET)
        items = list(data.items()) + list(shards.items())
        sem = asyncio.Semaphore(32)

        async def put(name: str, payload: bytes) -> None:
            async with sem:
                await c.put_object(BUCKET, name, payload)
        await asyncio.gather(*(put(n, d) for n, d in items))


def make_data(n: int, size: int, root: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    rng = random.Random(0)
    data = {f"s/{i:06d}.bin": rng.randbytes(size) for i in range(n)}
    os.makedirs(os.path.join(root, "s"), exist_ok=True)
    for name, payload in data.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(payload)
    shards = {}
    names = list(data)
    per = (n + SHARDS - 1) // SHARDS
    for s in range(SHARDS):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in names[s * per:(s + 1) * per]:
                ti = tarfile.TarInfo(name[2:])
                ti.size = size
                tar.addfile(ti, io.BytesIO(data[name]))
        shards[f"shards/train-{s:04d}.tar"] = buf.getvalue()
    return data, shards


def cases(endpoint: str, root: str, names: list[str], direct: Client, proxied: Client,
          size: int) -> dict[str, Callable[[], int]]:
    dl = dict(num_workers=WORKERS, prefetch_factor=4)

    def ours(client: Client) -> Callable[[], int]:
        ds = AISIterDataset(client, BUCKET, names=names, shuffle=True, batch_size=BATCH)
        return lambda: count(DataLoader(ds, batch_size=BATCH, collate_fn=as_list, **dl), len)

    def sdk_map() -> int:
        from aistore import Client as SdkClient
        from aistore.pytorch import AISMapDataset as SdkMap
        bck = SdkClient(endpoint).bucket(BUCKET)
        ds = SdkMap(ais_source_list=[bck], prefix_map={bck: "s/"})
        return count(DataLoader(ds, batch_size=BATCH, shuffle=True, collate_fn=as_list, **dl), len)

    shard_ds = AISShardDataset(direct, BUCKET, prefix="shards/", shuffle_buffer=1000, batch_size=BATCH)
    batch_ds = AISBatchLoader(direct, BUCKET, names=names, batch_size=BATCH, shuffle=True)
    local = LocalFiles(root, names)
    return {
        "a-ours-direct": ours(direct),
        "b-ours-proxy": ours(proxied),
        "c-sdk-map": sdk_map,
        "d-shards": lambda: count(DataLoader(shard_ds, batch_size=BATCH, collate_fn=as_list, **dl), len),
        "e-batch-get": lambda: count(DataLoader(batch_ds, batch_size=None, **dl), lambda b: len(b[0])),
        "f-local-disk": lambda: count(DataLoader(local, batch_size=BATCH, shuffle=True, collate_fn=as_list, **dl),
                                      len),
        "g-no-io": lambda: count(DataLoader(NoIO(names, size), batch_size=None, **dl), lambda b: len(b[0])),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--size-kib", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated case prefixes (a,b,...)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  f"loader-{time.strftime('%Y%m%d')}.jsonl"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = tempfile.mkdtemp(prefix="loader-bench-")
    root = os.path.join(work, "local")
    spec = localcluster.up(os.path.join(work, "cluster"), 1, 3, 2, free_base_port(8), fsync=False)
    rows: list[dict[str, Any]] = []
    clients: list[Client] = []
    try:
        t0 = time.perf_counter()
        data, shards = make_data(args.samples, args.size_kib << 10, root)
        asyncio.run(load(spec.endpoint, data, shards))
        print(f"loaded {len(data)} objects, {len(shards)} shards and local files in {time.perf_counter() - t0:.0f}s",
              flush=True)
        names = list(data)
        pids = [n.pid for n in spec.nodes]
        direct, proxied = Client(spec.endpoint), Client(spec.endpoint, direct=False)
        clients.extend((direct, proxied))
        todo = cases(spec.endpoint, root, names, direct, proxied, args.size_kib << 10)
        if args.only:
            todo = {k: v for k, v in todo.items() if k[0] in args.only.split(",")}
        times: dict[str, list[float]] = {k: [] for k in todo}
        for rep in range(args.reps):
            for name, run in todo.items():
                t, node0, client0 = time.perf_counter(), node_cpu_s(pids), client_cpu_s()
                got = run()
                dt = time.perf_counter() - t
                node_us, client_us = ((node_cpu_s(pids) - node0) / got * 1e6, (client_cpu_s() - client0) / got * 1e6)
                if got != len(names):
                    raise SystemExit(f"{name}: read {got} samples, expected {len(names)}")
                times[name].append(dt)
                row = {"case": name, "rep": rep, "samples": got, "size_kib": args.size_kib, "seconds": round(dt, 3),
                       "samples_per_s": round(got / dt, 1), "workers": WORKERS, "batch": BATCH,
                       "cluster_cpu_us_per_sample": round(node_us, 1), "client_cpu_us_per_sample": round(client_us, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for c in clients:
            c.close()
        localcluster.down(os.path.join(work, "cluster"))
    med = {k: len(names) / statistics.median(v) for k, v in times.items()}
    ceiling = med.get("f-local-disk")
    print(f"\n| case | samples/s (median of {args.reps}) | × local disk |\n|---|---:|---:|")
    for k, v in med.items():
        ratio = f"{v / ceiling:.2f}" if ceiling else "-"
        print(f"| {k} | {v:,.0f} | {ratio} |")
        rows.append({"case": k, "summary": True, "median_samples_per_s": round(v, 1),
                     "vs_local_disk": round(v / ceiling, 3) if ceiling else None})
    if ceiling and "e-batch-get" in med:
        ok = med["e-batch-get"] >= 0.5 * ceiling
        print(f"\ntarget (e) >= 0.5 x (f): {'met' if ok else 'NOT met'} ({med['e-batch-get'] / ceiling:.2f})")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
