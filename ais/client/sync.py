"""`Client`: the blocking facade over `AsyncClient`, safe across threads and after fork().

Each Client owns one event-loop thread per process, started on first use. Any number of
threads may call one Client at once: their calls run concurrently on that loop, sharing one
connection pool and one cached cluster map. After fork() (DataLoader workers) the child sees a
different process ID and starts its own loop thread and pool on its first call; the parent's
loop, selector and sockets, which the child inherited, are never touched. A Client pickles as
its settings (DataLoader's spawn start method) and rebuilds itself on the other side.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import threading
from typing import Any, AsyncIterator, Coroutine, Iterator, Mapping, Sequence, TypeVar

from ais.client.core import ApiAnswer, AsyncClient, AsyncObjectReader, Body, BucketLike, ClientStats
from ais.client.retry import RetryPolicy
from ais.client.routing import Router
from ais.client.transport import Timeouts, Transport
from ais.client.types import BatchEntry, BatchItem, JobStatus, ListEntry, ListPage, ObjectProps
from ais.cmap import ClusterMap
from ais.names import Bucket

T = TypeVar("T")

# Guards starting a loop thread. Replaced in a forked child: another thread of the parent may
# have held it at the moment of fork(), and would never release the child's copy.
_start_lock = threading.Lock()
# Loop threads inherited from a parent process: never stopped or collected in the child.
_inherited: list["_LoopThread"] = []


def _after_fork_in_child() -> None:
    global _start_lock
    _start_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        return asyncio.new_event_loop()


class _LoopThread:
    """An event loop running forever in a daemon thread of this process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = _new_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ais-client-loop", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a sync ais.client.Client was called from its own event loop; use AsyncClient there")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        fut = self.submit(coro)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    def stop(self) -> None:
        if self.pid == os.getpid() and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            if not self.loop.is_running():
                self.loop.close()


class _Failure:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc


