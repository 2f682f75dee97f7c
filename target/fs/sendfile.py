"""Zero-copy responses under uvloop, which does not implement `loop.sendfile`.

Once the response headers have left the transport, the body is sent with `os.sendfile` from
an I/O pool thread, which waits for socket writability with `poll()`. The event loop never
blocks (not even on cold disk reads), and the loop does not write to the transport while the
handler awaits this. When the preconditions do not hold, a copy path reads in the pool and
writes through the transport.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from concurrent.futures import Executor
from typing import BinaryIO

from aiohttp import web

_CHUNK = 1 << 20


def _sendfile_blocking(sock_fd: int, file_fd: int, offset: int, count: int, stall_s: float) -> None:
    """Send, then close both fds (dups owned by this thread: see send_file)."""
    try:
        _sendfile_loop(sock_fd, file_fd, offset, count, stall_s)
    finally:
        os.close(sock_fd)
        os.close(file_fd)


def _sendfile_loop(sock_fd: int, file_fd: int, offset: int, count: int, stall_s: float) -> None:
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    while count > 0:
        try:
            n = os.sendfile(sock_fd, file_fd, offset, min(count, 8 << 20))
        except BlockingIOError:
            if not poller.poll(stall_s * 1000):
                raise TimeoutError(f"client did not read for {stall_s}s") from None
            continue
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                raise ConnectionResetError("client closed the connection") from exc
            raise
        if n == 0:
            raise ConnectionResetError("connection closed during sendfile")
        offset += n
        count -= n


async def send_file(request: web.Request, resp: web.StreamResponse, f: BinaryIO, offset: int, count: int,
                    pool: Executor, stall_s: float) -> None:
    """Send `count` bytes of `f` from `offset` as the body of the prepared response `resp`."""
    await send_fd(request, resp, f.fileno(), offset, count, pool, stall_s)


async def send_fd(request: web.Request, resp: web.StreamResponse, fd: int, offset: int, count: int,
                  pool: Executor, stall_s: float) -> None:
    """`send_file` for a raw descriptor (which the caller keeps open until this returns).
    May be called again on the same response for the next range of a growing file."""
    loop = asyncio.get_running_loop()
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost")
    sock = transport.get_extra_info("socket")
    if count > 0 and sock is not None and transport.get_write_buffer_size() == 0 \
            and getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) \
            and not request.secure:
        # A dup, not the loop's fd: if the client hangs up, the loop closes its fd and the number
        # may be reused by a new connection while this thread still writes (a cross-client leak).
        # The same for the file, which the handler closes when it ends.
        await loop.run_in_executor(pool, _sendfile_blocking, os.dup(sock.fileno()), os.dup(fd), offset,
                                   count, stall_s)
        return
    # Copy path: pool reads, transport writes (with aiohttp's flow control).
    while count > 0:
        chunk = await loop.run_in_executor(pool, os.pread, fd, min(_CHUNK, count), offset)
        if not chunk:
            raise ConnectionResetError("object shrank while being read")
        await resp.write(chunk)
        count -= len(chunk)
        offset += len(chunk)
