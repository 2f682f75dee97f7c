"""Logging set-up and the request ID carried on every log line.

The request ID lives in a contextvar so each asyncio task sees its own; it is forwarded on
intra-cluster calls in the `Ais-Request-Id` header.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


_prefix = os.urandom(3).hex()
_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique across nodes without a syscall per request: a per-process prefix and a counter."""
    return f"{_prefix}{next(_counter):x}"


def setup(level: str, node: str, path: str = "") -> None:
    """Install one handler on the root logger; called from a node's main() only."""
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s %(levelname).1s {node} [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