class Client:
    """Blocking client of the native API; the same calls as `AsyncClient`, same arguments."""

    def __init__(self, endpoint: str | None = None, *, direct: bool = True, retry: RetryPolicy | None = None,
                 timeouts: Timeouts | None = None, transport: Transport | None = None, token: str | None = None,
                 max_connections: int = 256, map_ttl_s: float = 60.0, ca_cert: str | None = None,
                 skip_verify: bool | None = None) -> None:
        self._settings: dict[str, Any] = dict(endpoint=endpoint, direct=direct, retry=retry, timeouts=timeouts,
                                              transport=transport, token=token, max_connections=max_connections,
                                              map_ttl_s=map_ttl_s, ca_cert=ca_cert, skip_verify=skip_verify)
        self.aio = AsyncClient(**self._settings)
        self._loop: _LoopThread | None = None

    # --- plumbing ----------------------------------------------------------------------------

    def _loop_thread(self) -> _LoopThread:
        lt = self._loop
        if lt is None or lt.pid != os.getpid():
            with _start_lock:
                lt = self._loop
                if lt is None or lt.pid != os.getpid():
                    if lt is not None:
                        _inherited.append(lt)
                    lt = self._loop = _LoopThread()
        return lt

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop_thread().run(coro)

    def submit(self, coro: Coroutine[Any, Any, T]) -> "concurrent.futures.Future[T]":
        """Start an `AsyncClient` coroutine on this client's loop and return at once (prefetching)."""
        return self._loop_thread().submit(coro)

    def _pull(self, it: Any) -> Iterator[Any]:
        """Drive an async iterator from this thread, one item per hop to the loop."""
        sentinel = object()

        async def step() -> Any:
            try:
                return await it.__anext__()
            except StopAsyncIteration:
                return sentinel

        try:
            while True:
                item = self._run(step())
                if item is sentinel:
                    return
                yield item
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None and self._loop is not None and self._loop.pid == os.getpid():
                self._run(aclose())

    def iterate(self, ait: AsyncIterator[T], prefetch: int = 0) -> Iterator[T]:
        """Drive an `AsyncClient` async iterator from this thread.

        With `prefetch` > 0 it runs ahead on the client's loop, up to that many items, while the
        caller works on the previous ones; closing the returned generator early cancels it.
        """
        if prefetch <= 0:
            return self._pull(ait)
        return self._pump(ait, prefetch)

    def _pump(self, ait: AsyncIterator[T], depth: int) -> Iterator[T]:
        lt = self._loop_thread()
        done = object()

        async def start() -> tuple["asyncio.Queue[Any]", "asyncio.Task[None]"]:
            q: asyncio.Queue[Any] = asyncio.Queue(depth)

            async def produce() -> None:
                try:
                    async for item in ait:
                        await q.put(item)
                    await q.put(done)
                except Exception as exc:   # handed to the consumer, raised there
                    await q.put(_Failure(exc))
                finally:
                    aclose = getattr(ait, "aclose", None)
                    if aclose is not None:
                        await aclose()
            return q, asyncio.get_running_loop().create_task(produce())

        q, task = lt.run(start())
        try:
            while True:
                item = lt.run(q.get())
                if item is done:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            if lt.pid == os.getpid() and lt.loop.is_running():
                lt.loop.call_soon_threadsafe(task.cancel)

    def close(self) -> None:
        lt = self._loop
        if lt is not None and lt.pid == os.getpid():
            lt.run(self.aio.aclose())
            lt.stop()
        self._loop = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self._settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["settings"])  # type: ignore[misc]

    @property
    def endpoint(self) -> str:
        return self.aio.endpoint

    @property
    def stats(self) -> ClientStats:
        return self.aio.stats

    @property
    def router(self) -> Router:
        return self.aio.router

    # --- cluster -----------------------------------------------------------------------------

    def cluster_map(self, refresh: bool = False) -> ClusterMap:
        return self._run(self.aio.cluster_map(refresh))

    def refresh_map(self) -> bool:
        return self._run(self.aio.refresh_map())

    def is_ready(self) -> bool:
        return self._run(self.aio.is_ready())

    def request(self, method: str, path: str, *, params: Sequence[tuple[str, str]] = (), body: Any = None,
                node_url: str = "", idempotent: bool | None = None) -> ApiAnswer:
        """Any native API call the methods here do not cover (see `AsyncClient.request`)."""
        return self._run(self.aio.request(method, path, params=params, body=body, node_url=node_url,
                                          idempotent=idempotent))

    # --- buckets -----------------------------------------------------------------------------

    def create_bucket(self, bucket: BucketLike, *, exist_ok: bool = False,
                      props: Mapping[str, Any] | None = None) -> Bucket:
        return self._run(self.aio.create_bucket(bucket, exist_ok=exist_ok, props=props))

    def destroy_bucket(self, bucket: BucketLike, *, missing_ok: bool = False) -> None:
        self._run(self.aio.destroy_bucket(bucket, missing_ok=missing_ok))

    def list_buckets(self, provider: str = "") -> list[Bucket]:
        return self._run(self.aio.list_buckets(provider))

    def bucket_props(self, bucket: BucketLike) -> dict[str, Any]:
        return self._run(self.aio.bucket_props(bucket))

    def bucket_exists(self, bucket: BucketLike) -> bool:
        return self._run(self.aio.bucket_exists(bucket))

    def set_bucket_props(self, bucket: BucketLike, props: Mapping[str, Any]) -> None:
        self._run(self.aio.set_bucket_props(bucket, props))

    def copy_bucket(self, src: BucketLike, dst: BucketLike, *, prefix: str = "") -> str:
        return self._run(self.aio.copy_bucket(src, dst, prefix=prefix))

    # --- objects -----------------------------------------------------------------------------

    def get_object(self, bucket: BucketLike, name: str, *, offset: int = 0, length: int | None = None,
                   etl_name: str | None = None, archpath: str | None = None, latest: bool = False) -> bytes:
        return self._run(self.aio.get_object(bucket, name, offset=offset, length=length, etl_name=etl_name,
                                             archpath=archpath, latest=latest))

    def open_object(self, bucket: BucketLike, name: str, *, offset: int = 0, length: int | None = None,
                    etl_name: str | None = None, archpath: str | None = None, latest: bool = False) -> "ObjectReader":
        reader = self._run(self.aio.open_object(bucket, name, offset=offset, length=length, etl_name=etl_name,
                                                archpath=archpath, latest=latest))
        return ObjectReader(self, reader)

    def head_object(self, bucket: BucketLike, name: str) -> ObjectProps:
        return self._run(self.aio.head_object(bucket, name))

    def object_exists(self, bucket: BucketLike, name: str) -> bool:
        return self._run(self.aio.object_exists(bucket, name))

    def put_object(self, bucket: BucketLike, name: str, data: Body, *, size: int | None = None) -> ObjectProps:
        """`data`: bytes, str, or an iterator of bytes chunks (pulled on the client's loop thread)."""
        return self._run(self.aio.put_object(bucket, name, data, size=size))

    def put_file(self, bucket: BucketLike, name: str, path: str) -> ObjectProps:
        return self._run(self.aio.put_file(bucket, name, path))

    def delete_object(self, bucket: BucketLike, name: str, *, missing_ok: bool = False) -> None:
        self._run(self.aio.delete_object(bucket, name, missing_ok=missing_ok))

    # --- listing -----------------------------------------------------------------------------

    def list_objects_page(self, bucket: BucketLike, *, prefix: str = "", props: str = "name,size",
                          page_size: int = 0, continuation_token: str = "", uuid: str = "",
                          flags: int = 0, start_after: str = "") -> ListPage:
        return self._run(self.aio.list_objects_page(bucket, prefix=prefix, props=props, page_size=page_size,
                                                    continuation_token=continuation_token, uuid=uuid, flags=flags,
                                                    start_after=start_after))

    def list_objects(self, bucket: BucketLike, *, prefix: str = "", props: str = "name,size",
                     page_size: int = 0, flags: int = 0) -> Iterator[ListEntry]:
        token, uuid = "", ""
        while True:
            page = self.list_objects_page(bucket, prefix=prefix, props=props, page_size=page_size,
                                          continuation_token=token, uuid=uuid, flags=flags)
            yield from page.entries
            token, uuid = page.continuation_token, page.uuid
            if not token:
                return

    def list_all(self, bucket: BucketLike, *, prefix: str = "", props: str = "name,size",
                 flags: int = 0) -> list[ListEntry]:
        return list(self.list_objects(bucket, prefix=prefix, props=props, flags=flags))

    # --- batch-get ---------------------------------------------------------------------------

    def batch_get(self, items: Sequence[BatchItem | str], *, bucket: BucketLike | None = None,
                  mime: str = ".tar", continue_on_error: bool = False, only_obj_name: bool = False,
                  colocation: int = 0, by_owner: bool = False) -> list[BatchEntry]:
        return self._run(self.aio.batch_get(items, bucket=bucket, mime=mime, continue_on_error=continue_on_error,
                                            only_obj_name=only_obj_name, colocation=colocation, by_owner=by_owner))

    def batch_get_bytes(self, items: Sequence[BatchItem | str], *, bucket: BucketLike | None = None,
                        by_owner: bool = False) -> list[bytes]:
        return self._run(self.aio.batch_get_bytes(items, bucket=bucket, by_owner=by_owner))

    def batch_iter(self, items: Sequence[BatchItem | str], *, bucket: BucketLike | None = None,
                   mime: str = ".tar", continue_on_error: bool = False, only_obj_name: bool = False,
                   colocation: int = 0) -> Iterator[BatchEntry]:
        return self._pull(self.aio.batch_iter(items, bucket=bucket, mime=mime, continue_on_error=continue_on_error,
                                              only_obj_name=only_obj_name, colocation=colocation))

    # --- jobs --------------------------------------------------------------------------------

    def job_status(self, job_id: str, kind: str = "") -> JobStatus:
        return self._run(self.aio.job_status(job_id, kind))

    def list_jobs(self, kind: str = "", *, active_only: bool = False) -> list[JobStatus]:
        return self._run(self.aio.list_jobs(kind, active_only=active_only))

    def wait_job(self, job_id: str, kind: str = "", *, timeout_s: float = 300.0,
                 poll_s: float | None = None) -> JobStatus:
        return self._run(self.aio.wait_job(job_id, kind, timeout_s=timeout_s, poll_s=poll_s))

    def abort_job(self, job_id: str, kind: str = "") -> None:
        self._run(self.aio.abort_job(job_id, kind))

    # --- ETL ---------------------------------------------------------------------------------

    def etl_init(self, name: str, image: str, *, command: Sequence[str] = (), comm_type: str = "hpush://",
                 init_timeout: str = "5m", obj_timeout: str = "45s", direct_put: bool = False,
                 env: Mapping[str, str] | None = None) -> str:
        return self._run(self.aio.etl_init(name, image, command=command, comm_type=comm_type,
                                           init_timeout=init_timeout, obj_timeout=obj_timeout,
                                           direct_put=direct_put, env=env))

    def etl_list(self) -> list[dict[str, Any]]:
        return self._run(self.aio.etl_list())

    def etl_details(self, name: str) -> dict[str, Any]:
        return self._run(self.aio.etl_details(name))

    def etl_start(self, name: str) -> None:
        self._run(self.aio.etl_start(name))

    def etl_stop(self, name: str) -> None:
        self._run(self.aio.etl_stop(name))

    def etl_delete(self, name: str) -> None:
        self._run(self.aio.etl_delete(name))


class ObjectReader(io.RawIOBase):
    """A blocking, file-like view of an object being read (`read`, `readinto`, iteration by chunk)."""

    def __init__(self, client: Client, reader: AsyncObjectReader) -> None:
        super().__init__()
        self._client = client
        self._reader = reader
        self._chunks = reader.iter_chunks()
        self._buf = b""
        self._eof = False
        self.props = reader.props

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        if self._eof:
            return b""

        async def step() -> bytes | None:
            try:
                return await self._chunks.__anext__()
            except StopAsyncIteration:
                return None

        chunk = self._client._run(step())
        if chunk is None:
            self._eof = True
            return b""
        return chunk

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if not self._buf:
            self._buf = self._next_chunk()
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def readall(self) -> bytes:
        parts = [self._buf]
        self._buf = b""
        while chunk := self._next_chunk():
            parts.append(chunk)
        return b"".join(parts)

    def iter_chunks(self) -> Iterator[bytes]:
        if self._buf:
            yield self._buf
            self._buf = b""
        while chunk := self._next_chunk():
            yield chunk

    def close(self) -> None:
        if not self.closed:
            lt = self._client._loop
            if lt is not None and lt.pid == os.getpid():
                self._client._run(self._reader.aclose())
        super().close()

