"""Where an object request goes: straight to its owning target, or to a proxy.

The router holds the client's copy of the cluster map and makes every routing decision
without I/O (the client core fetches maps and reports what happened), so the decisions can
be tested on their own:

- no map yet, direct routing off, no active target, or the owner recently unreachable
  -> a proxy (which redirects to the owner);
- otherwise the owner by HRW (`ais.hrw`, as the cluster computes it) -> its public URL.

The map is refreshed when it is older than `ttl_s`, and sooner (at most every
`min_refresh_s`) after a target answered with a redirect (it is not the owner: the map moved),
after a target could not be reached, or after a direct read found nothing where the map
pointed. Proxies: the endpoint first, then the others of the map, rotated on connect errors.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ais.cmap import ClusterMap
from ais.moss import owners
from ais.names import Bucket


BATCH_ROUTE_SAMPLE = 128


@dataclass(frozen=True, slots=True)
class Route:
    base_url: str
    target_id: str = ""      # empty: a proxy

    @property
    def direct(self) -> bool:
        return bool(self.target_id)


class Router:
    def __init__(self, endpoint: str, *, direct: bool = True, ttl_s: float = 60.0, min_refresh_s: float = 0.5,
                 suspect_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.direct = direct
        self.ttl_s = ttl_s
        self.min_refresh_s = min_refresh_s
        self.suspect_s = suspect_s
        self.clock = clock
        self.smap: ClusterMap | None = None
        self._fetched_at = float("-inf")
        self._retry_at = float("-inf")     # no map fetch before this (min_refresh_s apart)
        self._stale = False
        self._suspects: dict[str, float] = {}
        self._proxies = [self.endpoint]
        self._proxy_index = 0

    # --- decisions ---------------------------------------------------------------------------

    def proxy_url(self) -> str:
        return self._proxies[self._proxy_index % len(self._proxies)]

    def route_object(self, bck: Bucket, name: str) -> Route:
        smap = self.smap
        if not self.direct or smap is None:
            return Route(self.proxy_url())
        owner = smap.owner(bck.object_uname(name))
        if owner is None:
            return Route(self.proxy_url())
        until = self._suspects.get(owner.id)
        if until is not None:
            if self.clock() < until:
                return Route(self.proxy_url())
            del self._suspects[owner.id]
        return Route(owner.public_url, owner.id)

    def route_batch(self, items: Sequence[tuple[Bucket, str]]) -> Route:
        """A batch-get goes to the target that owns most of its entries (fewest bytes between
        targets), as the proxy would choose with `coloc=1`; a proxy when that one is suspect.
        Owners are counted over at most `BATCH_ROUTE_SAMPLE` entries spread over the batch: HRW
        costs microseconds an entry, and a sample finds the main owner of a big batch as well."""
        smap = self.smap
        if not self.direct or smap is None or not items:
            return Route(self.proxy_url())
        counts: collections.Counter[str] = collections.Counter()
        step = -(-len(items) // BATCH_ROUTE_SAMPLE)   # ceil: at most BATCH_ROUTE_SAMPLE entries
        for bck, name in items[::step]:
            owner = smap.owner(bck.object_uname(name))
            if owner is not None:
                counts[owner.id] += 1
        if not counts:
            return Route(self.proxy_url())
        best = counts.most_common(1)[0][0]
        until = self._suspects.get(best)
        if until is not None:
            if self.clock() < until:
                return Route(self.proxy_url())
            del self._suspects[best]
        return Route(smap.targets[best].public_url, best)

    def split_batch(self, items: Sequence[tuple[Bucket, str]]) -> list[list[int]]:
        """The positions of a batch's items grouped by owning target (in order of first
        appearance, each group in request order); one group of all when routing is not direct
        or no map is known (a proxy, or whoever answers, then gathers the entries)."""
        smap = self.smap
        if not self.direct or smap is None:
            return [list(range(len(items)))]
        groups: dict[str, list[int]] = {}
        for i, owner in enumerate(owners(smap, [bck.object_uname(name) for bck, name in items])):
            groups.setdefault(owner.id if owner is not None else "", []).append(i)
        return list(groups.values())

    def needs_refresh(self) -> bool:
        """Fetch the map before routing? (Only direct routing needs one.)"""
        if not self.direct:
            return False
        now = self.clock()
        if now < self._retry_at:
            return False
        return self.smap is None or self._stale or now - self._fetched_at >= self.ttl_s

    def may_recheck(self) -> bool:
        """After a direct read found nothing: is a fresher map worth asking for now?"""
        return self.direct and self.clock() >= self._retry_at

    # --- what happened -----------------------------------------------------------------------

    def install(self, smap: ClusterMap) -> bool:
        """A freshly fetched map; True if its version moved."""
        old = self.smap
        moved = old is None or smap.version != old.version or smap.uuid != old.uuid
        # an older version of the same cluster comes from a lagging proxy: keep ours
        if old is None or smap.version >= old.version or smap.uuid != old.uuid:
            self.smap = smap
        self._fetched_at = self.clock()
        self._retry_at = self._fetched_at + self.min_refresh_s
        self._stale = False
        others = [p.public_url.rstrip("/") for p in smap.proxies.values()
                  if not p.in_maintenance and p.public_url.rstrip("/") != self.endpoint]
        current = self.proxy_url()
        self._proxies = [self.endpoint] + sorted(others)
        self._proxy_index = self._proxies.index(current) if current in self._proxies else 0
        if moved:
            self._suspects.clear()
        return moved

    def fetch_failed(self) -> None:
        """A map fetch failed: do not ask again before min_refresh_s (keep routing by the old map)."""
        self._retry_at = self.clock() + self.min_refresh_s

    def mark_stale(self) -> None:
        self._stale = True

    def target_unreachable(self, target_id: str) -> None:
        self._suspects[target_id] = self.clock() + self.suspect_s
        self._stale = True

    def proxy_unreachable(self) -> None:
        self._proxy_index = (self._proxy_index + 1) % len(self._proxies)
