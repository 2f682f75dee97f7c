"""When to try a request again, and how long to wait first.

Only idempotent calls are retried (GET, HEAD, PUT and DELETE of objects, batch-get, listing
pages, status queries); creating buckets, starting jobs and other POSTs are sent once, unless
no connection was made at all (a dead proxy: the next try goes to another proxy of the map).
Retried: 429 and 503 answers (waiting what `Retry-After` says, capped) and transport failures
(connect errors, timeouts, connections lost before a reply). Waits grow exponentially with
full jitter, drawn from the policy's own RNG so that tests can seed it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from ais.client.errors import ClientError, ConnectError, NotConnected, ReadError, RequestTimeout, TransportError

RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})


@dataclass
class RetryPolicy:
    """`max_attempts` counts the first try; `max_wait_s` caps any single wait, `Retry-After` included."""

    max_attempts: int = 8
    backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    max_wait_s: float = 30.0
    retry_timeouts: bool = True
    rng: random.Random = field(default_factory=random.Random, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def should_retry_status(self, status: int, attempt: int, idempotent: bool) -> bool:
        """`attempt` is 1 for the first try."""
        return idempotent and status in RETRY_STATUSES and attempt < self.max_attempts

    def should_retry_error(self, exc: ClientError, attempt: int, idempotent: bool) -> bool:
        if isinstance(exc, NotConnected) and attempt < self.max_attempts:
            return True     # nothing was sent: safe for any call
        if not idempotent or attempt >= self.max_attempts or not isinstance(exc, TransportError):
            return False
        if isinstance(exc, RequestTimeout):
            return self.retry_timeouts
        return isinstance(exc, (ConnectError, ReadError)) or type(exc) is TransportError

    def wait_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed try number `attempt`.

        With `Retry-After`, that (capped by max_wait_s) plus a small jitter so that many
        clients do not return at the same instant; otherwise full-jitter exponential backoff.
        """
        if retry_after_s is not None:
            return min(retry_after_s, self.max_wait_s) + self.rng.uniform(0, self.backoff_s)
        ceiling = min(self.max_backoff_s, self.backoff_s * (2 ** (attempt - 1)))
        return self.rng.uniform(ceiling / 2, ceiling)


NO_RETRIES = RetryPolicy(max_attempts=1)
