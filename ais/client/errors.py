"""Every exception `ais.client` raises, in one tree.

    ClientError                      base: catch this to catch anything the client raises
    ├── TransportError               no HTTP answer came back
    │   ├── ConnectError             could not connect (refused, unreachable, reset before a reply)
    │   │   └── NotConnected         no connection was made: nothing was sent (any call may be resent)
    │   ├── RequestTimeout           connect or read timed out
    │   └── ReadError                the connection broke while a body was being read
    ├── StatusError                  the cluster answered with an error status (.status, .message)
    │   ├── BadRequest               400
    │   ├── AccessDenied             401, 403
    │   ├── NotFound                 404
    │   │   ├── BucketNotFound       `bucket "ais://b" does not exist`
    │   │   ├── ObjectNotFound       `ais://b/o does not exist`
    │   │   └── EtlNotFound          `etl job NAME does not exist`
    │   ├── Conflict                 409
    │   │   ├── BucketExists
    │   │   └── EtlExists
    │   ├── RangeNotSatisfiable      416
    │   ├── Throttled                429, 503: retried for idempotent calls, raised when retries run out
    │   ├── InsufficientStorage      507
    │   └── ServerError              any other 5xx
    ├── StreamConsumed               a streamed body had to be resent (redirect, retry) but was gone
    ├── DecodeError                  an answer could not be decoded (JSON, msgpack, archive)
    ├── WaitTimeout                  a job did not finish within the time given to wait for it
    └── InvalidName (also ValueError) a bucket or object name the cluster would refuse

Foreign exceptions (aiohttp, OSError, asyncio timeouts, json/msgpack) are translated in
exactly two places: the transport (`transport.py`) and the body decoders (`wire.py`).
Error statuses become exceptions in `from_response()` below, by status and, as the SDK does,
by the cname (`ais://bucket[/object]`) the cluster writes into its messages.
"""

from __future__ import annotations

import json
import re
from typing import Mapping


class ClientError(Exception):
    """Base of the tree. `status` is 0 unless an HTTP status was received."""

    status = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransportError(ClientError):
    """The request got no HTTP answer; `url` is where it was sent."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url


class ConnectError(TransportError):
    pass


class NotConnected(ConnectError):
    pass


class RequestTimeout(TransportError):
    pass


class ReadError(TransportError):
    pass


class StatusError(ClientError):
    """An error status. `message` is the cluster's text; `node` the node that answered, if known."""

    def __init__(self, status: int, message: str, *, url: str = "", node: str = "",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.url = url
        self.node = node
        self.headers = dict(headers or {})


class BadRequest(StatusError):
    pass


class AccessDenied(StatusError):
    pass


class NotFound(StatusError):
    pass


class BucketNotFound(NotFound):
    pass


class ObjectNotFound(NotFound):
    pass


class EtlNotFound(NotFound):
    pass


class Conflict(StatusError):
    pass


class BucketExists(Conflict):
    pass


class EtlExists(Conflict):
    pass


class RangeNotSatisfiable(StatusError):
    pass


class Throttled(StatusError):
    """429 Too Many Requests or 503 Service Unavailable; `retry_after_s` from the header, if any."""

    @property
    def retry_after_s(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class InsufficientStorage(StatusError):
    pass


class ServerError(StatusError):
    pass


class StreamConsumed(ClientError):
    """A one-shot body (an async iterator) was needed again after more of it was sent than kept."""


class DecodeError(ClientError):
    pass


class WaitTimeout(ClientError):
    pass


class InvalidName(ClientError, ValueError):
    pass


# --- status -> exception ----------------------------------------------------------------------

# `prov://bucket/...`: the cname the cluster embeds (reference §0); a slash after the bucket
# means an object was named.
_CNAME = re.compile(r"\b(ais|aws|s3|gcp|gs|azure|az|oci|oc)://[^\s\"'/]+(/)?")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds form only; dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_text(status: int, body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
    """(message, node) from AIStore's JSON error body, or `Hdr-Error` for HEAD, or raw text."""
    raw = headers.get("hdr-error") or body.decode("utf-8", "replace")
    try:
        doc = json.loads(raw) if raw.lstrip().startswith("{") else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "message" in doc:
        return str(doc.get("message") or ""), str(doc.get("node") or "")
    return raw.strip() or f"HTTP {status}", ""


def from_response(status: int, body: bytes, headers: Mapping[str, str], url: str = "") -> StatusError:
    """The exception for an error answer (`headers` with lower-case names)."""
    message, node = error_text(status, body, headers)
    cls: type[StatusError]
    low = message.lower()
    if status == 404:
        m = _CNAME.search(message)
        if "etl job" in low:
            cls = EtlNotFound
        elif m and m.group(2):
            cls = ObjectNotFound
        elif m or "bucket" in low:
            cls = BucketNotFound
        else:
            cls = NotFound
    elif status == 409:
        if "etl job" in low:
            cls = EtlExists
        elif "already exists" in low and "bucket" in low:
            cls = BucketExists
        else:
            cls = Conflict
    elif status == 400:
        cls = BadRequest
    elif status in (401, 403):
        cls = AccessDenied
    elif status == 416:
        cls = RangeNotSatisfiable
    elif status in (429, 503):
        cls = Throttled
    elif status == 507:
        cls = InsufficientStorage
    elif status >= 500:
        cls = ServerError
    else:
        cls = StatusError
    return cls(status, message, url=url, node=node, headers=headers)
