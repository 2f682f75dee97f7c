"""Front-end rate limiting at a proxy (reference §10): a token bucket per bucket and verb, from
the bucket's `rate_limit.frontend` props. Each of the cluster's n proxies takes 1/n of the rate
and of the burst. Over the limit a request answers 429 with `Retry-After` at once (S3: 503
SlowDown); clients retry. Buckets without the limit cost one dictionary lookup.
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

from ais.errors import TooManyRequests
from ais.names import Bucket, parse_duration_s


class TokenBucket:
    def __init__(self, rate_per_s: float, capacity: float) -> None:
        self.rate, self.capacity = rate_per_s, capacity
        self.tokens = capacity
        self.last = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one will be there."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[tuple[Any, ...], TokenBucket]] = {}

    def check(self, bck: Bucket, props: Mapping[str, Any], verb: str, proxies: int) -> None:
        """Raise TooManyRequests when `bck` is over its front-end limit for `verb` at this proxy."""
        conf = (props.get("rate_limit") or {}).get("frontend") or {}
        if not conf.get("enabled"):
            return
        key = (bck.uname, verb)
        settings = (conf.get("max_tokens"), conf.get("interval"), conf.get("burst_size"), proxies)
        entry = self._buckets.get(key)
        if entry is None or entry[0] != settings:
            entry = (settings, self._make(conf, max(proxies, 1)))
            self._buckets[key] = entry
        wait_s = entry[1].take()
        if wait_s > 0:
            retry = max(1, math.ceil(wait_s))
            raise TooManyRequests(f"{bck.cname}: {verb} rate limit reached ({conf.get('max_tokens')} per "
                                  f"{conf.get('interval')}); retry in {retry}s", headers={"Retry-After": str(retry)})

    @staticmethod
    def _make(conf: Mapping[str, Any], proxies: int) -> TokenBucket:
        try:
            interval_s = parse_duration_s(str(conf.get("interval") or "1m")) or 60.0
        except ValueError:
            interval_s = 60.0
        max_tokens = max(float(conf.get("max_tokens") or 1), 1.0)
        burst = float(conf.get("burst_size") or 0) or max_tokens
        return TokenBucket(max_tokens / interval_s / proxies, max(burst / proxies, 1.0))
