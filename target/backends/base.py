"""The one async interface every cloud backend implements, and the errors it raises.

A backend is addressed by bucket and object *names* (no provider prefix); it translates its
SDK's exceptions into the errors below exactly once, at its own boundary, and runs blocking
SDK calls in its own bounded thread pool, never on the event loop.

Errors (all `AisError`, so the error middleware renders them):

    BucketNotFound / ObjectNotFound   404: the backend says it does not exist
    BackendError                      502: anything else the backend refused or broke on
      BackendForbidden                403: wrong or missing credentials
      BackendThrottled                503: 429/503 from the cloud after the retries ran out
      BackendUnreachable              503: cannot connect (endpoint down, DNS, timeout)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

from ais.errors import AisError


class BackendError(AisError):
    status = 502
    code = "backend-error"


class BackendForbidden(BackendError):
    status = 403
    code = "backend-forbidden"


class BackendThrottled(BackendError):
    status = 503
    code = "backend-throttled"


class BackendUnreachable(BackendError):
    status = 503
    code = "backend-unreachable"


@dataclass(frozen=True, slots=True)
class RemoteAttrs:
    """What a backend knows about one object (HEAD, GET, PUT and listing answers)."""

    size: int
    version: str = ""      # S3 VersionId (versioned buckets), GCS generation, Azure version ID
    etag: str = ""         # unquoted
    mtime_ns: int = 0      # last modified, unix nanoseconds
    md5: str = ""          # lower-case hex, when the backend reports it for the whole object
    crc32c: str = ""       # as the backend reports it (GCS: base64), when known
    custom: Mapping[str, str] = field(default_factory=dict)   # user metadata


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    name: str
    attrs: RemoteAttrs


@dataclass(frozen=True, slots=True)
class RemotePage:
    entries: list[RemoteEntry]   # sorted by name, as every backend lists
    next_token: str              # "" when the listing is complete


class RemoteReader(Protocol):
    """An open backend GET: `attrs` describe the whole object; `read()` returns the next chunk
    of the requested range, b"" at its end. A stream cut short raises BackendError."""

    attrs: RemoteAttrs

    async def read(self) -> bytes: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    provider: str   # "aws" | "gcp" | "azure"

    async def head_bucket(self, bucket: str) -> Mapping[str, str]:
        """Bucket facts worth keeping in bucket props (e.g. region); BucketNotFound if absent."""
        ...

    async def list_page(self, bucket: str, prefix: str, token: str, limit: int) -> RemotePage:
        """Up to `limit` objects whose names start with `prefix`, after the opaque `token`."""
        ...

    async def head_object(self, bucket: str, obj: str) -> RemoteAttrs: ...

    async def open_reader(self, bucket: str, obj: str, offset: int = 0, length: int = -1) -> RemoteReader:
        """Start a GET of `length` bytes from `offset` (-1: to the end)."""
        ...

    async def put_file(self, bucket: str, obj: str, path: str, size: int, custom: Mapping[str, str]) -> RemoteAttrs:
        """Upload the local file `path` as the object; the attrs of the new remote object."""
        ...

    async def delete_object(self, bucket: str, obj: str) -> None:
        """Delete the object; ObjectNotFound if the backend says it does not exist."""
        ...

    async def close(self) -> None: ...
