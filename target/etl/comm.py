"""Communicators: how a target hands one object to a transformer (reference §6.3).

hpush: `PUT <transformer>/<bucket>/<object>` with the object's local path in `etl_fqn` (no
body), or the bytes as the body. hpull: `GET <transformer>/<bucket>/<object>`; the
transformer pulls the object from `$AIS_TARGET_URL/<bucket>/<object>` (served by
`target.etl.handlers`). WebSocket: per object a binary JSON control message `{pipeline,
etl_args, fqn, path}`, then the bytes unless `fqn` is set; the answer is one binary message
(the result) or a text message (bytes delivered by direct put, or an error).

`Ais-Node-Url` (the WebSocket's `pipeline`) lists where the result goes next: further
pipeline stages and, for an offline job, the destination target (direct put). A transformer
that delivered answers 204 with `Ais-Direct-Put-Length`.

Every exchange is bounded by the ETL's per-object timeout. Failures become `TransformFailed`
(naming the ETL and the object) except a refused connection, raised as `TransformerDown` so
the caller can wait for a restarting transformer and try once more.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol
from urllib.parse import quote

import aiohttp

from ais.etl import (COMM_HPULL, COMM_WS, HDR_DIRECT_PUT_LENGTH, HDR_ETL_RETRY_REASON, HDR_NODE_URL, Q_ETL_ARGS,
                     Q_ETL_FQN, WS_FQN, WS_PATH, WS_PIPELINE, TransformFailed)

_CHUNK = 256 << 10
_WS_POOL = 32


class TransformerDown(Exception):
    """The transformer refused the connection (not started yet, or restarting after a crash)."""


@dataclass
class Request:
    etl: str                 # for error messages
    cname: str               # ais://bucket/object, for error messages
    path: str                # bucket/object as the transformer sees it
    etl_args: str = ""
    fqn: str = ""            # the object's local path (the transformer reads it) ...
    body: bytes | None = None  # ... or its bytes
    node_urls: list[str] = field(default_factory=list)
    timeout_s: float = 45.0

    def fail(self, reason: str, ecode: int = 0) -> TransformFailed:
        return TransformFailed(self.etl, self.cname, reason, ecode=ecode)


class Reply:
    """A transformer's answer: 200 with the result to read or stream, or 204 = delivered."""

    def __init__(self, status: int, delivered: int = 0, length: int | None = None,
                 resp: aiohttp.ClientResponse | None = None, data: bytes | None = None,
                 req: Request | None = None) -> None:
        self.status, self.delivered, self.length = status, delivered, length
        self._resp, self._data, self._req = resp, data, req

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._data is not None:
            if self._data:
                yield self._data
            return
        assert self._resp is not None and self._req is not None
        try:
            async for chunk in self._resp.content.iter_chunked(_CHUNK):
                yield chunk
        except TimeoutError as exc:
            raise self._req.fail(f"no complete answer within the per-object timeout ({self._req.timeout_s:g}s)",
                                 504) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise self._req.fail(f"the transformer broke off its answer: {type(exc).__name__}: {exc}", 502) from exc
        finally:
            self.release()

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    def release(self) -> None:
        if self._resp is not None:
            self._resp.release()


class Communicator(Protocol):
    async def call(self, url: str, req: Request) -> Reply: ...

    async def close(self) -> None: ...


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    try:
        text = (await resp.read()).decode("utf-8", "replace").strip()
    except (aiohttp.ClientError, TimeoutError, OSError):
        text = ""
    try:   # FastAPI and friends answer {"detail": ...}
        doc = json.loads(text)
        if isinstance(doc, dict) and "detail" in doc:
            text = str(doc["detail"])
    except ValueError:
        pass
    return text[:1000] or f"status {resp.status}"


