"""Cluster metadata on every node: the persisted store, the metasync receiver, and joining.

`MetaStore` holds the current cluster map and bucket metadata, accepts only newer versions,
and persists each before applying it. `ClusterAgent` registers a non-primary node with the
primary, sends keepalives, pulls metadata when the primary reports a newer version, and
finds the new primary (or asks for an election, ais/election.py) when the primary is gone.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from ais import apc, election
from ais.auth import AuthMD
from ais.cmap import AccessKeys, BucketMD, ClusterMap, Node, RebalanceMD
from ais.config import ConfigMD
from ais.etl import EtlMD
from ais.errors import BadMessage, Forbidden, ServiceUnavailable
from ais.intra import IntraClient, PeerError
from ais.web import read_json

log = logging.getLogger(__name__)

Listener = Callable[[ClusterMap | None, BucketMD | None], Awaitable[None]]
DocListener = Callable[[Any], Awaitable[None]]

SMAP_FILE = "cluster_map.json"
BMD_FILE = "bucket_md.json"
KEYS_FILE = "access_keys.json"  # secrets: written 0600
ETL_FILE = "etl_md.json"        # holds the ETLs' callback secrets: written 0600
CONFIG_FILE = "cluster_config.json"   # runtime config changes (set-config) over the node's own config
RMD_FILE = "rebalance_md.json"
AUTH_FILE = "auth_md.json"      # the redirect-signing key and revoked tokens: written 0600
ID_FILE = "node_id"


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Blocking: temp file, fsync, rename, fsync dir. Call through an executor."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_or_create_id(conf_dir: str, configured: str) -> str:
    """Blocking, start-up only: the node ID survives restarts."""
    os.makedirs(conf_dir, exist_ok=True)
    path = os.path.join(conf_dir, ID_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            stored = f.read().strip()
        if stored:
            return stored
    node_id = configured or _random_id()
    write_atomic(path, node_id.encode())
    return node_id


def _random_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(alphabet[b % len(alphabet)] for b in os.urandom(8))


@dataclass(frozen=True)
class Doc:
    """A versioned cluster-wide document besides the cluster map and bucket metadata: persisted
    on every node, sent in metasync payloads under `wire`, its version carried by keepalives as `ack`."""
    attr: str           # MetaStore attribute and `apply()` keyword
    wire: str
    ack: str
    file: str
    cls: Any            # from_wire / to_wire / version
    mode: int = 0o644


DOCS = (
    Doc("keys", "s3keys", "keys_version", KEYS_FILE, AccessKeys, 0o600),   # secrets
    Doc("etl", "etlmd", "etl_version", ETL_FILE, EtlMD, 0o600),            # the ETLs' callback secrets
    Doc("config", "config", "config_version", CONFIG_FILE, ConfigMD),
    Doc("rmd", "rmd", "rmd_version", RMD_FILE, RebalanceMD),
    Doc("auth", "authmd", "auth_version", AUTH_FILE, AuthMD, 0o600),    # secrets
)
ACK_NAMES = ("smap_version", "bmd_version", *(d.ack for d in DOCS))   # keepalive fields, in versions() order


class MetaStore:
    def __init__(self, conf_dir: str) -> None:
        self.conf_dir = conf_dir
        self.smap: ClusterMap | None = None
        self.bmd: BucketMD | None = None
        self.keys: AccessKeys | None = None
        self.etl: EtlMD | None = None
        self.config: ConfigMD | None = None
        self.rmd: RebalanceMD | None = None
        self.auth: AuthMD | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self._doc_listeners: dict[str, list[DocListener]] = {d.attr: [] for d in DOCS}

    def subscribe(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def subscribe_doc(self, attr: str, fn: DocListener) -> None:
        """`fn(doc)` after every newer version of the document `attr` (see DOCS) is persisted."""
        self._doc_listeners[attr].append(fn)

    def subscribe_etl(self, fn: DocListener) -> None:
        self.subscribe_doc("etl", fn)

    def load(self) -> None:
        """Blocking, start-up only."""
        docs: tuple[tuple[str, str, Any], ...] = (
            (SMAP_FILE, "smap", ClusterMap), (BMD_FILE, "bmd", BucketMD), *((d.file, d.attr, d.cls) for d in DOCS))
        for name, attr, cls in docs:
            path = os.path.join(self.conf_dir, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    setattr(self, attr, cls.from_wire(json.load(f)))

    async def apply(self, smap: ClusterMap | None = None, bmd: BucketMD | None = None, **docs: Any) -> bool:
        """Accept newer versions only; persist, then apply, then notify. True if anything changed.
        `docs`: new versions of the documents in DOCS, by attribute name."""
        return await self._apply(smap, bmd, docs, force=False)

    async def adopt(self, smap: ClusterMap | None = None, bmd: BucketMD | None = None, **docs: Any) -> bool:
        """`apply`, taking the given versions even where not newer: a primary that stepped down
        adopts the new primary's (its own may hold changes it made but never metasynced)."""
        return await self._apply(smap, bmd, docs, force=True)

    async def _apply(self, smap: ClusterMap | None, bmd: BucketMD | None, docs: Mapping[str, Any], force: bool) -> bool:
        async with self._lock:
            if smap is not None and self.smap is not None:
                if smap.uuid and self.smap.uuid and smap.uuid != self.smap.uuid:
                    raise Forbidden(f"cluster map of another cluster ({smap.uuid} != {self.smap.uuid})")
                if smap.version <= self.smap.version and not (force and smap != self.smap):
                    smap = None
            if bmd is not None and self.bmd is not None:
                if bmd.uuid and self.bmd.uuid and bmd.uuid != self.bmd.uuid:
                    raise Forbidden(f"bucket metadata of another cluster ({bmd.uuid} != {self.bmd.uuid})")
                if bmd.version <= self.bmd.version and not (force and bmd != self.bmd):
                    bmd = None
            newer = [(d, docs[d.attr]) for d in DOCS if docs.get(d.attr) is not None and
                     (getattr(self, d.attr) is None or docs[d.attr].version > getattr(self, d.attr).version
                      or (force and docs[d.attr] != getattr(self, d.attr)))]
            if smap is None and bmd is None and not newer:
                return False
            # persist everything, then switch to it all at once: a request must never see the
            # new cluster map without the rebalance that came with it
            loop = asyncio.get_running_loop()
            if smap is not None:
                await loop.run_in_executor(None, write_atomic, os.path.join(self.conf_dir, SMAP_FILE),
                                           json.dumps(smap.to_wire()).encode())
            if bmd is not None:
                await loop.run_in_executor(None, write_atomic, os.path.join(self.conf_dir, BMD_FILE),
                                           json.dumps(bmd.to_wire()).encode())
            for d, doc in newer:
                await loop.run_in_executor(None, write_atomic, os.path.join(self.conf_dir, d.file),
                                           json.dumps(doc.to_wire()).encode(), d.mode)
            if smap is not None:
                self.smap = smap
            if bmd is not None:
                self.bmd = bmd
            for d, doc in newer:
                setattr(self, d.attr, doc)
        for d, doc in newer:
            for doc_fn in self._doc_listeners[d.attr]:
                try:
                    await doc_fn(doc)
                except Exception:  # noqa: BLE001 - as below
                    log.exception("%s listener failed", d.wire)
        if smap is None and bmd is None:
            return True
        for fn in self._listeners:
            try:
                await fn(smap, bmd)
            except Exception:  # noqa: BLE001 - a listener failure must not undo a persisted version
                log.exception("metadata listener failed")
        return True

    async def apply_wire(self, payload: Mapping[str, Any], force: bool = False) -> bool:
        try:
            smap = ClusterMap.from_wire(payload["smap"]) if payload.get("smap") else None
            bmd = BucketMD.from_wire(payload["bmd"]) if payload.get("bmd") else None
            docs = {d.attr: d.cls.from_wire(payload[d.wire]) for d in DOCS if payload.get(d.wire)}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:   # e.g. a list where a map belongs
            raise BadMessage(f"malformed metasync payload: {exc}") from exc
        return await self._apply(smap, bmd, docs, force)

    def payload(self) -> dict[str, Any]:
        out = {"smap": self.smap.to_wire() if self.smap else None,
               "bmd": self.bmd.to_wire() if self.bmd else None}
        for d in DOCS:
            doc = getattr(self, d.attr)
            out[d.wire] = doc.to_wire() if doc is not None else None
        return out

    def versions(self) -> tuple[int, ...]:
        """(cluster map, bucket metadata, *DOCS) versions, 0 for what this node lacks."""
        return (self.smap.version if self.smap else 0, self.bmd.version if self.bmd else 0,
                *(getattr(self, d.attr).version if getattr(self, d.attr) is not None else 0 for d in DOCS))

    def acks(self) -> dict[str, int]:
        """The versions as a keepalive carries them."""
        return dict(zip(ACK_NAMES, self.versions()))

    @staticmethod
    def acked(body: Mapping[str, Any]) -> tuple[int, ...]:
        """The versions a keepalive body reports, in `versions()` order."""
        return tuple(int(body.get(n, 0) or 0) for n in ACK_NAMES)


