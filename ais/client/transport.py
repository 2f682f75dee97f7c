"""The swappable HTTP layer under the client: `Transport` (a Protocol), its `Request` and
`Response`, replayable request bodies, and the aiohttp implementation.

The transport sends exactly one request and never follows redirects or retries: routing and
retries belong to the client core. It is the one place where aiohttp's exceptions (and
OSError, asyncio timeouts) enter, and they leave translated into `ais.client.errors`.

Fork and loops: an aiohttp session belongs to one event loop in one process. The transport
keeps one session and rebuilds it when the process ID or the running loop changes, without
touching the old one: after fork() the parent's sockets and selector are shared, and closing
them from the child would disturb the parent.
"""

from __future__ import annotations

import asyncio
import os
import ssl as ssl_
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, Mapping, Protocol, Sequence

import aiohttp
import yarl

from ais.client.errors import ConnectError, NotConnected, ReadError, RequestTimeout, StreamConsumed, TransportError

CHUNK_BYTES = 1 << 20

# Sessions left behind by a fork or a finished event loop. Kept referenced so that garbage
# collection never runs their finalisers, which would close pooled sockets shared with the parent.
_LEFT_BEHIND: list[aiohttp.ClientSession] = []


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and per-read timeouts for data; a total timeout for control calls (CONVENTIONS §3)."""

    connect_s: float = 10.0
    read_s: float = 120.0
    control_s: float = 120.0


# --- request bodies ---------------------------------------------------------------------------

class Payload:
    """A request body that can be sent more than once (after a redirect or for a retry)."""

    size: int | None = None

    def open(self) -> bytes | AsyncIterator[bytes]:
        raise NotImplementedError


class BytesPayload(Payload):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def open(self) -> bytes:
        return self.data


class FilePayload(Payload):
    """A local file, read in chunks off the loop; reopened from the start for every send."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size

    def open(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        f = await loop.run_in_executor(None, open, self.path, "rb")
        try:
            while True:
                chunk = await loop.run_in_executor(None, f.read, CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk
        finally:
            await loop.run_in_executor(None, f.close)


class StreamPayload(Payload):
    """A one-shot async iterator, kept in memory up to `keep_bytes` so that it can be replayed.

    A redirect or a throttled answer usually arrives before much of a body was sent; if more
    than `keep_bytes` had been taken from the source, a second `open()` raises StreamConsumed.
    """

    def __init__(self, source: AsyncIterator[bytes], keep_bytes: int, size: int | None = None) -> None:
        self._source = source
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._overflow = False
        self._opened = 0
        self.keep_bytes = keep_bytes
        self.size = size

    def open(self) -> AsyncIterator[bytes]:
        if self._opened and self._overflow:
            raise StreamConsumed(f"the streamed body was needed again, but more than {self.keep_bytes} bytes "
                                 "of it had been sent; send bytes or a file to allow retries")
        self._opened += 1
        return self._chunks(self._opened)

    async def _chunks(self, generation: int) -> AsyncIterator[bytes]:
        for chunk in list(self._kept):
            yield chunk
        async for chunk in self._source:
            if generation != self._opened:   # a newer send took over the source
                raise StreamConsumed("the streamed body is being sent again elsewhere")
            if not self._overflow:
                if self._kept_bytes + len(chunk) <= self.keep_bytes:
                    self._kept.append(chunk)
                    self._kept_bytes += len(chunk)
                else:
                    self._overflow = True
                    self._kept.clear()
            yield chunk


# --- request and response ---------------------------------------------------------------------

@dataclass(slots=True)
class Request:
    method: str
    url: str
    params: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | AsyncIterator[bytes] | None = None
    timeouts: Timeouts = Timeouts()
    stream: bool = False   # data plane: no total timeout, body read by the caller


class Response:
    """Status, headers (names lower-cased; repeated headers joined with ','), and a body that is
    either already in memory or streamed from the connection."""

    def __init__(self, status: int, headers: Mapping[str, str], *, url: str = "", content: bytes | None = None,
                 stream: AsyncIterator[bytes] | None = None,
                 release: Callable[[], Awaitable[None]] | None = None,
                 read_all: Callable[[], Awaitable[bytes]] | None = None) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.url = url
        self._content = content
        self._stream = stream
        self._release = release
        self._read_all = read_all
        self._closed = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    async def read(self) -> bytes:
        if self._content is None:
            if self._read_all is not None and not self._closed:
                try:
                    self._content = await self._read_all()
                finally:
                    await self.aclose()
            else:
                self._content = b"".join([c async for c in self.iter_chunks()])
        return self._content

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._stream is None:
            return
        try:
            async for chunk in self._stream:
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._release is not None:
                await self._release()


class Transport(Protocol):
    """Sends one request, returns its response; raises only `TransportError`s."""

    async def send(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...


# --- aiohttp ----------------------------------------------------------------------------------

class AiohttpTransport:
    """HTTP/1.1 over aiohttp with one connection pool per process and event loop."""

    def __init__(self, *, max_connections: int = 256, max_per_host: int = 64,
                 headers: Mapping[str, str] | None = None, ssl: "ssl_.SSLContext | bool" = True) -> None:
        self._ssl = ssl
        self._max_connections = max_connections
        self._max_per_host = max_per_host
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        owner = (os.getpid(), loop)
        if self._session is None or self._owner != owner or self._session.closed:
            # a forked child or another loop: start afresh, leave the old session alone
            if self._session is not None and not self._session.closed:
                _LEFT_BEHIND.append(self._session)
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_per_host,
                                             ttl_dns_cache=300, enable_cleanup_closed=False, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  auto_decompress=False, skip_auto_headers=("Content-Type",))
            self._owner = owner
        return self._session

    async def send(self, request: Request) -> Response:
        session = self._get_session()
        t = request.timeouts
        timeout = aiohttp.ClientTimeout(total=None if request.stream else t.control_s,
                                        sock_connect=t.connect_s, sock_read=t.read_s)
        try:
            resp = await session.request(request.method, yarl.URL(request.url, encoded=True), params=list(request.params),
                                         headers=dict(request.headers), data=request.body,
                                         allow_redirects=False, timeout=timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise RequestTimeout(f"{request.method} timed out", url=request.url) from exc
        except aiohttp.ClientSSLError as exc:   # a TLS handshake failure: sending again will not help
            raise ConnectError(f"cannot connect: {exc}", url=request.url) from exc
        except aiohttp.ClientConnectorError as exc:
            raise NotConnected(f"cannot connect: {exc.os_error}", url=request.url) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise ConnectError(f"connection lost before a reply: {exc}", url=request.url) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{request.method} failed: {exc!r}", url=request.url) from exc
        except OSError as exc:
            raise ConnectError(f"{request.method} failed: {exc}", url=request.url) from exc

        headers: dict[str, str] = {}
        for k, v in resp.headers.items():
            key = k.lower()
            headers[key] = f"{headers[key]},{v}" if key in headers else v

        async def release() -> None:
            resp.release()

        async def read_all() -> bytes:
            try:
                return await resp.read()
            except (asyncio.TimeoutError, TimeoutError) as exc:
                raise RequestTimeout("timed out reading the body", url=request.url) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise ReadError(f"the connection broke while reading the body: {exc!r}", url=request.url) from exc

        return Response(resp.status, headers, url=str(resp.url), stream=_chunks(resp, request.url),
                        release=release, read_all=read_all)

    async def aclose(self) -> None:
        if self._session is not None and self._owner is not None and self._owner[0] == os.getpid():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._owner[1]:
                await self._session.close()
        self._session = None
        self._owner = None


async def _chunks(resp: aiohttp.ClientResponse, url: str) -> AsyncIterator[bytes]:
    # iter_chunks, not iter_any: the latter joins every piece buffered since the last read into
    # one new bytes (a copy of the whole stream when the reader lags); this hands pieces on as
    # they arrived (joined only up to the end of an HTTP chunk of a chunked body)
    try:
        async for chunk, _ in resp.content.iter_chunks():
            if chunk:
                yield chunk
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise RequestTimeout("timed out reading the body", url=url) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise ReadError(f"the connection broke while reading the body: {exc!r}", url=url) from exc
