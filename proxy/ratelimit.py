"""Front-end rate limiting at a proxy (reference §10): a token bucket per bucket and verb, from
the bucket's `rate_limit.frontend` props. Each of the cluster's n proxies takes 1/n of the rate
and of the burst. Over the limit a request answers 429 with `Retry-After` at once (S3: 503
SlowDown); clients retry. Buckets without the limit cost one dictionary lookup.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ais.errors import TooManyRequests
from ais.names import Bucket
from ais.ratelimit import TokenBucket, token_bucket


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
            entry = (settings, token_bucket(conf, proxies))
            self._buckets[key] = entry
        wait_s = entry[1].take()
        if wait_s > 0:
            retry = max(1, math.ceil(wait_s))
            raise TooManyRequests(f"{bck.cname}: {verb} rate limit reached ({conf.get('max_tokens')} per "
                                  f"{conf.get('interval')}); retry in {retry}s", headers={"Retry-After": str(retry)})
