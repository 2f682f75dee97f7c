"""Backend rate limits (bucket props `rate_limit.backend`, reference §10): calls a target makes to
a cloud for one bucket are paced by a token bucket per verb, and back off when the cloud
throttles anyway.

- Pacing: each of the n targets takes 1/n of `max_tokens` per `interval`; a call waits for its
  token (it is not refused: the client asked for data this target must fetch).
- Adaptive: a 429/503 from the cloud (`BackendThrottled`, after the backend's own retries)
  halves this target's rate for that bucket and verb (down to 1/16 of the configured one), and
  the call is retried up to `num_retries` times with exponential backoff; every success wins
  back 5% of the rate, so a limit the cloud imposes is found and followed.

Reads (HEAD, list, GET) count as GET; uploads as PUT; deletes as DELETE.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from ais.names import Bucket
from ais.ratelimit import TokenBucket, rate_of
from target.backends.base import Backend, BackendThrottled, RemoteAttrs, RemotePage, RemoteReader

log = logging.getLogger(__name__)

T = TypeVar("T")
_MIN_FRACTION = 1 / 16
_RECOVER = 1.05
_BACKOFF_S = 0.25
_MAX_WAIT_S = 5.0     # one sleep at most; the loop takes the next token after it


class _Limit:
    def __init__(self, conf: Mapping[str, Any], share: int) -> None:
        self.settings = (conf.get("max_tokens"), conf.get("interval"), share)
        self.configured, burst = rate_of(conf, share)
        self.bucket = TokenBucket(self.configured, burst)

    async def acquire(self) -> None:
        while (wait_s := self.bucket.take()) > 0:
            await asyncio.sleep(min(wait_s, _MAX_WAIT_S))

    def throttled(self) -> None:
        self.bucket.rate = max(self.bucket.rate / 2, self.configured * _MIN_FRACTION)

    def succeeded(self) -> None:
        if self.bucket.rate < self.configured:
            self.bucket.rate = min(self.bucket.rate * _RECOVER, self.configured)


class BackendLimiter:
    """The limits of one target, per (bucket, verb); rebuilt when the props change."""

    def __init__(self) -> None:
        self._limits: dict[tuple[str, str], _Limit] = {}

    def limit(self, bck: Bucket, verb: str, conf: Mapping[str, Any], share: int) -> _Limit:
        key = (bck.uname, verb)
        lim = self._limits.get(key)
        if lim is None or lim.settings != (conf.get("max_tokens"), conf.get("interval"), share):
            lim = self._limits[key] = _Limit(conf, share)
        return lim

    def wrap(self, backend: Backend, bck: Bucket, props: Mapping[str, Any], share: int) -> Backend:
        """`backend` as is when the bucket has no backend limit, else a paced view of it."""
        conf = (props.get("rate_limit") or {}).get("backend") or {}
        if not conf.get("enabled"):
            return backend
        return LimitedBackend(backend, self, bck, conf, share)


class LimitedBackend:
    """One bucket's view of a backend that obeys that bucket's limits (a `Backend`)."""

    def __init__(self, inner: Backend, limiter: BackendLimiter, bck: Bucket, conf: Mapping[str, Any],
                 share: int) -> None:
        self.inner, self.limiter, self.bck, self.conf, self.share = inner, limiter, bck, conf, share
        self.provider = inner.provider
        try:
            self.retries = max(int(conf.get("num_retries", 3)), 0)
        except (TypeError, ValueError):
            self.retries = 3

    async def _call(self, verb: str, fn: Callable[[], Awaitable[T]]) -> T:
        lim = self.limiter.limit(self.bck, verb, self.conf, self.share)
        for attempt in range(self.retries + 1):
            await lim.acquire()
            try:
                result = await fn()
            except BackendThrottled:
                lim.throttled()
                if attempt == self.retries:
                    raise
                log.info("%s: backend throttled %s; rate now %.2f/s, retry %d of %d", self.bck.cname, verb,
                         lim.bucket.rate, attempt + 1, self.retries)
                await asyncio.sleep(_BACKOFF_S * 2 ** attempt)
                continue
            lim.succeeded()
            return result
        raise AssertionError("unreachable")

    async def head_bucket(self, bucket: str) -> Mapping[str, str]:
        return await self._call("GET", lambda: self.inner.head_bucket(bucket))

    async def list_page(self, bucket: str, prefix: str, token: str, limit: int) -> RemotePage:
        return await self._call("GET", lambda: self.inner.list_page(bucket, prefix, token, limit))

    async def head_object(self, bucket: str, obj: str) -> RemoteAttrs:
        return await self._call("GET", lambda: self.inner.head_object(bucket, obj))

    async def open_reader(self, bucket: str, obj: str, offset: int = 0, length: int = -1) -> RemoteReader:
        return await self._call("GET", lambda: self.inner.open_reader(bucket, obj, offset, length))

    async def put_file(self, bucket: str, obj: str, path: str, size: int, custom: Mapping[str, str]) -> RemoteAttrs:
        return await self._call("PUT", lambda: self.inner.put_file(bucket, obj, path, size, custom))

    async def delete_object(self, bucket: str, obj: str) -> None:
        await self._call("DELETE", lambda: self.inner.delete_object(bucket, obj))

    async def close(self) -> None:
        """The shared backend outlives this view."""
