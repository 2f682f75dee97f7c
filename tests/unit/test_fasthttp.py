"""The fast lane (ais/fasthttp.py) in front of a real aiohttp server, over real sockets: what
it answers, what it hands to aiohttp (and that aiohttp then gets the bytes intact), pipelining,
async answers, timeouts and shutdown."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web

from ais import fasthttp
from ais.fasthttp import Answer, FastRequest
from ais.metrics import NodeMetrics

pytestmark = pytest.mark.timeout(30)


def route(req: FastRequest) -> Any:
    """Answers GET /fast/<x> (sync), /slow/<x> (async), /slow-decline (async, declines)."""
    if req.method == b"PUT":
        if req.path.startswith("/fast/"):
            return Answer(201, {"X-Name": req.path[6:]}, b"put:" + req.body)
        if req.path.startswith("/slow/"):
            async def stored() -> Answer:
                await asyncio.sleep(0.01)
                return Answer(200, {}, b"stored:" + req.body)
            return stored()
        return None
    if req.method != b"GET":
        return None
    if req.path.startswith("/fast/"):
        return Answer(200, {"X-Name": req.path[6:], "X-Query": req.query}, b"lane:" + req.path.encode())
    if req.path.startswith("/slow/"):
        async def later() -> Answer:
            await asyncio.sleep(0.01)
            return Answer(200, {}, b"slow:" + req.path.encode())
        return later()
    if req.path == "/slow-decline":
        async def decline() -> None:
            await asyncio.sleep(0.01)
        return decline()
    if req.path == "/bad-header":
        return Answer(200, {"X-Evil": "a\r\nInjected: yes"}, b"")
    if req.path == "/raise":
        raise RuntimeError("a route that fails declines")
    return None


async def aio_handler(request: web.BaseRequest) -> web.StreamResponse:
    body = await request.read()
    return web.Response(text=f"aiohttp:{request.method}:{request.path_qs}:{len(body)}:{body[:20]!r}")


def run(test: Callable[[int, fasthttp.Lanes], Awaitable[None]], idle_s: float = 10.0, max_body: int = 0) -> fasthttp.Lanes:
    async def main() -> fasthttp.Lanes:
        server = web.Server(aio_handler)
        lanes = fasthttp.Lanes(route, server, NodeMetrics("proxy", "t"), lambda p: "test", idle_s, max_body)
        srv = await asyncio.get_running_loop().create_server(lanes.protocol, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        try:
            await test(port, lanes)
        finally:
            srv.close()
            lanes.close_all()
            await server.shutdown(1)
        return lanes
    return asyncio.run(main())


async def exchange(port: int, *chunks: bytes, responses: int = 1, pause_s: float = 0.0) -> list[tuple[bytes, bytes]]:
    """Send `chunks` (pausing between them), read `responses` answers: [(head, body)]."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for c in chunks:
            writer.write(c)
            await writer.drain()
            if pause_s:
                await asyncio.sleep(pause_s)
        return [await read_response(reader) for _ in range(responses)]
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def counts(lanes: fasthttp.Lanes) -> tuple[float | None, float | None]:
    """(requests answered, connections handed over), as /metrics exports them."""
    sample = lanes.metrics.registry.get_sample_value
    return sample("ais_fast_lane_total", {"outcome": "answered"}), sample("ais_fast_lane_total", {"outcome": "handed_over"})


def get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


def test_answers_in_the_lane_with_keep_alive() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        (h1, b1), (h2, b2) = await exchange(port, get("/fast/a?x=1&y=%20"), get("/fast/b", b"Ais-Request-Id: r-7\r\n"),
                                            responses=2, pause_s=0.05)
        assert h1.startswith(b"HTTP/1.1 200 OK\r\n") and b1 == b"lane:/fast/a"
        assert b"X-Name: a\r\n" in h1 and b"X-Query: x=1&y=%20\r\n" in h1 and b"Date: " in h1
        assert b"Ais-Request-Id: r-7\r\n" in h2 and b2 == b"lane:/fast/b"
        assert counts(lanes) == (2, 0)
    run(t)


