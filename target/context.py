"""The state one target's handlers share, injected into the aiohttp apps at start-up."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ais.cmap import BucketMD, ClusterMap, Node
from ais.config import Config
from ais.errors import BucketNotFound, ServiceUnavailable
from ais.intra import IntraClient
from ais.membership import MetaStore
from ais.metrics import NodeMetrics
from ais.names import Bucket
from target.fs.mountpaths import Mountpaths

_LOCK_STRIPES = 1024


@dataclass
class TargetContext:
    cfg: Config
    me: Node
    store: MetaStore
    mountpaths: Mountpaths
    http: IntraClient
    metrics: NodeMetrics
    started_ns: int
    locks: list[asyncio.Lock] = field(default_factory=lambda: [asyncio.Lock() for _ in range(_LOCK_STRIPES)])

    @property
    def smap(self) -> ClusterMap:
        if self.store.smap is None:
            raise ServiceUnavailable("target has not joined the cluster yet")
        return self.store.smap

    @property
    def bmd(self) -> BucketMD:
        if self.store.bmd is None:
            raise ServiceUnavailable("target has no bucket metadata yet")
        return self.store.bmd

    def bucket_props(self, bck: Bucket) -> Mapping[str, Any]:
        """The bucket's props (read-only: bucket metadata is immutable)."""
        props = self.bmd.get(bck)
        if props is None:
            raise BucketNotFound(bck.cname)
        return props

    def object_lock(self, uname: str) -> asyncio.Lock:
        return self.locks[hash(uname) % _LOCK_STRIPES]


CTX: web.AppKey[TargetContext] = web.AppKey("target", TargetContext)
