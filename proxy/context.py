"""The state a proxy's handlers share, injected into its aiohttp apps at start-up."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ais.auth import Gate
from ais.cmap import BucketMD, ClusterMap, Node
from ais.config import Config
from ais.errors import ServiceUnavailable
from ais.intra import IntraClient
from ais.membership import MetaStore
from ais.metrics import NodeMetrics
from ais.tasks import TaskOwner
from proxy.ratelimit import RateLimiter


@dataclass
class ProxyContext:
    cfg: Config
    me: Node
    store: MetaStore
    http: IntraClient
    metrics: NodeMetrics
    started_ns: int
    last_seen: dict[str, float] = field(default_factory=dict)   # node ID -> loop time of last keepalive
    meta_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # serialises metadata changes (primary)
    background: TaskOwner = field(default_factory=TaskOwner)
    limiter: RateLimiter = field(default_factory=RateLimiter)   # front-end rate limits per bucket and verb
    finalizing: set[str] = field(default_factory=set)  # job IDs whose proxy-side finish is pending
    # threads that splice large response bodies (each holds one relay for its duration)
    relay_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=64, thread_name_prefix="relay"))
    gate: Gate | None = None     # authentication and authorization (ais.auth); None when auth is off

    def sign_location(self, request: web.Request, location: str) -> str:
        """A redirect's Location, signed so that the target trusts it when auth is on."""
        return location if self.gate is None else self.gate.sign_location(request, location)

    @property
    def smap(self) -> ClusterMap:
        if self.store.smap is None:
            raise ServiceUnavailable("proxy has no cluster map yet")
        return self.store.smap

    @property
    def bmd(self) -> BucketMD:
        if self.store.bmd is None:
            raise ServiceUnavailable("proxy has no bucket metadata yet")
        return self.store.bmd

    @property
    def is_primary(self) -> bool:
        return self.store.smap is not None and self.store.smap.primary_id == self.me.id

    def spawn(self, coro: Any, name: str) -> None:
        """A background task owned by the proxy: awaited on shutdown, failures logged."""
        self.background.spawn(coro, name)


CTX: web.AppKey[ProxyContext] = web.AppKey("proxy", ProxyContext)
