"""Google Cloud Storage backend (google-cloud-storage), also for gcp-storage-emulator.

The SDK is synchronous, so every call runs in this backend's bounded thread pool. The SDK's
own retries are switched off (`retry=None`): they sleep in a pool thread and count time, not
attempts. Instead `_call` retries idempotent calls `max_retries` times, sleeping on the loop.
A GET streams one HTTP response, pinned to the generation the HEAD saw, in `read_chunk_bytes`
reads, each one hop into the pool.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import quote

import google.api_core.exceptions as gexc
import google.auth.exceptions
import requests
import requests.adapters
import urllib3.exceptions
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from ais.config import BackendSection
from ais.errors import AisError, BucketNotFound, ObjectNotFound
from target.backends.base import (BackendError, BackendForbidden, BackendThrottled, BackendUnreachable, RemoteAttrs,
                                  RemoteEntry, RemotePage)

log = logging.getLogger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
_TIMEOUT = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
_BACKOFF_S, _BACKOFF_MAX_S = 0.1, 5.0
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
# Our own continuation token, for a server that ignores maxResults (gcp-storage-emulator):
# the listing resumes after the named object (startOffset, then a filter).
_AFTER = "ais-after:"
# What `_translate` knows; anything else is a bug and propagates as is.
# (A local file's OSError is not the backend's failure and propagates too.)
_FOREIGN = (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError, requests.RequestException,
            urllib3.exceptions.HTTPError, InvalidResponse, DataCorruption)


def _translate(exc: BaseException, bucket: str, cname: str, not_found: Callable[[], AisError]) -> AisError:
    """The one mapping of google/requests failures to our errors."""
    if isinstance(exc, gexc.GoogleAPICallError):
        code = int(exc.code or 0)
        if code == 404:
            # GCS names a missing bucket in the message; the emulator sends no message at all
            return BucketNotFound(f"gs://{bucket}") if "bucket does not exist" in str(exc.message) else not_found()
        if code in (401, 403):
            return BackendForbidden(f"{cname}: access denied by the backend ({exc.message})")
        if code in (429, 503):
            return BackendThrottled(f"{cname}: the backend is throttling requests ({exc.message})")
        return BackendError(f"{cname}: backend error {code}: {exc.message}")
    if isinstance(exc, (google.auth.exceptions.DefaultCredentialsError, google.auth.exceptions.RefreshError)):
        return BackendForbidden(f"{cname}: no usable GCP credentials: {exc}")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, google.auth.exceptions.TransportError)):
        return BackendUnreachable(f"{cname}: cannot reach the backend: {exc}")
    return BackendError(f"{cname}: backend error: {exc}")


def _retryable(exc: BaseException) -> bool:
    """Throttling, a server error or a failed connection: worth asking again."""
    if isinstance(exc, gexc.GoogleAPICallError):
        return int(exc.code or 0) in _RETRYABLE_STATUS
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, google.auth.exceptions.TransportError))


def _rejected(exc: BaseException) -> bool:
    """Throttled: the server refused the request, so even a non-idempotent one may be repeated."""
    return isinstance(exc, (gexc.TooManyRequests, gexc.ServiceUnavailable))


def _backoff_s(attempt: int) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (0-based)."""
    return random.uniform(0, min(_BACKOFF_MAX_S, _BACKOFF_S * 2 ** attempt))


def _hex_md5(b64: str | None) -> str:
    return base64.b64decode(b64).hex() if b64 else ""


def _attrs(blob: Any) -> RemoteAttrs:
    updated = blob.updated
    return RemoteAttrs(size=int(blob.size or 0), version=str(blob.generation or ""),
                       etag=str(blob.etag or "").strip('"'),
                       mtime_ns=int(updated.timestamp() * 1_000_000_000) if updated is not None else 0,
                       md5=_hex_md5(blob.md5_hash), crc32c=str(blob.crc32c or ""), custom=dict(blob.metadata or {}))


