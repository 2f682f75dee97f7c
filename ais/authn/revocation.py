"""Delivering revoked tokens to registered clusters.

The contract with the cluster side: `DELETE <cluster url>/v1/tokens` with the JSON body
`{"token": "<revoked jwt>"}` and `Authorization: Bearer <admin token minted by the service for
itself, sub "authn">`; a cluster's URLs are tried in order until one answers 2xx.

What is not yet delivered stays pending per cluster and is retried every `push_retry_s` until
delivered, the token expires, or the cluster is unregistered. A newly registered (or changed)
cluster gets every unexpired revoked token. Pending deliveries are not persisted: at start-up
every cluster is sent every unexpired revoked token again (a repeat revocation is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable, Mapping

import aiohttp

from ais.authn.config import AuthnConfig
from ais.authn.model import Cluster
from ais.authn.tokens import Signer

log = logging.getLogger(__name__)

SERVICE_TOKEN_TTL_S = 300.0
TOKENS_PATH = "/v1/tokens"


class RevocationPusher:
    def __init__(self, cfg: AuthnConfig, signer: Signer, session: aiohttp.ClientSession,
                 clusters: Callable[[], Mapping[str, Cluster]], revoked: Callable[[], Mapping[str, int]]) -> None:
        self.cfg, self.signer, self.session = cfg, signer, session
        self._clusters, self._revoked = clusters, revoked
        self.pending: dict[str, set[str]] = {}       # cluster id -> tokens not yet delivered
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._service_token = ("", 0.0)
        self._failing: set[str] = set()               # clusters whose last attempt failed (log once)

    # --- what to deliver -------------------------------------------------------------------

    def all_to_all(self) -> None:
        """Every unexpired revoked token to every registered cluster (start-up)."""
        for cid in self._clusters():
            self.cluster_changed(cid)

    def cluster_changed(self, cluster_id: str) -> None:
        now = time.time()
        tokens = {t for t, exp in self._revoked().items() if exp > now}
        if tokens:
            self.pending.setdefault(cluster_id, set()).update(tokens)
            self._wake.set()

    def token_revoked(self, token: str) -> None:
        for cid in self._clusters():
            self.pending.setdefault(cid, set()).add(token)
        self._wake.set()

    async def push_now(self, timeout_s: float) -> None:
        """One delivery round right away (the revoking request waits for it, up to `timeout_s`);
        what fails stays pending for the background loop."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.deliver_pending(), timeout_s)

    # --- delivering ------------------------------------------------------------------------

    async def run(self) -> None:
        """The background loop: a round on every wake-up, and every `push_retry_s` while anything
        is pending. Owned and cancelled by the app (server.py)."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.push_retry_s if self.pending else None)
            self._wake.clear()
            try:
                await self.deliver_pending()
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 - the loop must outlive one bad round; logged once here
                log.exception("revocation push round failed")

    async def deliver_pending(self) -> None:
        """One round; rounds never overlap (a revoking request and the loop may both ask)."""
        async with self._round:
            await self._round_locked()

    async def _round_locked(self) -> None:
        clusters = self._clusters()
        revoked = self._revoked()
        now = time.time()
        for cid in list(self.pending):
            live = {t for t in self.pending[cid] if revoked.get(t, 0) > now}
            if cid not in clusters or not live:
                self.pending.pop(cid, None)
            else:
                self.pending[cid] = live
        if not self.pending:
            return
        async with asyncio.TaskGroup() as tg:
            for cid, tokens in list(self.pending.items()):
                tg.create_task(self._deliver(clusters[cid], sorted(tokens)))

    async def _deliver(self, cluster: Cluster, tokens: list[str]) -> None:
        for token in tokens:
            error = await self._send(cluster, token)
            if error:
                if cluster.id not in self._failing:
                    log.warning("cannot deliver revoked tokens to cluster %r yet (retrying every %.0fs): %s",
                                cluster.id, self.cfg.push_retry_s, error)
                    self._failing.add(cluster.id)
                return   # the rest waits for the next round: the cluster is unreachable now
            pending = self.pending.get(cluster.id)
            if pending is not None:
                pending.discard(token)
                if not pending:
                    del self.pending[cluster.id]
        if cluster.id in self._failing:
            log.info("delivered revoked tokens to cluster %r", cluster.id)
            self._failing.discard(cluster.id)

    async def _send(self, cluster: Cluster, token: str) -> str:
        """Try the cluster's URLs in order; "" once one answers 2xx, else the last error."""
        headers = {"Authorization": f"Bearer {self._token()}"}
        error = "no URLs"
        timeout = aiohttp.ClientTimeout(total=self.cfg.push_timeout_s)
        for url in cluster.urls:
            try:
                async with self.session.delete(url + TOKENS_PATH, json={"token": token}, headers=headers,
                                               timeout=timeout) as resp:
                    if 200 <= resp.status < 300:
                        return ""
                    error = f"{url}: HTTP {resp.status} {(await resp.text())[:200]}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error = f"{url}: {type(exc).__name__}: {exc}"
        return error

    def _token(self) -> str:
        token, expires = self._service_token
        if time.time() > expires - SERVICE_TOKEN_TTL_S / 3:
            token = self.signer.service_token(SERVICE_TOKEN_TTL_S)
            self._service_token = (token, time.time() + SERVICE_TOKEN_TTL_S)
        return token
