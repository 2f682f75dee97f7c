"""Shared aiohttp scaffolding for proxies and targets.

- `middlewares()`: request IDs, metrics, and the one place errors become HTTP responses.
- `read_json` / `read_action`: bounded, validated control-message bodies.
- `Listener`: start and gracefully stop one aiohttp application on host:port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ais import apc, fasthttp
from ais.errors import AisError, BadMessage, MethodNotAllowed, NotFound, PayloadTooLarge
from ais.log import new_request_id, request_id
from ais.metrics import NodeMetrics

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[web.Request, AisError], web.StreamResponse]

# Set on a request once its response has been prepared: an error after that point can only
# abort the connection, never send a status.
STREAMING = "ais.streaming"
# A control body some middleware has read already (auth, to see the action): `read_body` returns
# its bytes and `read_json` its parsed value, so a handler neither reads nor parses it again.
BODY_READ = "ais.body"
JSON_READ = "ais.json"


def render_native_error(request: web.Request, err: AisError, node: str) -> web.StreamResponse:
    """AIStore's JSON error body; for HEAD the same JSON travels in the `Hdr-Error` header."""
    caller = request.headers.get(apc.HDR_CALLER_ID, "")
    peer = request.remote or ""
    body = err.to_wire(node=node, method=request.method, path=request.path, remote=peer, caller=caller)
    text = json.dumps(body)
    headers = dict(err.headers)
    if request.method == "HEAD":
        headers[apc.HDR_ERROR] = text
        return web.Response(status=err.status, headers=headers)
    headers["Content-Type"] = apc.JSON
    return web.Response(status=err.status, text=text, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> AisError:
    if exc.status == 404:
        return NotFound(f"no such route: {exc.reason}")
    if exc.status == 405:
        return MethodNotAllowed(f"method not allowed: {exc.reason}")
    err = AisError(exc.text or exc.reason or str(exc.status))
    err.status = exc.status
    return err


def middlewares(node_name: Callable[[], str], metrics: NodeMetrics,
                renderers: Mapping[str, ErrorRenderer] | None = None, inner: Sequence[Any] = ()) -> list[Any]:
    """Request ID, latency and error accounting, and error rendering.

    `renderers` maps a path prefix (e.g. "/s3") to its own error format; native JSON otherwise.
    `inner`: middlewares that run inside this one (their errors are rendered too), e.g. auth.
    """
    renderers = dict(renderers or {})

    def render(request: web.Request, err: AisError) -> web.StreamResponse:
        for prefix, fn in renderers.items():
            if request.path.startswith(prefix):
                return fn(request, err)
        return render_native_error(request, err, node_name())

    @web.middleware
    async def mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get(apc.HDR_REQUEST_ID) or new_request_id()
        token = request_id.set(rid)
        verb = request.method
        group = _group(request.path)
        t0 = time.perf_counter()
        status = 599  # stays so if the connection breaks mid-response
        try:
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                resp = render(request, _from_http_exception(exc))
            except AisError as exc:
                if request.get(STREAMING):
                    log.warning("%s %s failed mid-stream: %s", verb, request.path, exc.message)
                    raise
                resp = render(request, exc)
            except (asyncio.CancelledError, ConnectionResetError):
                raise
            except Exception as exc:  # noqa: BLE001 - the one place unexpected errors become 500s
                if request.get(STREAMING):
                    log.exception("%s %s failed mid-stream", verb, request.path)
                    raise
                log.exception("%s %s: unexpected error", verb, request.path)
                resp = render(request, AisError(f"internal error: {type(exc).__name__}: {exc}"))
            status = resp.status
            resp.headers.setdefault(apc.HDR_REQUEST_ID, rid)
            return resp
        finally:
            metrics.observe(verb, group, status, time.perf_counter() - t0)
            request_id.reset(token)

    return [mw, *inner]


def _group(path: str) -> str:
    parts = path.split("/", 4)
    if len(parts) > 2 and parts[1] == apc.VERSION:
        return parts[2]
    return parts[1] if len(parts) > 1 and parts[1] else "root"


async def read_body(request: web.Request, limit: int = apc.MAX_CONTROL_BODY_BYTES) -> bytes:
    """Read a whole control body, however it arrives, refusing more than `limit` bytes."""
    stashed = request.get(BODY_READ)
    if stashed is not None:   # already read, e.g. by the auth middleware to see the action
        return bytes(stashed)
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body of {request.content_length} bytes exceeds the {limit}-byte limit")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
    return b"".join(parts)


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in the pieces the parser delivered: no copies (`readany` and
    `iter_chunked` join buffered pieces into new bytes first)."""
    content = request.content
    if not request.body_exists:
        return   # aiohttp's empty reader answers (b"", True) forever: iterating it never ends
    async for chunk, _ in content.iter_chunks():
        if chunk:
            yield chunk
        elif content.at_eof():   # b"" also marks the end of an HTTP chunk: go on unless the body is done
            return


async def read_json(request: web.Request, limit: int = apc.MAX_CONTROL_BODY_BYTES) -> Any:
    """Read a bounded JSON control body; `None` when empty. Never used on object data."""
    if JSON_READ in request:
        return request[JSON_READ]
    body = await read_body(request, limit)
    if not body.strip():
        return None
    return parse_json(body)


def parse_json(body: bytes, what: str = "JSON body") -> Any:
    """A control body as JSON; any malformed one (bad syntax or encoding, nesting deep enough to
    exhaust the parser's stack) is a 400 naming `what`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"malformed {what}: {exc}") from exc
    except RecursionError as exc:
        raise BadMessage(f"malformed {what}: nested too deeply") from exc


@dataclass(frozen=True, slots=True)
class ActionMsg:
    action: str
    name: str = ""
    value: Any = None


def ci_get(d: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """Case-insensitive key lookup (Go's JSON decoder matches field names this way)."""
    if key in d:
        return d[key]
    low = key.lower()
    for k, v in d.items():
        if k.lower() == low:
            return v
    return default


async def read_action(request: web.Request, *, required: bool = True) -> ActionMsg | None:
    body = await read_json(request)
    if body is None:
        if required:
            raise BadMessage("missing action message: expected a JSON body {\"action\": ...}")
        return None
    return action_msg(body)


def action_msg(body: Any) -> ActionMsg:
    """A parsed JSON body as an action message (keys matched case-insensitively, as Go does)."""
    if not isinstance(body, dict):
        raise BadMessage("action message must be a JSON object")
    action = ci_get(body, "action", "")
    name = ci_get(body, "name", "") or ""
    if not isinstance(action, str) or not isinstance(name, str):
        raise BadMessage("action message: 'action' and 'name' must be strings")
    return ActionMsg(action=action, name=name, value=ci_get(body, "value"))


def metrics_handler(metrics: NodeMetrics) -> Handler:
    async def handle(_: web.Request) -> web.StreamResponse:
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})
    return handle


class Listener:
    """One aiohttp application bound to host:port, with a graceful stop.

    Hostile clients meet the server's own limits before any handler runs: a request line or
    header field longer than `max_header_bytes`, or more than `max_headers` fields, is a 400
    naming the limit; a connection that has not delivered a complete request head within
    `header_read_timeout_s` (of opening, or of the previous response) is closed, so clients
    that trickle a request head byte by byte (slowloris) cannot hold connections open. The
    same timer closes idle keep-alive connections.
    """

    def __init__(self, app: web.Application, host: str, port: int, *, shutdown_s: float,
                 max_header_bytes: int = 16384, max_headers: int = 128,
                 header_read_timeout_s: float = 30.0, lane: "tuple[fasthttp.Route, NodeMetrics] | None" = None,
                 lane_max_body: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._lane = lane   # (route, metrics): the fast lane (ais.fasthttp) in front of the app, without TLS
        self._lane_max_body = lane_max_body   # the largest PUT body the lane's route takes (fasthttp.Lanes)
        self._header_read_timeout_s = header_read_timeout_s
        self.lanes: fasthttp.Lanes | None = None
        # auto_decompress=False: object bodies are stored as sent (Content-Encoding: gzip included).
        # keepalive_timeout: aiohttp arms it when a connection opens and again after each response,
        # and closes the connection when it fires while the next request head is still incomplete;
        # arriving bytes do not re-arm it. That is a header read timeout (and an idle timeout).
        self._runner = _Runner(app, access_log=None, handle_signals=False, auto_decompress=False,
                                     shutdown_timeout=shutdown_s, keepalive_timeout=header_read_timeout_s,
                                     max_field_size=max_header_bytes, max_line_size=max_header_bytes,
                                     max_headers=max_headers, logger=_MalformedRequestLog(_server_log))

    ssl_context: "ssl.SSLContext | None" = None   # TLS (ais.tls.server_context), set before start()

    async def start(self) -> None:
        await self._runner.setup()
        site: web.TCPSite
        if self._lane is not None and self.ssl_context is None:
            route, metrics = self._lane
            server = self._runner.server
            assert server is not None
            self.lanes = fasthttp.Lanes(route, server, metrics, _group, self._header_read_timeout_s,
                                        self._lane_max_body)
            site = _LaneSite(self.lanes, self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        else:
            site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True,
                               ssl_context=self.ssl_context)
        await site.start()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish up to the timeout, then cancel."""
        if self.lanes is not None:
            self.lanes.close_all()
        await self._runner.cleanup()


class _LaneSite(web.TCPSite):
    """aiohttp's TCP site, whose connections start in a fast lane (ais.fasthttp) and reach
    aiohttp's request handler only for what the lane declines."""

    def __init__(self, lanes: fasthttp.Lanes, runner: web.BaseRunner, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._lanes = lanes

    async def start(self) -> None:
        await web.BaseSite.start(self)   # registers the site with the runner
        self._server = await asyncio.get_running_loop().create_server(
            self._lanes.protocol, self._host, self._port, backlog=self._backlog, reuse_address=self._reuse_address)


class _Runner(web.AppRunner):
    """aiohttp's AppRunner, with one check in front of the application: a request whose `Expect`
    is not `100-continue` gets a 417 here. aiohttp's own check runs before any middleware and
    formats the value into its answer, so a value that is not UTF-8 (surrogate-escaped) raised
    inside it: a 500, on every route and on unknown paths alike."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.request_handler = _refuse_unknown_expect(server.request_handler)
        return server


def _refuse_unknown_expect(inner: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
                           ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect and expect.lower() != "100-continue":   # empty: aiohttp ignores it too
            return web.Response(status=417, text=f"unsupported Expect {expect[:200]!r}: only 100-continue",
                                headers={"Connection": "close"})
        return await inner(request)
    return handle


_server_log = logging.getLogger("aiohttp.server")


class _MalformedRequestLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's connection log. A request it cannot parse (request line or header too long, too
    many headers, bad syntax) is the client's error, answered with a 400: a debug line, not an
    error with a traceback per request that a hostile client could use to fill the disk."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            first_line = (exc_info.message or type(exc_info).__name__).splitlines()[0]
            self.debug("%s: %s", str(msg) % args, first_line)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


async def until_stopped(coro: "asyncio.Future[None] | Coroutine[Any, Any, None]", stop: asyncio.Event) -> bool:
    """Run `coro` unless a stop comes first; True when it finished."""
    task = asyncio.ensure_future(coro)
    stopping = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if task in done:
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
