"""`ais.pytorch`: PyTorch datasets over the cluster, read through `ais.client`.

- `AISMapDataset`: random access (`ds[i]` -> `(name, bytes)`); a DataLoader batch is fetched
  concurrently, or with one batch-get (`batch_get=True`). `AISSampler` orders it per rank.
- `AISIterDataset`: a stream of `(name, bytes)` split over DataLoader workers and ranks.
- `AISShardDataset`: WebDataset-style samples from TAR shards, with shard and sample shuffles.
- `AISBatchLoader`: minibatches, each one batch-get request (`DataLoader(batch_size=None)`).

Every order is fixed by (seed, epoch) and resumable with `set_epoch(epoch, step)`; each takes
an optional `etl_name` applied on read. How work is split: `plan.py`.
"""

from ais.pytorch.datasets import (AISBatchLoader, AISIterDataset, AISMapDataset, AISSampler, current_split,
                                  distributed_rank)
from ais.pytorch.plan import Split
from ais.pytorch.shards import AISShardDataset

__all__ = ["AISBatchLoader", "AISIterDataset", "AISMapDataset", "AISSampler", "AISShardDataset", "Split",
           "current_split", "distributed_rank"]
