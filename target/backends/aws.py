"""AWS S3 backend (boto3), also for any S3-compatible store: moto, MinIO, another cluster of ours.

Control calls (HEAD, list, PUT, DELETE) use boto3, which is synchronous, so each runs in this
backend's bounded thread pool; botocore's "standard" retry mode retries throttling (429, 503
SlowDown) and connection errors with backoff. Object data (GET) is the hot path: boto3 signs
the request (a presigned URL, computed locally) and the bytes stream over the process's own
aiohttp session on the event loop, with no thread hop or GIL hand-off per chunk; opening it
is retried here the same way. What is left after the retries is translated here, once.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, TypeVar

import aiohttp
import boto3
import botocore.config
import botocore.exceptions

from ais.config import BackendSection
from ais.errors import AisError, BucketNotFound, ObjectNotFound
from target.backends.base import (BackendError, BackendForbidden, BackendThrottled, BackendUnreachable, RemoteAttrs,
                                  RemoteEntry, RemotePage)

T = TypeVar("T")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchVersion"}
_FORBIDDEN = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
              "InvalidToken", "AllAccessDisabled", "401"}
_THROTTLED = {"429", "503", "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
              "ServiceUnavailable", "TooManyRequests"}
_SINGLE_PUT_MAX = 5 << 30


def _translate(exc: Exception, bucket: str, obj: str | None) -> AisError:
    cname = f"s3://{bucket}" + (f"/{obj}" if obj is not None else "")
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = err.get("Message") or code or status
        if code in _NOT_FOUND or status == "404":
            if code == "NoSuchBucket" or obj is None:
                return BucketNotFound(f"s3://{bucket}")
            return ObjectNotFound(cname)
        if code in _FORBIDDEN or status in ("401", "403"):
            return BackendForbidden(f"{cname}: access denied by the backend ({message})")
        if code in _THROTTLED or status in ("429", "503"):
            return BackendThrottled(f"{cname}: the backend is throttling requests ({message})")
        return BackendError(f"{cname}: backend error {status} {code}: {message}")
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                        botocore.exceptions.ConnectionClosedError)):
        return BackendUnreachable(f"{cname}: cannot reach the backend: {exc}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return BackendForbidden(f"{cname}: no AWS credentials configured: {exc}")
    if isinstance(exc, (botocore.exceptions.BotoCoreError, OSError)):
        return BackendError(f"{cname}: backend error: {exc}")
    raise exc


def _attrs(head: Mapping[str, Any], size: int | None = None) -> RemoteAttrs:
    etag = str(head.get("ETag", "")).strip('"')
    md5 = _md5_of(etag)
    modified = head.get("LastModified")
    version = head.get("VersionId") or ""
    return RemoteAttrs(size=int(head.get("ContentLength", head.get("Size", 0)) if size is None else size),
                       version="" if version == "null" else str(version), etag=etag,
                       mtime_ns=int(modified.timestamp() * 1e9) if modified is not None else 0,
                       md5=md5, custom=dict(head.get("Metadata") or {}))


_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _http_attrs(headers: Mapping[str, str]) -> RemoteAttrs:
    """Object attrs from a GET response's headers (size = the whole object's)."""
    size = int(headers.get("Content-Length", "0"))
    crange = headers.get("Content-Range", "")
    if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
        size = int(crange.rsplit("/", 1)[1])
    modified = headers.get("Last-Modified")
    version = headers.get("x-amz-version-id", "")
    etag = headers.get("ETag", "").strip('"')
    return RemoteAttrs(size=size, version="" if version == "null" else version, etag=etag,
                       mtime_ns=int(email.utils.parsedate_to_datetime(modified).timestamp() * 1e9) if modified else 0,
                       md5=_md5_of(etag),
                       custom={k[len("x-amz-meta-"):]: v for k, v in headers.items()
                               if k.lower().startswith("x-amz-meta-")})


def _md5_of(etag: str) -> str:
    """A single-part, non-KMS ETag is the MD5 of the content."""
    return etag if len(etag) == 32 and "-" not in etag else ""


class _Reader:
    """A GET streaming over aiohttp; `read()` returns about `chunk_bytes` at a time."""

    def __init__(self, resp: aiohttp.ClientResponse, chunk_bytes: int, cname: str) -> None:
        self.attrs = _http_attrs(resp.headers)
        self._resp, self._chunk, self._cname = resp, chunk_bytes, cname
        self._left = int(resp.headers.get("Content-Length", "-1"))

    async def read(self) -> bytes:
        parts: list[bytes] = []
        got = 0
        try:
            while got < self._chunk:
                part = await self._resp.content.read(self._chunk - got)
                if not part:
                    break
                parts.append(part)
                got += len(part)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise BackendError(f"{self._cname}: the backend stream broke: {exc}") from exc
        self._left -= got
        if not got and self._left > 0:
            raise BackendError(f"{self._cname}: the backend stream ended {self._left} bytes early")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def close(self) -> None:
        self._resp.release()


class AwsBackend:
    provider = "aws"

    def __init__(self, cfg: BackendSection) -> None:
        self.pool = ThreadPoolExecutor(max_workers=cfg.pool_workers, thread_name_prefix="aws")
        self.chunk_bytes = cfg.read_chunk_bytes
        endpoint = cfg.aws_endpoint or os.environ.get("AWS_ENDPOINT_URL", "") or None
        self.max_retries = cfg.max_retries
        config = botocore.config.Config(
            retries={"max_attempts": cfg.max_retries + 1, "mode": "standard"},
            max_pool_connections=cfg.pool_workers, connect_timeout=5, read_timeout=60,
            s3={"addressing_style": "path"} if endpoint else None, signature_version="s3v4",
            # whole-body CRCs on every PUT and GET cost CPU for nothing: the target checksums itself
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        self._session: aiohttp.ClientSession | None = None
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name=cfg.aws_region or os.environ.get("AWS_DEFAULT_REGION") or None,
            config=config)

    async def _call(self, fn: Callable[..., T], *args: Any, bucket: str, obj: str | None = None, **kwargs: Any) -> T:
        """Run a blocking boto3 call in the pool (botocore retries it); translate its failure once."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - translated (or re-raised) by _translate
            raise _translate(exc, bucket, obj) from exc

    async def head_bucket(self, bucket: str) -> Mapping[str, str]:
        resp = await self._call(self.client.head_bucket, Bucket=bucket, bucket=bucket)
        headers = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region", "")
        return {"region": region} if region else {}

    async def list_page(self, bucket: str, prefix: str, token: str, limit: int) -> RemotePage:
        kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": max(1, min(limit, 1000))}
        if prefix:
            kwargs["Prefix"] = prefix
        if token:
            kwargs["ContinuationToken"] = token
        resp = await self._call(self.client.list_objects_v2, bucket=bucket, **kwargs)
        entries = [RemoteEntry(c["Key"], _attrs(c, int(c.get("Size", 0)))) for c in resp.get("Contents") or []]
        next_token = resp.get("NextContinuationToken", "") if resp.get("IsTruncated") else ""
        return RemotePage(entries, next_token)

    async def head_object(self, bucket: str, obj: str) -> RemoteAttrs:
        return _attrs(await self._call(self.client.head_object, Bucket=bucket, Key=obj, bucket=bucket, obj=obj))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256), auto_decompress=False,
                                                  read_bufsize=2 << 20)   # fewer pauses and callbacks per MB
        return self._session

    async def open_reader(self, bucket: str, obj: str, offset: int = 0, length: int = -1) -> _Reader:
        cname = f"s3://{bucket}/{obj}"
        try:   # signing is local CPU work (no I/O)
            url = self.client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": obj},
                                                     ExpiresIn=3600)
        except Exception as exc:  # noqa: BLE001 - translated (or re-raised) by _translate
            raise _translate(exc, bucket, obj) from exc
        if length == 0:
            raise BackendError(f"{cname}: a zero-length range was asked for")
        headers = {}
        if offset or length >= 0:
            headers["Range"] = f"bytes={offset}-" + (str(offset + length - 1) if length >= 0 else "")
        timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=60)
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                resp = await self._http().get(url, headers=headers, timeout=timeout)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if last:
                    raise BackendUnreachable(f"{cname}: cannot reach the backend: {exc}") from exc
                await asyncio.sleep(min(0.1 * 2 ** attempt, 2.0))
                continue
            if resp.status < 300:
                return _Reader(resp, self.chunk_bytes, cname)
            body = await resp.text(errors="replace")
            resp.release()
            if resp.status in _RETRY_STATUS and not last:
                await asyncio.sleep(min(0.1 * 2 ** attempt, 2.0))
                continue
            code = m.group(1) if (m := _XML_CODE.search(body)) else str(resp.status)
            message = m.group(1) if (m := _XML_MESSAGE.search(body)) else ""
            err = botocore.exceptions.ClientError(
                {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": resp.status}},
                "GetObject")
            raise _translate(err, bucket, obj) from err
        raise AssertionError("unreachable")

    async def put_file(self, bucket: str, obj: str, path: str, size: int, custom: Mapping[str, str]) -> RemoteAttrs:
        def upload() -> Mapping[str, Any]:
            if size > _SINGLE_PUT_MAX:
                self.client.upload_file(path, bucket, obj, ExtraArgs={"Metadata": dict(custom)})
                return dict(self.client.head_object(Bucket=bucket, Key=obj))
            with open(path, "rb") as f:
                return dict(self.client.put_object(Bucket=bucket, Key=obj, Body=f, ContentLength=size,
                                                   Metadata=dict(custom)))
        resp = await self._call(upload, bucket=bucket, obj=obj)
        return _attrs({**resp, "Metadata": dict(custom)}, size)

    async def delete_object(self, bucket: str, obj: str) -> None:
        await self._call(self.client.delete_object, Bucket=bucket, Key=obj, bucket=bucket, obj=obj)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
