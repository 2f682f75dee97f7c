"""A fast lane in front of aiohttp for a node's hottest requests.

Every connection of a public listener starts in a `FastLane`. It frames each request head,
parses it with httptools (llhttp, the C parser Node.js uses) and offers it to the node's
`route` function, which answers the plain case it was written for, or declines. The first
request it declines hands the connection to aiohttp for good: the bytes received since the
last answered request are replayed into a fresh aiohttp `RequestHandler`, which then owns the
transport. So everything unusual (a body, a range, auth, an error, a remote bucket, a parse
error, pipelining) keeps its one implementation in the aiohttp handlers, and the lane only
ever answers what it is sure of: nothing is written for a request it declines.

Why: aiohttp's per-request machinery (request and response objects, middlewares, the router,
header multidicts) costs a small object GET several times what reading it does; the lane
answers one in a few dozen microseconds of Python (see benchmarks/README.md).

A route returns `None` (decline), an `Answer`, or an awaitable of either (for work that must
leave the event loop, e.g. a read that misses the page cache). While an awaitable is pending
the connection reads no further requests.
"""

from __future__ import annotations

import asyncio
import http
import time
from typing import Any, Awaitable, Callable, Union

import httptools

from ais import apc
from ais.httpdate import http_date
from ais.log import new_request_id, request_id
from ais.metrics import NodeMetrics

MAX_HEAD_BYTES = 8192   # a longer request head goes to aiohttp, which applies the listener's limits
_REQUEST_ID = apc.HDR_REQUEST_ID.lower().encode()
_REASONS = {int(st): st.phrase for st in http.HTTPStatus}


class FastRequest:
    """One parsed request head: method, raw path and query (still percent-encoded), headers
    with lower-cased names (`dup` is set when a name repeats)."""

    __slots__ = ("method", "path", "query", "headers", "dup", "keep_alive", "complete", "rid", "body", "_url")

    def __init__(self) -> None:
        self.method = b""
        self.body = b""             # a PUT's whole body (lanes with `max_body`)
        self.path = ""
        self.query = ""
        self.headers: dict[bytes, bytes] = {}
        self.dup = False
        self.keep_alive = True
        self.complete = False
        self.rid = ""               # the request ID (the client's Ais-Request-Id, or a new one)
        self._url = b""

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in self.headers:
            self.dup = True
        self.headers[name] = value

    def on_message_complete(self) -> None:
        self.complete = True


