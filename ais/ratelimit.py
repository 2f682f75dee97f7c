"""Token buckets for rate limits (reference §10), shared by the proxies' front-end limits and the
targets' backend limits. A limit from bucket props (`max_tokens` per `interval`, optional
`burst_size`) is split evenly among the `share` nodes that enforce it."""

from __future__ import annotations

import time
from typing import Any, Mapping

from ais.names import parse_duration_s


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


def rate_of(conf: Mapping[str, Any], share: int) -> tuple[float, float]:
    """(tokens per second, burst capacity) of one of `share` nodes enforcing `conf`."""
    try:
        interval_s = parse_duration_s(str(conf.get("interval") or "1m")) or 60.0
    except ValueError:
        interval_s = 60.0
    share = max(share, 1)
    max_tokens = max(float(conf.get("max_tokens") or 1), 1.0)
    burst = float(conf.get("burst_size") or 0) or max_tokens
    return max_tokens / interval_s / share, max(burst / share, 1.0)


def token_bucket(conf: Mapping[str, Any], share: int) -> TokenBucket:
    return TokenBucket(*rate_of(conf, share))