def test_a_declined_request_goes_to_aiohttp_with_the_rest_of_the_connection() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        answers = await exchange(port, get("/fast/1"), get("/other?q=1"), get("/fast/2"), responses=3, pause_s=0.05)
        assert [b for _, b in answers] == [b"lane:/fast/1", b"aiohttp:GET:/other?q=1:0:b''", b"aiohttp:GET:/fast/2:0:b''"]
        assert counts(lanes) == (1, 1)
    run(t)


def test_bodies_other_methods_and_garbage_are_aiohttps() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        put = b"PUT /fast/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        (_, body), = await exchange(port, put)
        assert body == b"aiohttp:PUT:/fast/x:5:b'hello'"
        get_with_body = b"GET /fast/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        (_, body), = await exchange(port, get_with_body[:20], get_with_body[20:], pause_s=0.02)
        assert body == b"aiohttp:GET:/fast/x:3:b'abc'"
        (head, _), = await exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert head.split(b" ", 2)[1] == b"400"
        (_, body), = await exchange(port, b"GET /fast/x HTTP/1.0\r\n\r\n")   # HTTP/1.0: aiohttp's
        assert body.startswith(b"aiohttp:")
        (_, body), = await exchange(port, get("/fast/x", b"A: 1\r\nA: 2\r\n"))   # a repeated header
        assert body.startswith(b"aiohttp:")
        assert counts(lanes) == (0, 5)
    run(t)


