"""A small, fast transformer server for the built-in transforms (the contract of reference §6.3).

Routes: `GET /health`; hpush `PUT /<bucket>/<object>` (object bytes as the body, or its local
path in `etl_fqn`); hpull `GET /<bucket>/<object>` (the path in `etl_fqn`, else the object
fetched from `$AIS_TARGET_URL/<bucket>/<object>`); WebSocket `/ws` (a binary JSON control
message per object, then the bytes unless `fqn` is set). With `Ais-Node-Url` the result goes
to the first URL (the next pipeline stage or the destination target), the rest of the list
travels on, and the answer is 204 with `Ais-Direct-Put-Length` (or the next stage's bytes).

A transform is `Transformer.transform(data, path, etl_args) -> bytes`; set `blocking = True`
when it is CPU-heavy so it runs in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from ais.etl import HDR_DIRECT_PUT_LENGTH, HDR_NODE_URL, Q_ETL_ARGS, Q_ETL_FQN, WS_FQN, WS_PATH, WS_PIPELINE

log = logging.getLogger("etl.server")


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _safe_fqn(fqn: str) -> str:
    return os.path.normpath(os.path.join("/", unquote(fqn).lstrip("/")))


def direct_put_url(target: str, host_target: str, obj_path: str, etl_args: str) -> str:
    """Where the result goes: a URL without a path is a pipeline stage (append the object's
    path); one with a path is a target's direct-put endpoint under our `AIS_TARGET_URL` prefix."""
    dst, host = urlsplit(target), urlsplit(host_target)
    path = host.path + dst.path if dst.path else "/" + quote(obj_path, safe="/@")
    query = dst.query
    if etl_args:
        pairs = [(k, v) for k, v in parse_qsl(dst.query, keep_blank_values=True) if k != Q_ETL_ARGS]
        query = urlencode([*pairs, (Q_ETL_ARGS, etl_args)])
    return urlunsplit((host.scheme or "http", dst.netloc, path, query, ""))


class TransformError(Exception):
    """Raised by a transform for bad input: answered 400 with the message."""


class Transformer:
    blocking = False       # True: run transform() in a thread
    mime = "application/octet-stream"

    def __init__(self) -> None:
        self.host_target = os.environ.get("AIS_TARGET_URL", "")
        self.session: aiohttp.ClientSession | None = None

    def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
        raise NotImplementedError

    # --- plumbing ---------------------------------------------------------------------------

    async def _apply(self, data: bytes, path: str, etl_args: str) -> bytes:
        if self.blocking:
            return await asyncio.get_running_loop().run_in_executor(None, self.transform, data, path, etl_args)
        return self.transform(data, path, etl_args)

    async def _source(self, request: web.Request, path: str, fqn: str) -> bytes:
        if fqn:
            return await asyncio.get_running_loop().run_in_executor(None, _read_file, _safe_fqn(fqn))
        if request.method == "PUT":
            return await request.read()
        if not self.host_target:
            raise web.HTTPBadRequest(text="no etl_fqn and no AIS_TARGET_URL to fetch the object from")
        assert self.session is not None
        async with self.session.get(f"{self.host_target}/{quote(path, safe='/@')}") as resp:
            body = await resp.read()
            if resp.status != 200:
                raise web.HTTPBadGateway(text=f"fetching {path} from the target: {resp.status} {body[:200]!r}")
            return body

    async def _deliver(self, node_urls: str, out: bytes, path: str, etl_args: str) -> tuple[int, bytes, int]:
        """PUT `out` to the first of `node_urls`: (status, body to answer, bytes delivered)."""
        first, _, rest = node_urls.partition(",")
        url = direct_put_url(first.strip(), self.host_target, path, etl_args)
        headers = {HDR_NODE_URL: rest.strip()} if rest.strip() else {}
        assert self.session is not None
        async with self.session.put(url, data=out, headers=headers) as resp:
            body = await resp.read()
            if resp.status == 204:
                return 204, b"", int(resp.headers.get(HDR_DIRECT_PUT_LENGTH, "0"))
            if resp.status == 200:
                return (200, body, 0) if body else (204, b"", len(out))
            return resp.status, body, 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        etl_args = request.query.get(Q_ETL_ARGS, "").strip()
        try:
            data = await self._source(request, path, request.query.get(Q_ETL_FQN, "").strip())
            out = await self._apply(data, path, etl_args)
        except FileNotFoundError as exc:
            raise web.HTTPNotFound(text=f"error processing object {path!r}: file not found at {exc.filename!r}")
        except TransformError as exc:
            raise web.HTTPBadRequest(text=f"error processing object {path!r}: {exc}")
        node_urls = request.headers.get(HDR_NODE_URL, "")
        if node_urls.strip():
            status, body, n = await self._deliver(node_urls, out, path, etl_args)
            headers = {HDR_DIRECT_PUT_LENGTH: str(n)} if n else {}
            return web.Response(status=status, body=body, headers=headers)
        return web.Response(body=out, content_type=self.mime)

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.ERROR):
                break
            ctrl = json.loads(msg.data)
            path = str(ctrl.get(WS_PATH) or "")
            etl_args = str(ctrl.get(Q_ETL_ARGS) or "").strip()
            try:
                if ctrl.get(WS_FQN):
                    data = await asyncio.get_running_loop().run_in_executor(None, _read_file,
                                                                            _safe_fqn(str(ctrl[WS_FQN])))
                else:
                    data = (await ws.receive_bytes())
                out = await self._apply(data, path, etl_args)
                pipeline = str(ctrl.get(WS_PIPELINE) or "")
                if pipeline.strip():
                    status, body, n = await self._deliver(pipeline, out, path, etl_args)
                    if status == 200:
                        await ws.send_bytes(body)
                    else:
                        await ws.send_str(str(n) if status == 204 else f"Transform error: {status} {body[:300]!r}")
                    continue
                await ws.send_bytes(out)
            except Exception as exc:  # noqa: BLE001 - reported to the target, the socket lives on
                log.exception("transform of %s failed", path)
                await ws.send_str(f"Transform error: {exc}")
        return ws

    def app(self) -> web.Application:
        async def health(_: web.Request) -> web.StreamResponse:
            return web.Response(text="Running")

        async def session_ctx(_: web.Application) -> Any:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=120))
            yield
            await self.session.close()

        app = web.Application(client_max_size=1 << 40)
        app.cleanup_ctx.append(session_ctx)
        app.router.add_get("/health", health)
        app.router.add_get("/ws", self.handle_ws)
        app.router.add_get("/{path:.+}", self.handle)
        app.router.add_put("/{path:.+}", self.handle)
        return app


def main(cls: type[Transformer], argv: list[str] | None = None) -> None:
    """Run `cls` on `--host`/`--port` (defaults: $ETL_HOST or 127.0.0.1, $ETL_PORT or 8000)."""
    ap = argparse.ArgumentParser(description=cls.__doc__)
    ap.add_argument("--host", default=os.environ.get("ETL_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("ETL_PORT", "8000")))
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    log.info("%s listening on %s:%d", cls.__name__, args.host, args.port)
    web.run_app(cls().app(), host=args.host, port=args.port, access_log=None, print=None)
