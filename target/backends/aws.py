"""AWS S3 backend (boto3), also for any S3-compatible store: moto, MinIO, another cluster of ours.

boto3 is synchronous, so every call runs in this backend's bounded thread pool. botocore's
"standard" retry mode retries throttling (429, 503 SlowDown) and connection errors with
backoff; what is left after the retries is translated here, once.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, TypeVar

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
    md5 = etag if len(etag) == 32 and "-" not in etag else ""   # a single-part, non-KMS ETag is the MD5
    modified = head.get("LastModified")
    version = head.get("VersionId") or ""
    return RemoteAttrs(size=int(head.get("ContentLength", head.get("Size", 0)) if size is None else size),
                       version="" if version == "null" else str(version), etag=etag,
                       mtime_ns=int(modified.timestamp() * 1e9) if modified is not None else 0,
                       md5=md5, custom=dict(head.get("Metadata") or {}))


class _Reader:
    def __init__(self, backend: "AwsBackend", body: Any, attrs: RemoteAttrs, bucket: str, obj: str) -> None:
        self.attrs, self._backend, self._body, self._bucket, self._obj = attrs, backend, body, bucket, obj

    async def read(self) -> bytes:
        return await self._backend._call(self._body.read, self._backend.chunk_bytes, bucket=self._bucket,
                                         obj=self._obj, retry=False)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._backend.pool, self._body.close)


class AwsBackend:
    provider = "aws"

    def __init__(self, cfg: BackendSection) -> None:
        self.pool = ThreadPoolExecutor(max_workers=cfg.pool_workers, thread_name_prefix="aws")
        self.chunk_bytes = cfg.read_chunk_bytes
        endpoint = cfg.aws_endpoint or os.environ.get("AWS_ENDPOINT_URL", "") or None
        config = botocore.config.Config(
            retries={"max_attempts": cfg.max_retries + 1, "mode": "standard"},
            max_pool_connections=cfg.pool_workers, connect_timeout=5, read_timeout=60,
            s3={"addressing_style": "path"} if endpoint else None)
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name=cfg.aws_region or os.environ.get("AWS_DEFAULT_REGION") or None,
            config=config)

    async def _call(self, fn: Callable[..., T], *args: Any, bucket: str, obj: str | None = None,
                    retry: bool = True, **kwargs: Any) -> T:
        """Run a blocking boto3 call in the pool; translate its failure once."""
        del retry  # botocore retries the request itself; stream reads are not retried
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

    async def open_reader(self, bucket: str, obj: str, offset: int = 0, length: int = -1) -> _Reader:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": obj}
        if offset or length >= 0:
            kwargs["Range"] = f"bytes={offset}-" + (str(offset + length - 1) if length >= 0 else "")
        resp = await self._call(self.client.get_object, bucket=bucket, obj=obj, **kwargs)
        size = int(resp.get("ContentLength", 0))
        crange = str(resp.get("ContentRange", ""))
        if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
            size = int(crange.rsplit("/", 1)[1])   # attrs describe the whole object
        return _Reader(self, resp["Body"], _attrs(resp, size), bucket, obj)

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
        self.pool.shutdown(wait=False, cancel_futures=True)