def put(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"PUT " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(body) + extra + b"\r\n" + body


def test_a_lane_with_max_body_takes_small_put_bodies_whole() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        # answered with the whole body, also when it trickles in, and pipelined with what follows
        (head, body), = await exchange(port, put("/fast/a", b"0123456789"))
        assert head.startswith(b"HTTP/1.1 201 Created\r\n") and body == b"put:0123456789"
        req = put("/fast/b", b"abcdefghijklmnop")
        (_, body), = await exchange(port, *[req[i:i + 7] for i in range(0, len(req), 7)], pause_s=0.01)
        assert body == b"put:abcdefghijklmnop"
        answers = await exchange(port, put("/slow/c", b"xyz") + get("/fast/d") + put("/fast/e", b"q"), responses=3)
        assert [b for _, b in answers] == [b"stored:xyz", b"lane:/fast/d", b"put:q"]
        assert counts(lanes) == (5, 0)
        # aiohttp gets the rest, each body intact: over max_body, declined, chunked, Expect, no length
        (_, body), = await exchange(port, put("/fast/big", b"x" * 17))
        assert body == b"aiohttp:PUT:/fast/big:17:b'xxxxxxxxxxxxxxxxx'"
        answers = await exchange(port, put("/fast/f", b"ok") + put("/other", b"declined") + put("/fast/g", b"after"),
                                 responses=3)
        assert [b for _, b in answers] == [b"put:ok", b"aiohttp:PUT:/other:8:b'declined'",
                                           b"aiohttp:PUT:/fast/g:5:b'after'"]
        chunked = b"PUT /fast/h HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        (_, body), = await exchange(port, chunked)
        assert body == b"aiohttp:PUT:/fast/h:3:b'abc'"
        (_, body), = await exchange(port, put("/fast/i", b"body", b"Expect: 100-continue\r\n"))   # (the app's router
        assert body == b"aiohttp:PUT:/fast/i:4:b'body'"                                           # sends the 100)
        assert counts(lanes) == (6, 4)
    run(t, max_body=16)


def test_pipelined_and_trickled_heads() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        answers = await exchange(port, get("/fast/1") + get("/fast/2") + get("/fast/3"), responses=3)
        assert [b for _, b in answers] == [b"lane:/fast/1", b"lane:/fast/2", b"lane:/fast/3"]
        req = get("/fast/slowly")
        answers = await exchange(port, *[req[i:i + 1] for i in range(len(req))])
        assert answers[0][1] == b"lane:/fast/slowly"
        # pipelined behind a declined one: all of it reaches aiohttp, in order
        answers = await exchange(port, get("/fast/a") + get("/no") + get("/fast/b"), responses=3)
        assert [b[:12] for _, b in answers] == [b"lane:/fast/a", b"aiohttp:GET:", b"aiohttp:GET:"]
    run(t)


def test_async_answers_and_async_declines() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        answers = await exchange(port, get("/slow/1") + get("/fast/2") + get("/slow/3"), responses=3)
        assert [b for _, b in answers] == [b"slow:/slow/1", b"lane:/fast/2", b"slow:/slow/3"]
        answers = await exchange(port, get("/slow-decline") + get("/fast/after"), responses=2)
        assert [b for _, b in answers] == [b"aiohttp:GET:/slow-decline:0:b''", b"aiohttp:GET:/fast/after:0:b''"]
    run(t)


def test_answers_that_cannot_be_sent_and_failing_routes_decline() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        for path in ("/bad-header", "/raise"):
            (head, body), = await exchange(port, get(path))
            assert body == f"aiohttp:GET:{path}:0:b''".encode() and b"Injected" not in head
    run(t)


def test_connection_close_and_idle_timeout() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/fast/x", b"Connection: close\r\n"))
        head, _ = await read_response(reader)
        assert b"Connection: close\r\n" in head
        assert await asyncio.wait_for(reader.read(), 5) == b""   # closed by the server
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /fast/x HTTP/1.1\r\n")   # never finished
        assert await asyncio.wait_for(reader.read(), 5) == b""   # closed after idle_s
        writer.close()
    run(t, idle_s=0.3)


def test_shutdown_closes_idle_lane_connections() -> None:
    async def t(port: int, lanes: fasthttp.Lanes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get("/fast/x"))
        await read_response(reader)
        assert len(lanes.open) == 1
        lanes.close_all()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    run(t)


def test_upstream_relays_small_answers_and_declines_the_rest() -> None:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b"x")
            await resp.write_eof()
            return resp
        if request.path == "/close":
            return web.Response(body=b"bye", headers={"Connection": "close"})
        return web.Response(status=404 if request.path == "/missing" else 200, body=b"b" * int(request.query.get("n", "3")),
                            headers={"X-Up": request.headers.get("X-Down", "")})

    async def main() -> None:
        server = web.Server(handler)
        srv = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        up = fasthttp.Upstream(max_body=100, timeout_s=5)
        head = lambda path: f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Down: v\r\n\r\n".encode()  # noqa: E731
        try:
            a = await up.relay("127.0.0.1", port, head("/ok"))
            assert a is not None and a.status == 200 and a.body == b"bbb" and a.headers["X-Up"] == "v"
            assert "Content-Length" not in a.headers and "Server" not in a.headers and "Date" not in a.headers
            b = await up.relay("127.0.0.1", port, head("/missing"))   # the same pooled connection
            assert b is not None and b.status == 404
            assert await up.relay("127.0.0.1", port, head("/ok?n=101")) is None     # over max_body
            assert await up.relay("127.0.0.1", port, head("/chunked")) is None      # no length
            c = await up.relay("127.0.0.1", port, head("/close"))
            assert c is not None and c.body == b"bye"
            # pooled connections the server closed meanwhile (its idle timeout): asked again on a new one
            assert (await up.relay("127.0.0.1", port, head("/ok"))) is not None
            for conns in up._idle.values():
                for _, w in conns:
                    w.transport.abort()
            await asyncio.sleep(0.05)
            d = await up.relay("127.0.0.1", port, head("/ok"))
            assert d is not None and d.body == b"bbb"
            assert await up.relay("127.0.0.1", 1, head("/ok")) is None              # unreachable
        finally:
            up.close()
            srv.close()
            await server.shutdown(1)
    asyncio.run(main())


def test_upstream_asks_again_when_a_pooled_connection_closes_unanswered() -> None:
    """A node that closes a kept-alive connection when the next request arrives (its idle
    timeout raced the request): the relay sends that request again on a new connection."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await reader.readuntil(b"\r\n\r\n")   # the second request on this connection: closed unanswered
        writer.close()

    async def main() -> None:
        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        up = fasthttp.Upstream(max_body=100, timeout_s=5)
        try:
            for _ in range(3):
                a = await up.relay("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert a is not None and a.body == b"ok"
        finally:
            up.close()
            srv.close()
    asyncio.run(main())
