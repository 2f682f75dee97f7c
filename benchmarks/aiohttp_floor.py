#!/usr/bin/env python3
"""The floor of the server stack: aiohttp + uvloop answering from memory, nothing else.

    python benchmarks/aiohttp_floor.py --port 8591 [--workers 3] [--pool]
    python benchmarks/aisloader.py run --server plain --nginx-url http://127.0.0.1:8591 \
        --op get --size 16KiB -n 100 -c 16 --nginx-pid name=PID ...

GET of any path answers the 16 KiB payload of aisloader.py (no disk); PUT reads and drops the
body. With --pool each GET also does one ThreadPoolExecutor hop (like a target's read_small),
so the cost of the hop can be told apart. --workers N starts N processes on N ports (port,
port+1, ...) like the three targets; a client sticking to one port measures one process.
What a target adds on top of this (routing, names, HRW, xattr metadata, headers, metrics)
is its own cost; this is what aiohttp itself costs per request on this machine.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aisloader import payload_for  # noqa: E402


def serve(port: int, use_pool: bool, size: int) -> None:
    import uvloop
    uvloop.install()
    body = payload_for(size)
    pool = ThreadPoolExecutor(8)

    def read() -> bytes:
        return body

    async def get(request: web.Request) -> web.StreamResponse:
        data = await asyncio.get_running_loop().run_in_executor(pool, read) if use_pool else body
        return web.Response(body=data, headers={"Content-Type": "application/octet-stream"})

    async def put(request: web.Request) -> web.StreamResponse:
        async for _ in request.content.iter_chunked(1 << 18):
            pass
        return web.Response(status=200)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/{tail:.*}", get)
    app.router.add_put("/{tail:.*}", put)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8591)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--pool", action="store_true", help="one thread-pool hop per GET")
    ap.add_argument("--size", type=int, default=16384)
    a = ap.parse_args()
    if a.workers == 1:
        serve(a.port, a.pool, a.size)
        return 0
    import multiprocessing as mp
    procs = [mp.Process(target=serve, args=(a.port + i, a.pool, a.size)) for i in range(a.workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
