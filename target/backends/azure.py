"""Azure Blob Storage backend (azure-storage-blob's asyncio client), also for Azurite.

Containers are the buckets. The aio client talks aiohttp on the loop, so the only blocking
work left is reading the local file of an upload, done in this backend's bounded pool. The
client is built lazily inside the running loop (its aiohttp session belongs to that loop). The
SDK's retry policy retries 408, 5xx and connection errors `max_retries` times, with short
backoffs (the SDK's own start at 15 s); what is left is translated here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncGenerator, AsyncIterator, BinaryIO, Callable, Mapping

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError,
                                   ServiceRequestError, ServiceResponseError)
from azure.storage.blob import BlobProperties
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

from ais.config import BackendSection
from ais.errors import AisError, BucketNotFound, ObjectNotFound
from target.backends.base import (BackendError, BackendForbidden, BackendThrottled, BackendUnreachable, RemoteAttrs,
                                  RemoteEntry, RemotePage)

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
_BACKOFF_S, _BACKOFF_MAX_S = 0.2, 5.0
_MAX_SINGLE_PUT = 16 << 20    # larger uploads go as blocks, so memory stays bounded
_UPLOAD_CONCURRENCY = 4


class _Retry(ExponentialRetry):
    """The SDK's storage retry policy (what it retries, and how often) with a full-jitter
    backoff that starts at a fraction of a second."""

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return random.uniform(0, min(_BACKOFF_MAX_S, _BACKOFF_S * 2 ** int(settings["count"])))


def _translate(exc: AzureError, bucket: str, cname: str, not_found: Callable[[], AisError]) -> AisError:
    """The one mapping of azure.core failures to our errors."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):   # no answer: refused, reset, timed out
        return BackendUnreachable(f"{cname}: cannot reach the backend: {exc.message}")
    if not isinstance(exc, HttpResponseError):
        return BackendError(f"{cname}: backend error: {exc.message}")
    status = int(exc.status_code or 0)
    code = str(getattr(exc, "error_code", None) or status or "no answer")   # the storage SDK sets error_code
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return BucketNotFound(f"az://{bucket}") if code == "ContainerNotFound" else not_found()
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return BackendForbidden(f"{cname}: access denied by the backend ({code})")
    if status in (429, 503):
        return BackendThrottled(f"{cname}: the backend is throttling requests ({code})")
    return BackendError(f"{cname}: backend error {code}: {exc.reason or exc.message}")


def _attrs(props: BlobProperties) -> RemoteAttrs:
    etag = str(props.etag or "").strip('"')
    md5 = props.content_settings.content_md5 if props.content_settings is not None else None
    modified = props.last_modified
    return RemoteAttrs(size=int(props.size or 0), version=str(props.version_id or etag), etag=etag,
                       mtime_ns=int(modified.timestamp() * 1_000_000_000) if modified is not None else 0,
                       md5=bytes(md5).hex() if md5 else "", custom=dict(props.metadata or {}))


def _conn_string_field(conn: str, key: str) -> str:
    for part in conn.split(";"):
        k, _, v = part.partition("=")
        if k.strip().lower() == key.lower():
            return v.strip()
    return ""


def _read_hashed(f: BinaryIO, n: int, md5: Any) -> bytes:
    chunk = f.read(n)
    md5.update(chunk)
    return chunk


class _Reader:
    """One download: the SDK's ranged chunk requests, one chunk per `read()`."""

    def __init__(self, backend: AzureBackend, chunks: AsyncIterator[bytes] | None, attrs: RemoteAttrs, length: int,
                 bucket: str, cname: str) -> None:
        self.attrs = attrs
        self._backend, self._chunks, self._left, self._length = backend, chunks, length, length
        self._bucket, self._cname = bucket, cname

    async def read(self) -> bytes:
        if self._left <= 0 or self._chunks is None:
            return b""
        chunk: bytes = await self._backend._call(anext(self._chunks, b""), self._bucket, self._cname)
        if not chunk:
            raise BackendError(f"{self._cname}: backend stream ended after {self._length - self._left} "
                               f"of {self._length} bytes")
        self._left -= len(chunk)
        return chunk

    async def close(self) -> None:
        self._chunks = None   # each chunk is its own request, already complete


