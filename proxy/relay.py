"""Zero-copy relay of a large response body from a target to the client (Linux splice).

Once the response headers have gone out, the proxy stops reading the target's socket,
forwards what aiohttp had already buffered, and moves the rest socket -> pipe -> socket with
os.splice in a pool thread that waits with poll(): no Python per chunk, no copies through
user space, and the event loop stays free. The upstream connection is closed afterwards
(its parser never saw the body). Anything unusual keeps the ordinary copying relay.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import select
from concurrent.futures import Executor
from typing import Any

import aiohttp
from aiohttp import web

MIN_SPLICE_BYTES = 1 << 20
_PIPE_BYTES = 1 << 20
_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


def _wait(fd: int, event: int, stall_s: float) -> None:
    p = select.poll()
    p.register(fd, event)
    if not p.poll(stall_s * 1000):
        raise TimeoutError(f"relay stalled for {stall_s}s")


def _splice_all(src: int, dst: int, count: int, stall_s: float) -> None:
    """Blocking (pool thread): move exactly `count` bytes from socket `src` to socket `dst`."""
    r, w = os.pipe()
    try:
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass  # the default pipe size works, only slower
        while count > 0:
            try:
                n = os.splice(src, w, min(count, _PIPE_BYTES), flags=_FLAGS)
            except BlockingIOError:
                _wait(src, select.POLLIN, stall_s)
                continue
            if n == 0:
                raise ConnectionResetError("target closed the connection mid-body")
            count -= n
            while n > 0:
                try:
                    n -= os.splice(r, dst, n, flags=_FLAGS)
                except BlockingIOError:
                    _wait(dst, select.POLLOUT, stall_s)
                except OSError as exc:
                    if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                        raise ConnectionResetError("client closed the connection") from exc
                    raise
    finally:
        os.close(r)
        os.close(w)


def _socket_fd(transport: Any) -> int | None:
    """A duplicate of the transport's socket fd, owned by the relay thread.

    The loop may close its own fd the moment a peer hangs up, and the number can then be
    reused by a new connection: a thread still writing to it would send this body to
    someone else. A dup keeps the socket (and our number) until the thread closes it.
    """
    sock = transport.get_extra_info("socket") if transport is not None else None
    return os.dup(sock.fileno()) if sock is not None else None


async def try_splice(request: web.Request, up: aiohttp.ClientResponse, pool: Executor, stall_s: float) -> bool:
    """Relay `up`'s body to the client by splice; False (nothing sent) when not applicable."""
    length = up.content_length
    conn = up.connection
    if (request.method != "GET" or up.status not in (200, 206) or length is None or length < MIN_SPLICE_BYTES
            or request.secure or up.url.scheme == "https" or conn is None or conn.transport is None or request.transport is None
            or request.transport.get_write_buffer_size() != 0 or "chunked" in up.headers.get("Transfer-Encoding", "")):
        return False
    src, dst = _socket_fd(conn.transport), _socket_fd(request.transport)
    if src is None or dst is None:
        for fd in (src, dst):
            if fd is not None:
                os.close(fd)
        return False
    # Take what aiohttp buffered, THEN stop the loop reading the socket: draining the reader
    # may resume reading (flow control), so the pause must come last. No await in between,
    # so the loop cannot consume a byte meant for the splice.
    buffered = up.content.read_nowait(-1)
    conn.transport.pause_reading()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(pool, _relay_then_close, src, dst, buffered, length - len(buffered), stall_s)
    finally:
        up.close()  # the client parser never saw the body: the connection cannot be reused
    return True


def _relay_then_close(src: int, dst: int, buffered: bytes, count: int, stall_s: float) -> None:
    """Blocking (pool thread): send the buffered head, splice the rest, close our fd dups.

    The fds are closed here, by the thread that used them, even if the awaiting coroutine
    was cancelled meanwhile."""
    try:
        if buffered:
            _send_all(dst, buffered, stall_s)
        _splice_all(src, dst, count, stall_s)
    finally:
        os.close(src)
        os.close(dst)


def _send_all(fd: int, data: bytes, stall_s: float) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            _wait(fd, select.POLLOUT, stall_s)