def metasync_handler(store: MetaStore, secret: Callable[[], str] = lambda: "") -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`PUT /v1/metasync` on the intra listener: receive versions pushed by the primary (which
    proves itself with the cluster secret, when one is configured)."""
    async def handle(request: web.Request) -> web.StreamResponse:
        expected = secret()
        if expected and not hmac.compare_digest(request.headers.get(apc.HDR_CLUSTER_SECRET, ""), expected):
            raise Forbidden("metasync needs the cluster secret")
        payload = await read_json(request, limit=64 << 20)
        if not isinstance(payload, dict):
            raise BadMessage("metasync payload must be a JSON object")
        await store.apply_wire(payload)
        return web.json_response({"smap_version": store.smap.version if store.smap else 0,
                                  "bmd_version": store.bmd.version if store.bmd else 0})
    return handle


class ClusterAgent:
    """A non-primary node's link to the primary: join, keepalive, catch up, and noticing that
    the primary is gone.

    Keepalives go to the primary of the node's current cluster map, so a node follows a new
    primary as soon as it holds the map naming it. When they have failed for `dead_s`, the
    node asks the other nodes of its map for theirs (`discover`): a newer map names the new
    primary, which the next keepalive reaches; otherwise `on_primary_down(smap)` runs (by
    default: ask the candidate to run an election, ais/election.py).
    """

    RETRY_S = 0.5   # keepalive period while the primary does not answer

    def __init__(self, me: Node, store: MetaStore, http: IntraClient, primary_url: str,
                 interval_s: float, secret: str = "", *, dead_s: float = 4.0, probe_s: float = 2.0,
                 on_primary_down: Callable[[ClusterMap], Awaitable[Any]] | None = None) -> None:
        self.me, self.store, self.http = me, store, http
        self.seed_primary_url = primary_url
        self.interval_s = interval_s
        self.secret = secret
        self.dead_s, self.probe_s = dead_s, probe_s
        self.on_primary_down = on_primary_down or self._ask_candidate
        self._task: asyncio.Task[None] | None = None
        self._last_ok = 0.0      # loop time the primary last answered
        self._last_down = float("-inf")   # loop time on_primary_down last ran

    def _headers(self) -> dict[str, str]:
        return {apc.HDR_CLUSTER_SECRET: self.secret}

    def primary_urls(self) -> list[str]:
        urls = []
        if self.store.smap is not None and self.store.smap.primary_id != self.me.id:
            urls.append(self.store.smap.primary.intra_url)
        if self.seed_primary_url and self.seed_primary_url not in urls and self.seed_primary_url != self.me.intra_url:
            urls.append(self.seed_primary_url)
        return urls

    async def join(self, deadline_s: float, adopt: bool = False) -> None:
        """Register with the primary, retrying until it answers or the deadline passes. When the
        primary the node knows of does not answer, the other nodes of its map say who it is now.
        `adopt`: take the primary's metadata even where not newer (a primary that stepped down)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + deadline_s
        last: Exception | None = None
        discovered: ClusterMap | None = None
        next_discovery = start if not self.primary_urls() else start + self.probe_s
        while loop.time() < end:
            if self.store.smap is not None and self.store.smap.primary_id == self.me.id:
                return   # elected while joining: nobody to join
            urls = self.primary_urls()
            if loop.time() >= next_discovery:   # the primary we know of is slow or gone: ask around
                discovered = await self.discover() or discovered
                next_discovery = loop.time() + self.interval_s
            if discovered is not None and discovered.primary_id != self.me.id:
                urls.insert(0, discovered.primary.intra_url)
            for url in dict.fromkeys(urls):
                try:
                    resp = await self.http.call_json(
                        "POST", f"{url}/v1/cluster/autoreg", json_body={"node": self.me.to_wire()},
                        headers=self._headers())
                    await self.store.apply_wire(resp, force=adopt)
                    self._last_ok = loop.time()
                    log.info("joined the cluster via %s (cluster map v%s)", url,
                             self.store.smap.version if self.store.smap else "?")
                    return
                except PeerError as exc:
                    if exc.status in (401, 403):
                        raise
                    last = exc
                except Exception as exc:  # noqa: BLE001 - retried until the deadline
                    last = exc
            smap = self.store.smap
            # a member of a map whose primary stays gone (a whole cluster restarted without it);
            # longer than dead_s: at a cluster's start the primary may just be slow to come up
            if smap is not None and smap.get(self.me.id) is not None and loop.time() - start >= 3 * self.dead_s:
                await self._primary_down(smap)
            await asyncio.sleep(0.25)
        raise RuntimeError(f"could not join the primary at {self.primary_urls()}: {last}")

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._last_ok = asyncio.get_running_loop().time()
            self._task = asyncio.create_task(self._keepalive_loop(), name="keepalive")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _keepalive_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ok = True
        while True:
            await asyncio.sleep(self.interval_s if ok else min(self.interval_s, self.RETRY_S))
            try:
                await self.keepalive_once()
                ok, self._last_ok = True, loop.time()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keepalives retry forever
                ok = False
                log.warning("keepalive failed: %s", exc)
                smap = self.store.smap
                if smap is not None and loop.time() - self._last_ok >= self.dead_s:
                    try:
                        await self._primary_down(smap)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc2:  # noqa: BLE001 - tried again on the next failure
                        log.warning("handling the loss of the primary failed: %s", exc2)

    async def keepalive_once(self, url: str = "") -> None:
        for url in [url] if url else self.primary_urls():
            try:
                resp = await self.http.call_json(
                    "POST", f"{url}/v1/cluster/keepalive", json_body={"node": self.me.to_wire(), **self.store.acks()},
                    headers=self._headers(), timeout_s=self.dead_s)   # slower than that is as good as dead
            except PeerError as exc:
                if exc.status == 404:  # the primary no longer knows us: register again
                    await self.join(deadline_s=self.interval_s * 5)
                    return
                raise
            if resp and any(resp.get(k) for k in ("smap", "bmd", *(d.wire for d in DOCS))):
                await self.store.apply_wire(resp)
            return

    async def discover(self, proxies_only: bool = False) -> ClusterMap | None:
        """The newest cluster map of this cluster that the other nodes of ours hold, if newer than ours."""
        smap = self.store.smap
        if smap is None:
            return None
        nodes = [n for n in (smap.proxies.values() if proxies_only else smap.nodes()) if n.id != self.me.id]

        async def ask(node: Node) -> ClusterMap | None:
            try:
                got = await self.http.call_json("GET", f"{node.intra_url}/v1/daemon", params={"what": apc.WHAT_SMAP},
                                                timeout_s=self.probe_s)
                return ClusterMap.from_wire(got)
            except Exception:  # noqa: BLE001 - an unreachable or confused node has nothing to say
                return None
        found = await asyncio.gather(*(ask(n) for n in nodes))
        newer = [m for m in found if m is not None and m.uuid == smap.uuid and m.version > smap.version]
        return max(newer, key=lambda m: m.version) if newer else None

    async def _primary_down(self, smap: ClusterMap) -> None:
        """The primary of `smap` does not answer: find the new one, or have one elected."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_down < self.interval_s:
            return
        self._last_down = loop.time()
        newer = await self.discover()
        if newer is not None and newer.primary_id not in (smap.primary_id, self.me.id):
            log.warning("the primary %s does not answer; cluster map v%d names %s", smap.primary.display,
                        newer.version, newer.primary.display)
            await self.keepalive_once(newer.primary.intra_url)   # answered with the metadata we lack
            self._last_ok = loop.time()
            return
        log.warning("the primary %s has not answered for %.1fs", smap.primary.display, loop.time() - self._last_ok)
        await self.on_primary_down(smap)

    async def _ask_candidate(self, smap: ClusterMap) -> None:
        await election.ask_candidate(self.http, self.me, self.store, smap, self._headers(), self.probe_s)


def daemon_answer(what: str, store: MetaStore, me: Node, cfg_dict: Mapping[str, Any]) -> web.StreamResponse | None:
    """`GET /v1/daemon?what=` answers every node gives alike (reference §1.6); None for the rest."""
    if what in (apc.WHAT_SMAP, apc.WHAT_BMD):
        doc = store.smap if what == apc.WHAT_SMAP else store.bmd
        if doc is None:
            raise ServiceUnavailable(f"{me.display} has no {'cluster map' if what == apc.WHAT_SMAP else 'bucket metadata'} yet")
        return web.json_response(doc.to_wire())
    if what == apc.WHAT_SNODE:
        return web.json_response(me.to_wire())
    if what in (apc.WHAT_CONFIG, apc.WHAT_CLUSTER_CONFIG):
        return web.json_response(dict(cfg_dict))
    return None
