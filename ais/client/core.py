"""`AsyncClient`: the asyncio core of `ais.client`.

Every call becomes one logical request (`_Call`) that `_send()` carries through routing
(straight to the owning target when the cluster map is known, else a proxy), redirects
(followed, with the body replayed; a redirect from a target marks the map stale), retries
(`RetryPolicy`: 429/503 and transport failures, idempotent calls only) and error mapping
(`errors.from_response`). Nothing here knows aiohttp: that is the transport's business.

An AsyncClient may be used from one event loop at a time; after fork() or on a new loop it
builds a fresh connection pool on first use (see transport.py). Thread-safe use is what the
sync facade (`ais.client.Client`) is for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence, Union
from urllib.parse import quote, urljoin

import msgpack

from ais import apc
from ais.client import errors
from ais.client.archive import iter_archive_bytes, iter_tar_lists
from ais.client.errors import (BucketNotFound, ClientError, DecodeError, InvalidName, ObjectNotFound, StatusError,
                               TransportError, WaitTimeout)
from ais.client.retry import IDEMPOTENT_METHODS, RetryPolicy
from ais.client.routing import Route, Router
from ais.client.transport import (AiohttpTransport, BytesPayload, FilePayload, Payload, Request, Response,
                                  StreamPayload, Timeouts, Transport)
from ais.client.types import (BatchEntry, BatchItem, JobStatus, ListEntry, ListPage, ObjectProps)
from ais.cmap import ClusterMap
from ais.errors import AisError
from ais.names import Bucket, make_bucket
from ais.tls import user_context

BucketLike = Union[str, Bucket]
Body = Union[bytes, bytearray, memoryview, str, AsyncIterator[bytes], Iterable[bytes]]

USER_AGENT = "ais-py-client/0.1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 4
_MAX_ERROR_BODY = 64 << 10
_STREAM_KEEP_BYTES = 8 << 20


def to_bucket(bucket: BucketLike) -> Bucket:
    """`Bucket`, `"name"` (an ais bucket), or `"prov://name"` (`s3://`, `gs://`, `az://`, `ais://@ns#x/name`)."""
    if isinstance(bucket, Bucket):
        return bucket
    provider, sep, rest = bucket.partition("://")
    if not sep:
        provider, rest = "", bucket
    rest = rest.strip("/")
    namespace = ""
    if rest.startswith("@") and "/" in rest:
        namespace, _, rest = rest.partition("/")
    try:
        return make_bucket(rest, provider, namespace)
    except AisError as exc:
        raise InvalidName(exc.message) from exc


def bucket_params(bck: Bucket) -> list[tuple[str, str]]:
    params = [(apc.Q_PROVIDER, bck.provider)]
    if not bck.namespace.is_global:
        params.append((apc.Q_NAMESPACE, bck.namespace.uname))
    return params


def object_path(bck: Bucket, name: str) -> str:
    if not name:
        raise InvalidName("object name is empty")
    return f"/{apc.VERSION}/{apc.OBJECTS}/{quote(bck.name, safe='')}/{quote(name, safe='/')}"


@dataclass
class ClientStats:
    """Counters of what the client did (per process; a forked child starts from the parent's)."""

    requests: int = 0
    direct: int = 0              # sent straight to a target
    via_proxy: int = 0
    redirects: int = 0           # redirects followed
    target_redirects: int = 0    # ... of which a target said it was not the owner
    retries: int = 0
    throttled: int = 0           # 429/503 answers retried
    transport_errors: int = 0
    map_fetches: int = 0
    map_changes: int = 0


@dataclass
class _Call:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    payload: Payload | None = None
    obj: tuple[Bucket, str] | None = None     # object calls may be routed straight to the owner
    batch: Sequence[tuple[Bucket, str]] | None = None   # batch-get: straight to the main owner
    idempotent: bool = True
    stream: bool = False
    base_url: str = ""           # a given node's public URL (admin calls to one node)


@dataclass(frozen=True)
class ApiAnswer:
    """A successful answer of `AsyncClient.request()`: status, headers (lower-cased) and body."""

    status: int
    headers: Mapping[str, str]
    data: bytes

    def json(self) -> Any:
        if not self.data:
            return None
        try:
            return json.loads(self.data)
        except ValueError as exc:
            raise DecodeError(f"expected JSON, got {self.data[:200]!r}") from exc

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace").strip()


class AsyncClient:
    """Async client of the native API.

    `endpoint`: a proxy's public URL (default: env `AIS_ENDPOINT`). `direct`: send object
    requests straight to their owning targets. `transport`: any `Transport` (tests pass fakes).
    """

    def __init__(self, endpoint: str | None = None, *, direct: bool = True, retry: RetryPolicy | None = None,
                 timeouts: Timeouts | None = None, transport: Transport | None = None, token: str | None = None,
                 max_connections: int = 256, map_ttl_s: float = 60.0,
                 stream_keep_bytes: int = _STREAM_KEEP_BYTES, ca_cert: str | None = None,
                 skip_verify: bool | None = None) -> None:
        endpoint = endpoint or os.environ.get("AIS_ENDPOINT", "")
        if not endpoint:
            raise InvalidName("no endpoint: pass one or set AIS_ENDPOINT")
        self.endpoint = endpoint.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.router = Router(self.endpoint, direct=direct, ttl_s=map_ttl_s)
        self.stats = ClientStats()
        self.stream_keep_bytes = stream_keep_bytes
        self._token = token if token is not None else os.environ.get("AIS_AUTHN_TOKEN", "")
        self._headers = {"User-Agent": USER_AGENT}
        if self._token:
            self._headers["Authorization"] = f"Bearer {self._token}"
        self._max_connections = max_connections
        self._own_transport = transport is None
        self._transport: Transport = transport or AiohttpTransport(max_connections=max_connections,
                                                                   headers=self._headers,
                                                                   ssl=user_context(ca_cert, skip_verify))
        self._map_fetch: tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the request pipeline ----------------------------------------------------------------

    async def _route(self, call: _Call, force_proxy: bool) -> Route:
        if call.base_url:
            return Route(call.base_url)
        if (call.obj is None and call.batch is None) or force_proxy:
            return Route(self.router.proxy_url())
        if self.router.needs_refresh():
            await self.refresh_map()
        if call.obj is not None:
            return self.router.route_object(*call.obj)
        assert call.batch is not None
        return self.router.route_batch(call.batch)

    async def _send(self, call: _Call) -> Response:
        """One logical request: route, follow redirects, retry, map errors. Returns a 2xx response."""
        attempt, redirects = 1, 0
        force_proxy = rechecked = False
        location: str | None = None
        headers = {**self._headers, **call.headers}
        while True:
            route = Route(location) if location else await self._route(call, force_proxy)
            url = location or route.base_url + call.path
            body = call.payload.open() if call.payload is not None else None
            req = Request(call.method, url, () if location else call.params, headers, body,
                          self.timeouts, call.stream)
            self.stats.requests += 1
            if route.direct:
                self.stats.direct += 1
            elif not location:
                self.stats.via_proxy += 1
            try:
                resp = await self._transport.send(req)
            except TransportError as exc:
                self.stats.transport_errors += 1
                if route.direct:
                    self.router.target_unreachable(route.target_id)
                elif location:
                    self.router.mark_stale()
                else:
                    self.router.proxy_unreachable()
                if not self.retry.should_retry_error(exc, attempt, call.idempotent):
                    raise
                await self._backoff(attempt, None)
                attempt, location = attempt + 1, None
                continue

            # redirects: a proxy pointing at the owner, or a target that is not the owner
            if resp.status in _REDIRECTS:
                target = resp.headers.get("location", "")
                await resp.aclose()
                if not target or redirects >= _MAX_REDIRECTS:
                    raise StatusError(resp.status, f"redirect without a usable Location ({redirects} followed)",
                                      url=url)
                if route.direct:
                    self.stats.target_redirects += 1
                    self.router.mark_stale()
                self.stats.redirects += 1
                redirects += 1
                location = urljoin(url, target)
                continue

            # throttled: wait as told, then route afresh
            if self.retry.should_retry_status(resp.status, attempt, call.idempotent):
                retry_after = errors.parse_retry_after(resp.headers.get("retry-after"))
                await resp.aclose()
                self.stats.throttled += 1
                await self._backoff(attempt, retry_after)
                attempt, location = attempt + 1, None
                continue

            if resp.status < 400:
                return resp

            err = await self._error(resp, url)
            if route.direct and isinstance(err, BucketNotFound) and not force_proxy:
                # the target may not have the bucket's metadata yet: the proxy knows, and tells it
                force_proxy, location = True, None
                continue
            if (route.direct and call.obj is not None and isinstance(err, ObjectNotFound) and not rechecked
                    and self.router.may_recheck()):
                # found nothing where the map pointed: if the map moved, ask the new owner
                rechecked = True
                assert call.obj is not None
                if await self.refresh_map() and self.router.route_object(*call.obj) != route:
                    location = None
                    continue
            raise err

    async def _backoff(self, attempt: int, retry_after: float | None) -> None:
        self.stats.retries += 1
        await self.retry.sleep(self.retry.wait_s(attempt, retry_after))

    @staticmethod
    async def _error(resp: Response, url: str) -> StatusError:
        body = b""
        try:
            async for chunk in resp.iter_chunks():
                body += chunk
                if len(body) >= _MAX_ERROR_BODY:
                    break
        except TransportError:
            pass
        finally:
            await resp.aclose()
        return errors.from_response(resp.status, body, resp.headers, url)

    async def _json(self, call: _Call) -> Any:
        resp = await self._send(call)
        data = await resp.read()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise DecodeError(f"{call.method} {call.path}: expected JSON, got {data[:200]!r}") from exc

    async def _text(self, call: _Call) -> str:
        resp = await self._send(call)
        return (await resp.read()).decode("utf-8", "replace").strip()

    async def _empty(self, call: _Call) -> Response:
        resp = await self._send(call)
        await resp.read()
        return resp

    @staticmethod
    def _action(action: str, value: Any = None, name: str = "") -> BytesPayload:
        return BytesPayload(json.dumps({"action": action, "name": name, "value": value}).encode())

    @staticmethod
    def _json_headers() -> dict[str, str]:
        return {"Content-Type": apc.JSON}

    # --- cluster -----------------------------------------------------------------------------

    async def refresh_map(self) -> bool:
        """Fetch the cluster map now (concurrent callers share one fetch); True if its version moved."""
        loop = asyncio.get_running_loop()
        pending = self._map_fetch
        if pending is not None and pending[0] == os.getpid() and pending[1] is loop and not pending[2].done():
            before = self.router.smap.version if self.router.smap else -1
            await asyncio.shield(pending[2])
            return (self.router.smap.version if self.router.smap else -1) != before
        fut: asyncio.Future[None] = loop.create_future()
        self._map_fetch = (os.getpid(), loop, fut)
        try:
            moved = await self._fetch_map()
        finally:
            fut.set_result(None)
        return moved

    async def _fetch_map(self) -> bool:
        self.stats.map_fetches += 1
        call = _Call("GET", f"/{apc.VERSION}/{apc.DAEMON}", [(apc.Q_WHAT, apc.WHAT_SMAP)])
        try:
            doc = await self._json(call)
            smap = ClusterMap.from_wire(doc)
        except ClientError:
            self.router.fetch_failed()
            return False
        except (KeyError, TypeError, ValueError) as exc:
            self.router.fetch_failed()
            raise DecodeError(f"malformed cluster map: {exc!r}") from exc
        moved = self.router.install(smap)
        if moved:
            self.stats.map_changes += 1
        return moved

    async def cluster_map(self, refresh: bool = False) -> ClusterMap:
        if refresh or self.router.smap is None:
            await self.refresh_map()
        if self.router.smap is None:
            raise errors.ConnectError("cannot fetch the cluster map", url=self.endpoint)
        return self.router.smap

    async def is_ready(self) -> bool:
        try:
            await self._empty(_Call("GET", f"/{apc.VERSION}/{apc.HEALTH}", [(apc.Q_PRR, "true")], idempotent=False))
        except ClientError:
            return False
        return True

    async def request(self, method: str, path: str, *, params: Sequence[tuple[str, str]] = (), body: Any = None,
                      node_url: str = "", idempotent: bool | None = None) -> ApiAnswer:
        """Any native API call the methods here do not cover (admin and control-plane requests, used
        by the CLI): `path` (e.g. `/v1/cluster`) at a proxy, or at `node_url` (a node's public URL);
        `body` is sent as JSON. Redirects, retries and errors as for every other call."""
        payload = BytesPayload(json.dumps(body).encode()) if body is not None else None
        call = _Call(method, path, list(params), self._json_headers() if payload else {}, payload,
                     idempotent=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
                     base_url=node_url.rstrip("/"))
        resp = await self._send(call)
        data = await resp.read()
        return ApiAnswer(resp.status, resp.headers, data)

    # --- buckets -----------------------------------------------------------------------------

    def _bucket_call(self, method: str, bck: Bucket, payload: Payload | None = None, *, idempotent: bool = True,
                     params: Sequence[tuple[str, str]] = ()) -> _Call:
        return _Call(method, f"/{apc.VERSION}/{apc.BUCKETS}/{quote(bck.name, safe='')}",
                     bucket_params(bck) + list(params), self._json_headers() if payload else {}, payload,
                     idempotent=idempotent)

    async def create_bucket(self, bucket: BucketLike, *, exist_ok: bool = False,
                            props: Mapping[str, Any] | None = None) -> Bucket:
        bck = to_bucket(bucket)
        try:
            await self._empty(self._bucket_call("POST", bck, self._action(apc.ACT_CREATE_BCK, props),
                                                idempotent=False))
        except errors.BucketExists:
            if not exist_ok:
                raise
        return bck

    async def destroy_bucket(self, bucket: BucketLike, *, missing_ok: bool = False) -> None:
        bck = to_bucket(bucket)
        try:
            await self._empty(self._bucket_call("DELETE", bck, self._action(apc.ACT_DESTROY_BCK)))
        except errors.NotFound:
            if not missing_ok:
                raise

    async def list_buckets(self, provider: str = "") -> list[Bucket]:
        call = _Call("GET", f"/{apc.VERSION}/{apc.BUCKETS}", [(apc.Q_PROVIDER, provider)], self._json_headers(),
                     self._action(apc.ACT_LIST))
        out = []
        for d in await self._json(call) or []:
            ns = d.get("namespace") or {}
            uname = f"@{ns.get('uuid', '')}#{ns.get('name', '')}" if ns.get("uuid") or ns.get("name") else ""
            out.append(make_bucket(d["name"], d.get("provider", ""), uname))
        return out

    async def bucket_props(self, bucket: BucketLike) -> dict[str, Any]:
        """The bucket's properties (HEAD); BucketNotFound if it does not exist."""
        bck = to_bucket(bucket)
        resp = await self._empty(self._bucket_call("HEAD", bck))
        try:
            props: dict[str, Any] = json.loads(resp.headers.get("ais-bucket-props") or "{}")
        except ValueError as exc:
            raise DecodeError(f"malformed bucket props of {bck.cname}") from exc
        return props

    async def bucket_exists(self, bucket: BucketLike) -> bool:
        try:
            await self.bucket_props(bucket)
        except errors.NotFound:
            return False
        return True

    async def set_bucket_props(self, bucket: BucketLike, props: Mapping[str, Any]) -> None:
        bck = to_bucket(bucket)
        await self._empty(self._bucket_call("PATCH", bck, self._action(apc.ACT_SET_BPROPS, dict(props)),
                                            idempotent=False))

    async def copy_bucket(self, src: BucketLike, dst: BucketLike, *, prefix: str = "") -> str:
        """Start a copy-bucket job; returns its ID."""
        s, d = to_bucket(src), to_bucket(dst)
        value = {"prefix": prefix} if prefix else {}
        return await self._text(self._bucket_call("POST", s, self._action(apc.ACT_COPY_BCK, value), idempotent=False,
                                                  params=[(apc.Q_BCK_TO, d.uname)]))

    # --- objects -----------------------------------------------------------------------------

    def _object_call(self, method: str, bck: Bucket, name: str, *, params: Sequence[tuple[str, str]] = (),
                     headers: Mapping[str, str] | None = None, payload: Payload | None = None,
                     stream: bool = False) -> _Call:
        return _Call(method, object_path(bck, name), bucket_params(bck) + list(params), dict(headers or {}),
                     payload, obj=(bck, name), idempotent=method in IDEMPOTENT_METHODS, stream=stream)

    @staticmethod
    def _read_params(etl_name: str | None, archpath: str | None, latest: bool) -> list[tuple[str, str]]:
        params = []
        if etl_name:
            params.append(("etl_name", etl_name))
        if archpath:
            params.append(("archpath", archpath))
        if latest:
            params.append((apc.Q_LATEST_VER, "true"))
        return params

    @staticmethod
    def _range_header(offset: int, length: int | None) -> dict[str, str]:
        if offset == 0 and length is None:
            return {}
        if offset < 0 or (length is not None and length <= 0):
            raise ValueError(f"invalid range offset={offset} length={length}")
        end = "" if length is None else str(offset + length - 1)
        return {"Range": f"bytes={offset}-{end}"}

    async def get_object(self, bucket: BucketLike, name: str, *, offset: int = 0, length: int | None = None,
                         etl_name: str | None = None, archpath: str | None = None, latest: bool = False) -> bytes:
        """The object's content (or `length` bytes from `offset`; a file inside a shard with `archpath`)."""
        reader = await self.open_object(bucket, name, offset=offset, length=length, etl_name=etl_name,
                                        archpath=archpath, latest=latest)
        return await reader.read()

    async def open_object(self, bucket: BucketLike, name: str, *, offset: int = 0, length: int | None = None,
                          etl_name: str | None = None, archpath: str | None = None, latest: bool = False,
                          max_resume: int = 3) -> "AsyncObjectReader":
        """A streaming reader; a whole-object read resumes with a Range request if the connection breaks."""
        bck = to_bucket(bucket)
        call = self._object_call("GET", bck, name, params=self._read_params(etl_name, archpath, latest),
                                 headers=self._range_header(offset, length), stream=True)
        resp = await self._send(call)
        resumable = not etl_name and not archpath and offset == 0 and length is None
        return AsyncObjectReader(self, call, resp, max_resume if resumable else 0)

    async def head_object(self, bucket: BucketLike, name: str) -> ObjectProps:
        bck = to_bucket(bucket)
        resp = await self._empty(self._object_call("HEAD", bck, name))
        return ObjectProps.from_headers(resp.headers)

    async def object_exists(self, bucket: BucketLike, name: str) -> bool:
        try:
            await self.head_object(bucket, name)
        except errors.NotFound:
            return False
        return True

    async def put_object(self, bucket: BucketLike, name: str, data: Body, *,
                         size: int | None = None) -> ObjectProps:
        """Store `data`: bytes, str, or an (async) iterator of bytes chunks (streamed; `size` if known)."""
        bck = to_bucket(bucket)
        payload: Payload
        if isinstance(data, str):
            payload = BytesPayload(data.encode())
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload = BytesPayload(bytes(data))
        elif hasattr(data, "__aiter__"):
            payload = StreamPayload(data.__aiter__(), self.stream_keep_bytes, size)
        else:
            payload = StreamPayload(_aiter_sync(data), self.stream_keep_bytes, size)
        return await self._put(bck, name, payload)

    async def put_file(self, bucket: BucketLike, name: str, path: str) -> ObjectProps:
        bck = to_bucket(bucket)
        size = await asyncio.get_running_loop().run_in_executor(None, os.path.getsize, path)
        return await self._put(bck, name, FilePayload(path, size))

    async def _put(self, bck: Bucket, name: str, payload: Payload) -> ObjectProps:
        headers = {"Content-Type": "application/octet-stream"}
        if payload.size is not None:
            headers["Content-Length"] = str(payload.size)
        resp = await self._empty(self._object_call("PUT", bck, name, headers=headers, payload=payload))
        props = ObjectProps.from_headers(resp.headers)
        return replace(props, size=payload.size) if payload.size is not None else props

    async def delete_object(self, bucket: BucketLike, name: str, *, missing_ok: bool = False) -> None:
        bck = to_bucket(bucket)
        try:
            await self._empty(self._object_call("DELETE", bck, name))
        except errors.NotFound:
            if not missing_ok:
                raise

    # --- listing -----------------------------------------------------------------------------

    async def list_objects_page(self, bucket: BucketLike, *, prefix: str = "", props: str = "name,size",
                                page_size: int = 0, continuation_token: str = "", uuid: str = "",
                                flags: int = 0, start_after: str = "") -> ListPage:
        bck = to_bucket(bucket)
        value: dict[str, Any] = {"prefix": prefix, "pagesize": page_size, "uuid": uuid, "props": props,
                                 "continuation_token": continuation_token, "flags": str(flags)}
        if start_after:
            value["start_after"] = start_after
        call = self._bucket_call("GET", bck, self._action(apc.ACT_LIST, value))
        call.headers["Accept"] = apc.MSGPACK
        resp = await self._send(call)
        data = await resp.read()
        return _decode_list_page(data, resp.headers.get("content-type", ""))

    async def list_objects(self, bucket: BucketLike, *, prefix: str = "", props: str = "name,size",
                           page_size: int = 0, flags: int = 0) -> AsyncIterator[ListEntry]:
        """Every matching object, page by page (names in order)."""
        token, uuid = "", ""
        while True:
            page = await self.list_objects_page(bucket, prefix=prefix, props=props, page_size=page_size,
                                                continuation_token=token, uuid=uuid, flags=flags)
            for entry in page.entries:
                yield entry
            token, uuid = page.continuation_token, page.uuid
            if not token:
                return

    async def list_all(self, bucket: BucketLike, *, prefix: str = "", props: str = "name,size",
                       flags: int = 0) -> list[ListEntry]:
        return [e async for e in self.list_objects(bucket, prefix=prefix, props=props, flags=flags)]

    # --- batch-get (GetBatch, reference §7) --------------------------------------------------

    def _batch_call(self, items: Sequence[BatchItem | str], bucket: BucketLike | None, mime: str,
                    continue_on_error: bool, only_obj_name: bool, streaming: bool,
                    colocation: int, one_owner: bool = False) -> tuple[_Call, list[Bucket]]:
        """The request of a batch and each item's bucket; `one_owner`: all its items have one
        owner (the request is routed by the first)."""
        default = to_bucket(bucket) if bucket is not None else None
        if not items:
            raise ValueError("a batch needs at least one item")
        buckets: list[Bucket] = []
        entries = []
        for it in items:
            bck, name = _item_of(it, default)
            buckets.append(bck)
            d: dict[str, Any] = {"objname": name, "bucket": bck.name, "provider": bck.provider}
            if isinstance(it, str):   # the common case: a whole object
                entries.append(d)
                continue
            if it.archpath:
                d["archpath"] = it.archpath
            if it.opaque:
                d["opaque"] = base64.b64encode(it.opaque).decode()
            if it.offset:
                d["start"] = it.offset
            if it.length:
                d["length"] = it.length
            entries.append(d)
        req: dict[str, Any] = {"in": entries, "mime": mime, "coer": continue_on_error, "onob": only_obj_name,
                               "strm": streaming}
        params: list[tuple[str, str]] = []
        path = f"/{apc.VERSION}/ml/moss"
        if default is not None:
            path += f"/{quote(default.name, safe='')}"
            params = bucket_params(default)
        if colocation:
            req["coloc"] = colocation
            params.append(("coloc", str(colocation)))
        route = [(buckets[0], entries[0]["objname"])] if one_owner else \
            [(b, e["objname"]) for b, e in zip(buckets, entries)]
        call = _Call("GET", path, params, self._json_headers(), BytesPayload(json.dumps(req).encode()),
                     batch=route, stream=True)
        return call, buckets

    async def batch_iter(self, items: Sequence[BatchItem | str], *, bucket: BucketLike | None = None,
                         mime: str = ".tar", continue_on_error: bool = False, only_obj_name: bool = False,
                         colocation: int = 0) -> AsyncIterator[BatchEntry]:
        """Fetch many objects (or files in shards, or ranges) with one request; entries arrive in
        request order as the archive streams in. ZIP output is buffered whole."""
        async for entries in self._batch_lists(items, bucket, mime, continue_on_error, only_obj_name, colocation):
            for e in entries:
                yield e

    async def batch_get(self, items: Sequence[BatchItem | str], *, bucket: BucketLike | None = None,
                        mime: str = ".tar", continue_on_error: bool = False, only_obj_name: bool = False,
                        colocation: int = 0, by_owner: bool = False) -> list[BatchEntry]:
        """All entries of a batch, in request order.

        `by_owner`: one request per target that owns entries, sent to that target and run
        concurrently, so that every target answers from its own disks and none relays another's
        entries (the cluster's cheapest way to serve a batch); the answers are merged in request
        order. Without direct routing or a cluster map it is one request, as without `by_owner`.
        """
        entries: list[BatchEntry] = await self._batch_collect(items, bucket, mime, continue_on_error, only_obj_name,
                                                              colocation, by_owner, False)
        return entries

    async def batch_get_bytes(self, items: Sequence[BatchItem | str], *, bucket: BucketLike | None = None,
                              by_owner: bool = False) -> list[bytes]:
        """The contents of a batch's entries, in request order: `batch_get` without an object per
        entry (what data loaders need, by the thousand). Any missing entry fails the batch."""
        datas: list[bytes] = await self._batch_collect(items, bucket, ".tar", False, False, 0, by_owner, True)
        return datas

    async def _batch_collect(self, items: Sequence[BatchItem | str], bucket: BucketLike | None, mime: str,
                             continue_on_error: bool, only_obj_name: bool, colocation: int, by_owner: bool,
                             raw: bool) -> list[Any]:
        groups: list[Sequence[int]] = [range(len(items))]
        if by_owner and len(items) > 1:
            groups = list(await self._owner_groups(items, bucket))

        async def one(idxs: Sequence[int]) -> list[Any]:
            got: list[Any] = []
            part = items if len(groups) == 1 else [items[i] for i in idxs]
            async for entries in self._batch_lists(part, bucket, mime, continue_on_error, only_obj_name, colocation,
                                                   len(groups) > 1, raw):
                got += entries
            return got
        if len(groups) == 1:
            return await one(groups[0])
        tasks = [asyncio.ensure_future(one(idxs)) for idxs in groups]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        placed: dict[int, Any] = {}
        for idxs, entries in zip(groups, answers):
            placed.update(zip(idxs, entries))
        return [placed[i] for i in range(len(items))]   # every position is in exactly one group

    async def _owner_groups(self, items: Sequence[BatchItem | str], bucket: BucketLike | None) -> list[list[int]]:
        if self.router.needs_refresh():
            await self.refresh_map()
        default = to_bucket(bucket) if bucket is not None else None
        return self.router.split_batch([_item_of(it, default) for it in items])

    async def _batch_lists(self, items: Sequence[BatchItem | str], bucket: BucketLike | None, mime: str,
                           continue_on_error: bool, only_obj_name: bool, colocation: int,
                           one_owner: bool = False, raw: bool = False) -> AsyncIterator[list[Any]]:
        """The entries of one batch-get (`BatchEntry`s; their contents only with `raw`), a list
        per piece of the archive received."""
        call, buckets = self._batch_call(items, bucket, mime, continue_on_error, only_obj_name, True,
                                         colocation, one_owner)
        resp = await self._send(call)
        try:
            if mime == ".zip":
                lists: AsyncIterator[list[tuple[str, bytes]]] = _aiter_sync(
                    [list(iter_archive_bytes(await resp.read(), mime))])
            else:
                lists = iter_tar_lists(resp.iter_chunks(), gzip=mime in (".tgz", ".tar.gz"))
            i, n = 0, len(items)
            async for members in lists:
                if i + len(members) > n:
                    raise DecodeError(f"batch-get answered more entries than the {n} asked for")
                if raw:
                    if any(m.startswith("__404__/") for m, _ in members):
                        raise DecodeError("batch-get answered a missing entry to a batch that does not continue "
                                          "on errors")
                    i += len(members)
                    yield [data for _, data in members]
                    continue
                entries = []
                for member, data in members:
                    it = items[i]
                    item = it if isinstance(it, BatchItem) else BatchItem(it)
                    err = ""
                    if member.startswith("__404__/"):
                        err = f"{buckets[i].object_cname(item.name)}: missing ({member})"
                    entries.append(BatchEntry(item, buckets[i], data, err))
                    i += 1
                yield entries
            if i != n:
                raise DecodeError(f"batch-get answered {i} entries, {n} were asked for")
        finally:
            await resp.aclose()

    # --- jobs --------------------------------------------------------------------------------

    def _cluster_call(self, method: str, what: str | None, body: Any, idempotent: bool = True) -> _Call:
        params = [(apc.Q_WHAT, what)] if what else []
        return _Call(method, f"/{apc.VERSION}/{apc.CLUSTER}", params, self._json_headers(),
                     BytesPayload(json.dumps(body).encode()), idempotent=idempotent)

    async def job_status(self, job_id: str, kind: str = "") -> JobStatus:
        doc = await self._json(self._cluster_call("GET", apc.WHAT_STATUS, {"ID": job_id, "Kind": kind}))
        if not isinstance(doc, dict):
            raise DecodeError(f"malformed job status: {doc!r}")
        return JobStatus.from_wire(doc)

    async def list_jobs(self, kind: str = "", *, active_only: bool = False) -> list[JobStatus]:
        doc = await self._json(self._cluster_call("GET", apc.WHAT_STATUS_ALL,
                                                  {"kind": kind, "node": "", "show_active": active_only}))
        return [JobStatus.from_wire(d) for d in doc or []]

    async def wait_job(self, job_id: str, kind: str = "", *, timeout_s: float = 300.0,
                       poll_s: float | None = None) -> JobStatus:
        """Poll until the job has finished (or was aborted); WaitTimeout after `timeout_s`."""
        poll = poll_s if poll_s is not None else max(0.05, min(1.0, timeout_s / 64))
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.job_status(job_id, kind)
            if status.finished:
                return status
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} has not finished after {timeout_s:.0f}s")
            await asyncio.sleep(poll)

    async def abort_job(self, job_id: str, kind: str = "") -> None:
        await self._empty(self._cluster_call("PUT", None, {"action": apc.ACT_STOP,
                                                          "value": {"ID": job_id, "Kind": kind}}))

    # --- ETL (reference §6.1; thin) ----------------------------------------------------------

    def _etl_call(self, method: str, suffix: str = "", body: Any = None, idempotent: bool = False) -> _Call:
        payload = BytesPayload(json.dumps(body).encode()) if body is not None else None
        return _Call(method, f"/{apc.VERSION}/etl{suffix}", [], self._json_headers() if payload else {}, payload,
                     idempotent=idempotent)

    async def etl_init(self, name: str, image: str, *, command: Sequence[str] = (), comm_type: str = "hpush://",
                       init_timeout: str = "5m", obj_timeout: str = "45s", direct_put: bool = False,
                       env: Mapping[str, str] | None = None) -> str:
        """Start a transformer on every target; returns the ETL's job ID."""
        msg = {"name": name, "communication": comm_type, "init_timeout": init_timeout, "obj_timeout": obj_timeout,
               "support_direct_put": direct_put,
               "runtime": {"image": image, "command": list(command),
                           "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}}
        return await self._text(self._etl_call("PUT", "", msg))

    async def etl_list(self) -> list[dict[str, Any]]:
        return list(await self._json(self._etl_call("GET", idempotent=True)) or [])

    async def etl_details(self, name: str) -> dict[str, Any]:
        return dict(await self._json(self._etl_call("GET", f"/{quote(name, safe='')}", idempotent=True)) or {})

    async def etl_start(self, name: str) -> None:
        await self._empty(self._etl_call("POST", f"/{quote(name, safe='')}/start"))

    async def etl_stop(self, name: str) -> None:
        await self._empty(self._etl_call("POST", f"/{quote(name, safe='')}/stop"))

    async def etl_delete(self, name: str) -> None:
        await self._empty(self._etl_call("DELETE", f"/{quote(name, safe='')}"))


class AsyncObjectReader:
    """An object being read: `props` from the answer's headers, the body as chunks.

    A whole-object read whose connection breaks continues with `Range: bytes=<offset>-` (up to
    `max_resume` times), provided the object's version and checksum did not change.
    """

    def __init__(self, client: AsyncClient, call: _Call, resp: Response, max_resume: int) -> None:
        self._client = client
        self._call = call
        self._resp = resp
        self._max_resume = max_resume
        self.props = ObjectProps.from_headers(resp.headers)
        self.status = resp.status

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        offset, resumes = 0, 0
        resp = self._resp
        while True:
            try:
                async for chunk in resp.iter_chunks():
                    offset += len(chunk)
                    yield chunk
                return
            except (errors.ReadError, errors.RequestTimeout):
                if resumes >= self._max_resume:
                    raise
            resumes += 1
            call = replace(self._call, headers={**self._call.headers, "Range": f"bytes={offset}-"})
            resp = await self._client._send(call)
            self._resp = resp
            now = ObjectProps.from_headers(resp.headers)
            if (now.version, now.checksum_value) != (self.props.version, self.props.checksum_value):
                await resp.aclose()
                raise errors.ReadError(f"the object changed while being read (at byte {offset})", url=resp.url)

    async def read(self) -> bytes:
        if self._max_resume == 0:
            return await self._resp.read()
        return b"".join([c async for c in self.iter_chunks()])

    async def aclose(self) -> None:
        await self._resp.aclose()

    async def __aenter__(self) -> "AsyncObjectReader":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _aiter_sync(it: Iterable[Any]) -> AsyncIterator[Any]:
    for x in it:
        yield x


def _decode_list_page(data: bytes, content_type: str) -> ListPage:
    """A list-objects answer: msgpack with Go field names, or the JSON form (reference §2)."""
    try:
        if content_type.startswith(apc.MSGPACK):
            doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
            entries = [ListEntry(name=e["n"], size=int(e.get("s") or 0), checksum=e.get("cs", ""),
                                 atime=e.get("a", ""), version=e.get("v", ""), location=e.get("t", ""),
                                 custom=e.get("m", ""), copies=int(e.get("c") or 0), flags=int(e.get("f") or 0))
                       for e in doc.get("Entries") or []]
            return ListPage(entries, doc.get("ContinuationToken") or "", doc.get("UUID") or "")
        doc = json.loads(data)
        entries = [ListEntry(name=e["name"], size=int(e.get("size") or 0), checksum=e.get("checksum", ""),
                             atime=e.get("atime", ""), version=e.get("version", ""), location=e.get("location", ""),
                             custom=e.get("custom-md", ""), copies=int(e.get("copies") or 0),
                             flags=int(e.get("flags") or 0))
                   for e in doc.get("entries") or []]
        return ListPage(entries, doc.get("continuation_token") or "", doc.get("uuid") or "")
    except (ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed list-objects page: {exc!r}") from exc


def _item_of(item: BatchItem | str, default: Bucket | None) -> tuple[Bucket, str]:
    """A batch item's bucket and object name (a plain name is an object of the default bucket)."""
    name, bck = (item, default) if isinstance(item, str) else (item.name, item.bucket or default)
    if bck is None:
        raise ValueError(f"batch item {name!r} names no bucket and the batch has no default bucket")
    return bck, name