class AzureBackend:
    """Azure Blob Storage behind the `Backend` protocol."""

    provider = "azure"

    def __init__(self, cfg: BackendSection) -> None:
        self.cfg = cfg
        self.pool = ThreadPoolExecutor(max_workers=cfg.pool_workers, thread_name_prefix="azure")
        self.chunk_bytes = cfg.read_chunk_bytes
        self._client: BlobServiceClient | None = None

    # --- plumbing -----------------------------------------------------------------------------

    def _make_client(self) -> BlobServiceClient:
        """Endpoint: cfg, else the connection string's, else the account's public one.
        Credentials: cfg account/key, else AZURE_STORAGE_ACCOUNT/KEY, else the connection string's."""
        cfg, conn = self.cfg, os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
        options: dict[str, Any] = {
            "retry_policy": _Retry(retry_total=cfg.max_retries), "connection_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S, "max_single_get_size": cfg.read_chunk_bytes,
            "max_chunk_get_size": cfg.read_chunk_bytes, "max_single_put_size": _MAX_SINGLE_PUT}
        if conn and not cfg.azure_endpoint:
            return BlobServiceClient.from_connection_string(conn, **options)
        account = (cfg.azure_account or os.environ.get("AZURE_STORAGE_ACCOUNT", "")
                   or _conn_string_field(conn, "AccountName"))
        key = cfg.azure_key or os.environ.get("AZURE_STORAGE_KEY", "") or _conn_string_field(conn, "AccountKey")
        if not (cfg.azure_endpoint or account):
            raise BackendForbidden("azure: no account configured (backend.azure_account, AZURE_STORAGE_ACCOUNT "
                                   "or AZURE_STORAGE_CONNECTION_STRING)")
        url = cfg.azure_endpoint or f"https://{account}.blob.core.windows.net"
        credential = AzureNamedKeyCredential(account, key) if account and key else None
        return BlobServiceClient(url, credential=credential, **options)

    def service(self) -> BlobServiceClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def _call(self, aw: Any, bucket: str, cname: str, not_found: Callable[[], AisError] | None = None) -> Any:
        """Await one SDK call; translate its failure once."""
        try:
            return await aw
        except AzureError as exc:
            raise _translate(exc, bucket, cname, not_found or (lambda: ObjectNotFound(cname))) from exc

    # --- the Backend protocol -----------------------------------------------------------------

    async def head_bucket(self, bucket: str) -> Mapping[str, str]:
        cname = f"az://{bucket}"
        container = self.service().get_container_client(bucket)
        await self._call(container.get_container_properties(), bucket, cname, lambda: BucketNotFound(cname))
        return {"account": str(container.account_name or "")}

    async def list_page(self, bucket: str, prefix: str, token: str, limit: int) -> RemotePage:
        cname = f"az://{bucket}"
        container = self.service().get_container_client(bucket)
        pages = container.list_blobs(name_starts_with=prefix or None, include=["metadata"],
                                     results_per_page=max(1, limit)).by_page(continuation_token=token or None)

        async def first_page() -> list[RemoteEntry]:
            page = await anext(pages, None)
            return [] if page is None else [RemoteEntry(b.name, _attrs(b)) async for b in page]
        entries = await self._call(first_page(), bucket, cname, lambda: BucketNotFound(cname))
        return RemotePage(entries, str(getattr(pages, "continuation_token", None) or ""))

    async def head_object(self, bucket: str, obj: str) -> RemoteAttrs:
        blob = self.service().get_blob_client(bucket, obj)
        return _attrs(await self._call(blob.get_blob_properties(), bucket, f"az://{bucket}/{obj}"))

    async def open_reader(self, bucket: str, obj: str, offset: int = 0, length: int = -1) -> _Reader:
        cname = f"az://{bucket}/{obj}"
        if length == 0:
            return _Reader(self, None, await self.head_object(bucket, obj), 0, bucket, cname)
        blob = self.service().get_blob_client(bucket, obj)
        ranged = offset > 0 or length > 0
        downloader = await self._call(blob.download_blob(offset=offset if ranged else None,
                                                         length=length if length > 0 else None), bucket, cname)
        attrs = _attrs(downloader.properties)
        total = str(downloader.properties.content_range or "").rpartition("/")[2]   # "bytes 0-9/307200"
        if total.isdigit():   # a ranged download's properties give the range's size; attrs are the object's
            attrs = dataclasses.replace(attrs, size=int(total))
        return _Reader(self, downloader.chunks(), attrs, int(downloader.size), bucket, cname)

    async def put_file(self, bucket: str, obj: str, path: str, size: int, custom: Mapping[str, str]) -> RemoteAttrs:
        cname = f"az://{bucket}/{obj}"
        md5 = hashlib.md5()
        blob = self.service().get_blob_client(bucket, obj)
        async with contextlib.aclosing(self._file_chunks(path, size, md5)) as body:
            resp = await self._call(blob.upload_blob(body, length=size, overwrite=True, metadata=dict(custom),
                                                     max_concurrency=_UPLOAD_CONCURRENCY), bucket, cname)
        etag = str(resp.get("etag") or "").strip('"')
        modified = resp.get("last_modified")
        return RemoteAttrs(size=size, version=str(resp.get("version_id") or etag), etag=etag,
                           mtime_ns=int(modified.timestamp() * 1_000_000_000) if modified is not None else 0,
                           md5=md5.hexdigest(), custom=dict(custom))

    async def _file_chunks(self, path: str, size: int, md5: Any) -> AsyncGenerator[bytes, None]:
        """The first `size` bytes of a local file, read (and hashed) in the pool."""
        loop = asyncio.get_running_loop()
        f: BinaryIO = await loop.run_in_executor(self.pool, open, path, "rb")
        try:
            left = size
            while left > 0:
                chunk = await loop.run_in_executor(self.pool, _read_hashed, f, min(left, self.chunk_bytes), md5)
                if not chunk:
                    raise ValueError(f"{path}: the file ended at {size - left} of {size} bytes")
                left -= len(chunk)
                yield chunk
        finally:
            await loop.run_in_executor(self.pool, f.close)

    async def delete_object(self, bucket: str, obj: str) -> None:
        blob = self.service().get_blob_client(bucket, obj)
        await self._call(blob.delete_blob(), bucket, f"az://{bucket}/{obj}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
