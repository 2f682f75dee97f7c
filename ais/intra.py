"""Intra-cluster HTTP calls: one aiohttp session per process, timeouts from config, request IDs
forwarded, and foreign exceptions translated once at this boundary.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any, Callable, Mapping

import aiohttp
from yarl import URL

from ais import apc
from ais.config import TimeoutsSection
from ais.errors import AisError, ServiceUnavailable
from ais.log import request_id

log = logging.getLogger(__name__)


class PeerError(AisError):
    """A peer answered with an error status; carries its status and message through."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = "peer-error"


def peer_message(status: int, text: str) -> str:
    """The `message` of a node's JSON error body, else the text itself."""
    try:
        body = json.loads(text)
        if isinstance(body, dict) and "message" in body:
            return str(body["message"])
    except ValueError:
        pass
    return text.strip() or f"status {status}"


class IntraClient:
    def __init__(self, timeouts: TimeoutsSection, caller_id: str, tls: ssl.SSLContext | bool = True) -> None:
        self.timeouts = timeouts
        self.tls = tls   # how peers' certificates are checked (ais.tls.client_context)
        self.caller_id = caller_id
        self._session: aiohttp.ClientSession | None = None
        # signs every request of the session (`Ais-Sig`, ais.auth) so that a node's public listener
        # trusts it when auth is on: method and URL -> headers
        self.signer: Callable[[str, URL], Mapping[str, str]] | None = None

    async def start(self) -> None:
        # idle connections are dropped before a peer's listener would (net.header_read_timeout_s,
        # 30 s by default, also closes idle keep-alive connections): no request on a closing socket
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=128, keepalive_timeout=15, ssl=self.tls)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, middlewares=(self._sign,))

    async def _sign(self, req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        if self.signer is not None:
            req.headers.update(self.signer(req.method, req.url))
        return await handler(req)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "IntraClient used before start()"
        return self._session

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        h = {apc.HDR_CALLER_ID: self.caller_id, apc.HDR_REQUEST_ID: request_id.get()}
        if extra:
            h.update(extra)
        return h

    def control_timeout(self, total_s: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total_s or self.timeouts.control_s, connect=self.timeouts.connect_s)

    def data_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, connect=self.timeouts.connect_s,
                                     sock_read=self.timeouts.data_read_s)

    async def call(self, method: str, url: str, *, json_body: Any = None, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None, timeout_s: float | None = None) -> tuple[int, bytes, Mapping[str, str]]:
        """A control-plane call: returns (status, body, headers); raises PeerError for >= 400."""
        data = None if json_body is None else json.dumps(json_body)
        hdrs = self.headers(headers)
        if data is not None:
            hdrs["Content-Type"] = apc.JSON
        try:
            async with self.session.request(method, url, data=data, params=params, headers=hdrs,
                                            timeout=self.control_timeout(timeout_s),
                                            allow_redirects=False) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    err = resp.headers.get(apc.HDR_ERROR)
                    text = err if err else body.decode("utf-8", "replace")
                    raise PeerError(resp.status, peer_message(resp.status, text))
                return resp.status, body, resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def put_data(self, url: str, body: Any, *, params: Mapping[str, str] | None = None,
                       headers: Mapping[str, str] | None = None) -> None:
        """A data-plane PUT of `body` (bytes or an async iterator) to a peer, under the data
        timeouts; AisError "<status> <text>" or "<exception>: <text>" when the peer did not take it."""
        try:
            async with self.session.put(url, data=body, params=params, headers=headers,
                                        timeout=self.data_timeout()) as resp:
                if resp.status >= 400:
                    raise AisError(f"{resp.status} {(await resp.text())[:200]}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise AisError(f"{type(exc).__name__}: {exc}") from exc

    async def call_json(self, method: str, url: str, **kw: Any) -> Any:
        _, body, _ = await self.call(method, url, **kw)
        return json.loads(body) if body else None