class _Reader:
    """One streamed GET: `length` bytes of an HTTP response, read in the backend's pool."""

    def __init__(self, backend: GcpBackend, resp: requests.Response | None, attrs: RemoteAttrs, length: int,
                 bucket: str, obj: str) -> None:
        self.attrs = attrs
        self._backend, self._resp, self._left, self._length = backend, resp, length, length
        self._bucket, self._obj = bucket, obj

    async def read(self) -> bytes:
        if self._left == 0 or self._resp is None:
            return b""
        raw = self._resp.raw
        n = min(self._left, self._backend.chunk_bytes)
        chunk: bytes = await self._backend._call(functools.partial(raw.read, n, decode_content=False),
                                                 self._bucket, self._obj, retry=None)
        if not chunk:
            raise BackendError(f"gs://{self._bucket}/{self._obj}: backend stream ended after "
                               f"{self._length - self._left} of {self._length} bytes")
        self._left -= len(chunk)
        return chunk

    async def close(self) -> None:
        if self._resp is not None:
            resp, self._resp = self._resp, None
            await asyncio.get_running_loop().run_in_executor(self._backend.pool, resp.close)


class GcpBackend:
    """GCS behind the `Backend` protocol; the client is built in the pool on first use."""

    provider = "gcp"

    def __init__(self, cfg: BackendSection) -> None:
        self.cfg = cfg
        self.pool = ThreadPoolExecutor(max_workers=cfg.pool_workers, thread_name_prefix="gcp")
        self.chunk_bytes = cfg.read_chunk_bytes
        endpoint = (cfg.gcp_endpoint or os.environ.get("STORAGE_EMULATOR_HOST", "")).rstrip("/")
        self.endpoint = endpoint if not endpoint or "://" in endpoint else f"http://{endpoint}"   # "host:port" too
        self._client: Any = None
        self._client_lock = asyncio.Lock()

    # --- plumbing -----------------------------------------------------------------------------

    def _make_client(self) -> Any:
        """A client for the endpoint (anonymous, for an emulator) or Google's default credentials.

        Blocking: default credentials may read files or ask the metadata server.
        """
        if self.endpoint:
            from google.auth.credentials import AnonymousCredentials
            anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
            client = storage.Client(project=self.cfg.gcp_project or "test", credentials=anonymous,
                                    client_options={"api_endpoint": self.endpoint})
        else:
            client = storage.Client(project=self.cfg.gcp_project or None)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=self.cfg.pool_workers)
        client._http.mount("https://", adapter)   # one pooled connection per worker thread
        client._http.mount("http://", adapter)
        return client

    async def client(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._call(self._make_client, "", retry=None)
        return self._client

    async def _call(self, fn: Callable[[], T], bucket: str, obj: str = "", *,
                    retry: Callable[[BaseException], bool] | None = _retryable,
                    not_found: Callable[[], AisError] | None = None) -> T:
        """Run a blocking call in the pool, again after a failure `retry` accepts (at most
        `max_retries` times, backing off on the loop); translate the final failure once. A 404
        is the object's, or the bucket's for a bucket call (`obj` empty)."""
        loop = asyncio.get_running_loop()
        cname = f"gs://{bucket}/{obj}" if obj else f"gs://{bucket}"
        if not_found is None:
            not_found = functools.partial(ObjectNotFound if obj else BucketNotFound, cname)
        attempt = 0
        while True:
            try:
                return await loop.run_in_executor(self.pool, fn)
            except _FOREIGN as exc:
                if retry is None or attempt >= self.cfg.max_retries or not retry(exc):
                    raise _translate(exc, bucket, cname, not_found) from exc
                log.debug("%s: retrying after %r", cname, exc)
            await asyncio.sleep(_backoff_s(attempt))
            attempt += 1

    # --- the Backend protocol -----------------------------------------------------------------

    async def head_bucket(self, bucket: str) -> Mapping[str, str]:
        client = await self.client()

        def get() -> Any:
            return client.get_bucket(bucket, timeout=_TIMEOUT, retry=None)
        b = await self._call(get, bucket)
        facts = {"location": str(b.location or ""), "storage_class": str(b.storage_class or "")}
        return {k: v for k, v in facts.items() if v}

    async def list_page(self, bucket: str, prefix: str, token: str, limit: int) -> RemotePage:
        client = await self.client()
        limit = max(1, limit)
        after = token[len(_AFTER):] if token.startswith(_AFTER) else ""

        def fetch() -> tuple[list[Any], str]:
            it = client.list_blobs(bucket, prefix=prefix or None, page_size=limit, start_offset=after or None,
                                   page_token=None if after else (token or None), timeout=_TIMEOUT, retry=None)
            page = list(next(it.pages))
            return page, str(it.next_page_token or "")
        blobs, next_token = await self._call(fetch, bucket)
        if after:   # startOffset is inclusive, and a server may ignore it
            blobs = [b for b in blobs if b.name > after]
        if len(blobs) > limit:   # the server ignored maxResults
            blobs, next_token = blobs[:limit], _AFTER + blobs[limit - 1].name
        return RemotePage([RemoteEntry(b.name, _attrs(b)) for b in blobs], next_token)

    async def head_object(self, bucket: str, obj: str) -> RemoteAttrs:
        client = await self.client()

        def get() -> Any:
            blob = client.bucket(bucket).blob(obj)
            blob.reload(timeout=_TIMEOUT, retry=None)
            return blob
        return _attrs(await self._call(get, bucket, obj))

    async def open_reader(self, bucket: str, obj: str, offset: int = 0, length: int = -1) -> _Reader:
        """HEAD for the attrs and generation, then one streamed GET of that generation's range."""
        attrs = await self.head_object(bucket, obj)
        if offset > 0 and offset >= attrs.size:
            raise BackendError(f"gs://{bucket}/{obj}: range starts at {offset}, past the end ({attrs.size} bytes)")
        end = attrs.size if length < 0 else min(attrs.size, offset + length)
        if offset >= end:   # an empty object or range: nothing to ask for
            return _Reader(self, None, attrs, 0, bucket, obj)
        client = await self.client()
        url = (f"{client.api_endpoint}/download/storage/v1/b/{quote(bucket, safe='')}/o/{quote(obj, safe='')}"
               f"?alt=media&generation={attrs.version}")
        ranged = offset > 0 or end < attrs.size
        headers = {"Accept-Encoding": "gzip"}   # the stored bytes, never transcoded
        if ranged:
            headers["Range"] = f"bytes={offset}-{end - 1}"

        def get() -> requests.Response:
            resp: requests.Response = client._http.get(url, headers=headers, stream=True, timeout=_TIMEOUT)
            if resp.status_code not in (200, 206):
                with resp:
                    raise gexc.from_http_response(resp)  # type: ignore[no-untyped-call]
            if ranged and resp.status_code != 206:
                resp.close()
                raise InvalidResponse(resp, f"asked for a range, got HTTP {resp.status_code}")
            return resp
        return _Reader(self, await self._call(get, bucket, obj), attrs, end - offset, bucket, obj)

    async def put_file(self, bucket: str, obj: str, path: str, size: int, custom: Mapping[str, str]) -> RemoteAttrs:
        client = await self.client()

        def upload() -> Any:   # a whole local file, so a retry simply sends it again
            blob = client.bucket(bucket).blob(obj)
            blob.metadata = dict(custom) or None
            with open(path, "rb") as f:
                blob.upload_from_file(f, size=size, timeout=_TIMEOUT, retry=None)
            return blob
        # a 404 on an upload can only be the bucket's
        return _attrs(await self._call(upload, bucket, obj, not_found=lambda: BucketNotFound(f"gs://{bucket}")))

    async def delete_object(self, bucket: str, obj: str) -> None:
        client = await self.client()

        def delete() -> None:
            client.bucket(bucket).blob(obj).delete(timeout=_TIMEOUT, retry=None)
        # retried only when throttled: after a lost answer, a retry would report 404 for a delete that worked
        await self._call(delete, bucket, obj, retry=_rejected)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(self.pool, client.close)
        self.pool.shutdown(wait=False, cancel_futures=True)
