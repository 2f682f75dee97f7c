"""The state one target's handlers share, injected into the aiohttp apps at start-up."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ais import apc
from ais.auth import Gate
from ais.cmap import BucketMD, ClusterMap, Node
from ais.config import Config
from ais.errors import BucketNotFound, ServiceUnavailable
from ais.intra import IntraClient
from ais.membership import MetaStore
from ais.metrics import NodeMetrics
from ais.names import Bucket
from ais.tasks import TaskOwner
from target.backends import Backends
from target.backends.base import Backend
from target.backends.ratelimit import BackendLimiter
from target.fs.mountpaths import Mountpaths
from target.fs.quota import SpaceQuota
from target.load import LoadMonitor

if TYPE_CHECKING:
    from target.ec import EcRuntime
    from target.etl.manager import EtlManager
    from target.remote import ColdFetch
    from target.storage import Storage

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
    backends: Backends
    load: LoadMonitor
    locks: list[asyncio.Lock] = field(default_factory=lambda: [asyncio.Lock() for _ in range(_LOCK_STRIPES)])
    cold: dict[str, "ColdFetch"] = field(default_factory=dict)   # object uname -> cold GET in flight
    background: TaskOwner = field(default_factory=TaskOwner)
    atimes: dict[str, int] = field(default_factory=dict)   # remote object uname -> last read (ns), for LRU
    backend_limits: BackendLimiter = field(default_factory=BackendLimiter)
    quota: SpaceQuota = field(default_factory=SpaceQuota)   # space.capacity_bytes, measured by target.space
    etl: "EtlManager | None" = None   # set at start-up (target.etl.attach)
    gate: Gate | None = None          # authentication and authorization (ais.auth); None when auth is off
    storage: "Storage | None" = None  # mountpaths at runtime (target.storage): set at start-up
    # rebalance (target.rebalance): job ID -> stage ("traverse", "wait") while one runs here, and
    # the ID of the last rebalance this target finished sending for (persisted)
    rebalancing: dict[str, str] = field(default_factory=dict)
    rebalanced: str = ""
    ec: "EcRuntime | None" = None   # erasure coding (target.ec): created on first use

    def spawn(self, coro: Any, name: str) -> None:
        """A background task owned by the target: cancelled and awaited on shutdown."""
        self.background.spawn(coro, name)

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

    async def backend(self, bck: Bucket) -> "Backend":
        """The backend of a remote bucket (created on first use), paced by the bucket's
        `rate_limit.backend` props when it has them."""
        backend = await self.backends.get(bck.provider)
        props = self.bmd.get(bck)
        if props is None:
            return backend
        return self.backend_limits.wrap(backend, bck, props, len(self.smap.active_targets()))

    async def require_bucket(self, bck: Bucket, redirected: bool) -> Mapping[str, Any]:
        """The bucket's props, allowing for bucket metadata still on its way.

        A proxy that just added a bucket may redirect here before its metasync arrives: a
        `redirected` request waits for it briefly. A remote bucket unknown here is asked of the
        primary, which looks it up at the backend and adds it (so direct requests work too).
        """
        props = self.bmd.get(bck)
        if props is not None:
            return props
        if not bck.is_ais:
            params = {apc.Q_PROVIDER: bck.provider}
            await self.http.call("POST", f"{self.smap.primary.intra_url}/v1/rbck/{bck.name}", params=params,
                                 timeout_s=max(self.cfg.timeouts.control_s, 30))
        elif not redirected:
            raise BucketNotFound(bck.cname)
        for _ in range(40):
            await asyncio.sleep(0.05)
            props = self.bmd.get(bck)
            if props is not None:
                return props
        raise BucketNotFound(bck.cname)

    def object_lock(self, uname: str) -> asyncio.Lock:
        return self.locks[hash(uname) % _LOCK_STRIPES]


CTX: web.AppKey[TargetContext] = web.AppKey("target", TargetContext)