class HttpCommunicator:
    """hpush (PUT) and hpull (GET)."""

    def __init__(self, session: aiohttp.ClientSession, comm: str) -> None:
        self.session = session
        self.method = "GET" if comm == COMM_HPULL else "PUT"

    async def call(self, url: str, req: Request) -> Reply:
        params = {}
        if req.etl_args:
            params[Q_ETL_ARGS] = req.etl_args
        if req.fqn and self.method == "PUT":
            params[Q_ETL_FQN] = req.fqn
        headers = {HDR_NODE_URL: ",".join(req.node_urls)} if req.node_urls else {}
        data = req.body if self.method == "PUT" and not req.fqn else None
        timeout = aiohttp.ClientTimeout(total=req.timeout_s, connect=min(req.timeout_s, 5.0))
        try:
            resp = await self.session.request(self.method, f"{url}/{quote(req.path, safe='/@')}", params=params,
                                              data=data, headers=headers, timeout=timeout)
        except aiohttp.ClientConnectorError as exc:
            raise TransformerDown(str(exc)) from exc
        except TimeoutError as exc:
            raise req.fail(f"no answer within the per-object timeout ({req.timeout_s:g}s)", 504) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise req.fail(f"the transformer dropped the request (crashed?): {type(exc).__name__}: {exc}",
                           502) from exc
        if resp.status == 204:
            resp.release()
            return Reply(204, delivered=int(resp.headers.get(HDR_DIRECT_PUT_LENGTH, "0") or 0))
        if resp.status != 200:
            text = await _error_text(resp)
            resp.release()
            if resp.headers.get(HDR_ETL_RETRY_REASON):
                text += f" ({resp.headers[HDR_ETL_RETRY_REASON]})"
            raise req.fail(f"transformer answered {resp.status}: {text}", resp.status)
        return Reply(200, length=resp.content_length, resp=resp, req=req)

    async def close(self) -> None:
        return None


class WebSocketCommunicator:
    """A pool of WebSockets to `<transformer>/ws`, one object at a time on each."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._idle: list[aiohttp.ClientWebSocketResponse] = []
        self._slots = asyncio.Semaphore(_WS_POOL)

    async def _connect(self, url: str, req: Request) -> aiohttp.ClientWebSocketResponse:
        if self._idle:
            return self._idle.pop()
        try:
            return await self.session.ws_connect(f"{url}/ws", max_msg_size=0,
                                                 timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
        except aiohttp.ClientConnectorError as exc:
            raise TransformerDown(str(exc)) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise req.fail(f"cannot open a WebSocket: {type(exc).__name__}: {exc}", 502) from exc

    async def call(self, url: str, req: Request) -> Reply:
        async with self._slots:
            ws = await self._connect(url, req)
            ok = False
            try:
                reply = await asyncio.wait_for(self._exchange(ws, req), req.timeout_s)
                ok = True
                return reply
            except TimeoutError as exc:
                raise req.fail(f"no answer within the per-object timeout ({req.timeout_s:g}s)", 504) from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise req.fail(f"the WebSocket broke (transformer crashed?): {type(exc).__name__}: {exc}",
                               502) from exc
            finally:
                if ok and not ws.closed:
                    self._idle.append(ws)
                else:
                    await ws.close()

    async def _exchange(self, ws: aiohttp.ClientWebSocketResponse, req: Request) -> Reply:
        ctrl = {WS_PIPELINE: ",".join(req.node_urls), Q_ETL_ARGS: req.etl_args, WS_FQN: req.fqn, WS_PATH: req.path}
        await ws.send_bytes(json.dumps(ctrl).encode())
        if not req.fqn:
            await ws.send_bytes(req.body or b"")
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.BINARY:
            return Reply(200, length=len(msg.data), data=msg.data)
        if msg.type == aiohttp.WSMsgType.TEXT:
            text = str(msg.data).strip()
            if text.isdigit() and req.node_urls:
                if text == "0":
                    raise req.fail("direct put failed (the transformer reported 0 bytes delivered)", 502)
                return Reply(204, delivered=int(text))
            raise req.fail(f"transformer answered: {text[:1000]}", 500)
        raise req.fail(f"the WebSocket closed ({msg.type.name}; transformer crashed?)", 502)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for ws in idle:
            await ws.close()


def make(comm: str, session: aiohttp.ClientSession) -> Communicator:
    if comm == COMM_WS:
        return WebSocketCommunicator(session)
    return HttpCommunicator(session, comm)