class Answer:
    """A complete response: status, headers (str -> str), body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes | bytearray = b"") -> None:
        self.status, self.headers, self.body = status, headers, body


RouteResult = Union[Answer, None, Awaitable[Union[Answer, None]]]
Route = Callable[[FastRequest], RouteResult]


class _Date:
    """The `Date` header, formatted once per second."""

    def __init__(self) -> None:
        self._sec = -1
        self._text = ""

    def now(self) -> str:
        sec = int(time.time())
        if sec != self._sec:
            self._text = http_date(sec * 1_000_000_000)
            self._sec = sec
        return self._text


_DATE = _Date()


class Lanes:
    """The listener's side: the lanes' shared settings and the connections still in a lane
    (closed at shutdown; those handed to aiohttp are aiohttp's to drain)."""

    def __init__(self, route: Route, fallback: Callable[[], asyncio.Protocol], metrics: NodeMetrics,
                 group: Callable[[str], str], idle_s: float, max_body: int = 0) -> None:
        self.route, self.fallback, self.metrics, self.group, self.idle_s = route, fallback, metrics, group, idle_s
        # a PUT whose Content-Length is at most this is buffered whole and offered to the route
        # (0: every PUT goes to aiohttp at once, unread)
        self.max_body = max_body
        self.methods = (b"GET ", b"HEAD ", b"PUT ") if max_body > 0 else (b"GET ", b"HEAD ")
        self.open: set[FastLane] = set()
        self.answered_metric = metrics.fast_lane.labels(outcome="answered")
        self.handed_metric = metrics.fast_lane.labels(outcome="handed_over")

    def protocol(self) -> "FastLane":
        return FastLane(self)

    def close_all(self) -> None:
        for lane in list(self.open):
            lane.close_when_idle()


class FastLane(asyncio.Protocol):
    __slots__ = ("_lanes", "_t", "_buf", "_busy", "_task", "_last", "_timer", "_closing", "_paused", "_loop", "_head")

    def __init__(self, lanes: Lanes) -> None:
        self._lanes = lanes
        self._t: asyncio.Transport | None = None
        self._buf = bytearray()
        self._busy = False          # an async answer is pending
        self._task: asyncio.Future[Any] | None = None
        self._closing = False
        self._paused = False        # the transport asked us to stop writing
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._head: tuple[FastRequest, int, int] | None = None   # a parsed head (its length, the body's) not yet served

    # --- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = transport  # type: ignore[assignment]
        self._lanes.open.add(self)
        self._timer = self._loop.call_later(self._lanes.idle_s, self._idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lanes.open.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        self._t = None

    def eof_received(self) -> bool:
        return False   # the client is done sending: close once the answer in progress (if any) is out

    def pause_writing(self) -> None:
        self._paused = True
        if self._t is not None:
            self._t.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._t is not None and not self._busy:
            self._t.resume_reading()

    def _idle(self) -> None:
        """The header read (and keep-alive idle) timeout: a connection that has not completed
        a request head within `idle_s` of opening or of its last answer is closed."""
        self._timer = None
        if self._t is None:
            return
        left = self._last + self._lanes.idle_s - self._loop.time()
        if self._busy or left > 0:
            self._timer = self._loop.call_later(max(left, 0.5), self._idle)
            return
        self._t.close()

    def close_when_idle(self) -> None:
        self._closing = True
        if not self._busy and self._t is not None:
            self._t.close()

    # --- requests -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._head is not None:
            self._last = self._loop.time()   # a body arriving: the idle timeout counts from its last bytes
        if not self._busy:
            self._serve()

    def _serve(self) -> None:
        """Answer the complete requests in the buffer, in order, until one is declined."""
        lanes = self._lanes
        while self._t is not None and not self._closing:
            framed = self._frame()
            if framed is None:
                return
            req, n = framed
            t0 = time.perf_counter()
            rid = req.headers.get(_REQUEST_ID)
            req.rid = rid.decode("latin-1") if rid else new_request_id()
            request_id.set(req.rid)   # for the route's logs and answers (a task started here copies it)
            try:
                result = lanes.route(req)
            except Exception:  # noqa: BLE001 - a route that fails declines: aiohttp answers (and logs) it
                result = None
            if result is None:
                self._hand_over()
                return
            if not isinstance(result, Answer):
                self._busy = True
                self._t.pause_reading()
                self._task = asyncio.ensure_future(self._finish(req, result, n, t0))
                return
            if not self._send(req, result, n, t0):
                return

    def _frame(self) -> tuple[FastRequest, int] | None:
        """The next whole request in the buffer and its length in bytes; None while it is still
        arriving, or when the connection was handed over (a head the lane does not take)."""
        buf = self._buf
        if self._head is None:
            if not buf.startswith(self._lanes.methods):
                if buf and not any(m.startswith(buf) for m in self._lanes.methods):
                    self._hand_over()   # another method, or not HTTP at all: aiohttp answers it at once
                return None
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._hand_over()
                return None
            req = _parse(bytes(buf[:end + 4]), self._lanes.max_body)
            if req is None:
                self._hand_over()
                return None
            # a body of a known length the lane may take follows an incomplete head: wait for all of it
            self._head = (req, end + 4, 0 if req.complete else int(req.headers[b"content-length"]))
        req, n, size = self._head
        if len(buf) < n + size:
            return None
        self._head = None
        if size:
            req.body = bytes(buf[n:n + size])
        return req, n + size

    async def _finish(self, req: FastRequest, pending: Awaitable[Answer | None], n: int, t0: float) -> None:
        try:
            answer = await pending
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - declined: aiohttp answers (and logs) it
            answer = None
        self._task = None
        self._busy = False
        if self._t is None:
            return
        if answer is None:
            self._hand_over()
            return
        if self._send(req, answer, n, t0) and self._t is not None:
            if not self._paused:
                self._t.resume_reading()
            self._serve()

    def _send(self, req: FastRequest, answer: Answer, n: int, t0: float) -> bool:
        """Write the answer to the request whose head is the first `n` buffered bytes; False
        when the connection is closing or was handed over (the answer did not serialize)."""
        lanes = self._lanes
        head = _serialize(answer, req.rid, req.keep_alive)
        if head is None:
            self._hand_over()
            return False
        del self._buf[:n]
        assert self._t is not None
        if answer.body:
            self._t.writelines((head, answer.body))
        else:
            self._t.write(head)
        self._last = self._loop.time()
        lanes.answered_metric.inc()
        method = req.method.decode("latin-1")
        lanes.metrics.observe(method, lanes.group(req.path), answer.status, time.perf_counter() - t0)
        if not req.keep_alive or self._closing:
            self._t.close()
            return False
        return True

    def _hand_over(self) -> None:
        """The rest of this connection goes to aiohttp, starting with the buffered bytes."""
        t = self._t
        if t is None:
            return
        self._lanes.open.discard(self)
        self._lanes.handed_metric.inc()
        self._head = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._t = None
        proto = self._lanes.fallback()
        t.set_protocol(proto)
        proto.connection_made(t)
        if self._paused:
            proto.pause_writing()
        elif not t.is_reading():   # paused while an async answer was pending
            t.resume_reading()
        if self._buf:
            proto.data_received(bytes(self._buf))
        self._buf = bytearray()


def _parse(head: bytes, max_body: int = 0) -> FastRequest | None:
    """A request head without a body, or (with `max_body`) a PUT's head with a
    Content-Length of at most `max_body` (`complete` False then: the body follows); None
    for anything else (aiohttp's to answer)."""
    req = FastRequest()
    parser = httptools.HttpRequestParser(req)
    try:
        parser.feed_data(head)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None
    if req.dup or parser.get_http_version() != "1.1":
        return None   # a repeated header, or HTTP/1.0
    req.method = parser.get_method()
    if not req.complete:   # a body follows
        h = req.headers
        if req.method != b"PUT" or b"transfer-encoding" in h or b"expect" in h:
            return None   # chunked, or a client waiting for 100 Continue: aiohttp's
        try:
            size = int(h[b"content-length"])
        except (KeyError, ValueError):
            return None
        if not 0 < size <= max_body:
            return None
    req.keep_alive = b"close" not in req.headers.get(b"connection", b"").lower()
    try:
        url = req._url.decode("ascii")
    except UnicodeDecodeError:
        return None
    req.path, _, req.query = url.partition("?")
    if "#" in req.query or not req.path.startswith("/"):
        return None
    return req


def _serialize(answer: Answer, rid: str, keep_alive: bool) -> bytes | None:
    reason = _REASONS.get(answer.status)
    if reason is None:
        return None
    lines = [f"HTTP/1.1 {answer.status} {reason}\r\nContent-Length: {len(answer.body)}\r\nDate: {_DATE.now()}\r\n"
             f"{apc.HDR_REQUEST_ID}: {rid}\r\n"]
    if not keep_alive:
        lines.append("Connection: close\r\n")
    for k, v in answer.headers.items():
        if "\n" in v or "\r" in v:
            return None   # aiohttp refuses such a value too (as an error): let it
        lines.append(f"{k}: {v}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError:
        return None


_HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                         b"trailer", b"transfer-encoding", b"upgrade", b"host", b"expect", b"server", b"date",
                         b"content-length", _REQUEST_ID))


class Upstream:
    """A lane's keep-alive HTTP/1.1 client to the nodes behind it, for answers small enough to
    hold: `relay` returns the node's answer, or None when the lane must decline (the node
    unreachable, a stale pooled connection, an answer without a length or over `max_body`),
    which is safe only for idempotent requests: the regular handler then asks again."""

    def __init__(self, max_body: int, timeout_s: float, idle_per_node: int = 64) -> None:
        self.max_body, self.timeout_s, self._idle_per_node = max_body, timeout_s, idle_per_node
        self._idle: dict[tuple[str, int, str], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def relay(self, host: str, port: int, head: bytes, body: bytes = b"", pool: str = "") -> Answer | None:
        """`head` (and `body`) sent on a pooled connection of `pool`: a node's lane keeps a
        connection only until it declines a request, so requests it declines (a PUT) keep
        connections of their own, apart from those it answers (a GET)."""
        idle = self._idle.setdefault((host, port, pool), [])
        if idle:   # a pooled connection the node may have closed meanwhile (idle timeout): once more on a new one
            answer = await self._exchange(idle, idle.pop(), host, port, head, body)
            if answer is not _STALE:
                return answer if isinstance(answer, Answer) else None
        answer = await self._exchange(idle, None, host, port, head, body)
        return answer if isinstance(answer, Answer) else None

    async def _exchange(self, idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
                        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, host: str, port: int,
                        head: bytes, body: bytes) -> Any:
        reused = conn is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                reader, writer = conn
                writer.write(head + body if body else head)
                status, headers, length, keep = _parse_answer(await reader.readuntil(b"\r\n\r\n"))
                if length is None or length > self.max_body:
                    writer.close()
                    return None
                body = await reader.readexactly(length) if length else b""
        except TimeoutError:
            if conn is not None:
                conn[1].close()
            return None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            if conn is not None:
                conn[1].close()
            return _STALE if reused else None   # the request is idempotent: asked again on a new connection
        if keep and len(idle) < self._idle_per_node:
            idle.append(conn)
        else:
            writer.close()
        return Answer(status, headers, body)

    def close(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()


_STALE = object()   # a reused connection failed before the answer began


def _parse_answer(head: bytes) -> tuple[int, dict[str, str], int | None, bool]:
    """(status, end-to-end headers, Content-Length or None, keep-alive) of a response head."""
    lines = head[:-4].split(b"\r\n")
    version, status, _ = lines[0].split(b" ", 2)
    if version != b"HTTP/1.1":
        raise ValueError("not HTTP/1.1")
    headers: dict[str, str] = {}
    length: int | None = None
    keep = True
    for line in lines[1:]:
        raw, _, value = line.partition(b":")
        raw, value = raw.strip(), value.strip()
        name = raw.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise ValueError("chunked")
        elif name == b"connection" and value.lower() == b"close":
            keep = False
        if name not in _HOP_BY_HOP:
            key = raw.decode("latin-1")
            if key in headers:
                raise ValueError("repeated header")   # the handler's relay keeps both
            headers[key] = value.decode("utf-8")
    return int(status), headers, length, keep
