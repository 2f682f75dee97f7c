"""`ais.client`: the Python client of the cluster's native API.

    from ais.client import Client
    c = Client("http://127.0.0.1:8080")          # or env AIS_ENDPOINT
    c.create_bucket("data")
    c.put_object("data", "a/b.bin", b"...")
    c.get_object("data", "a/b.bin", offset=0, length=4)
    for e in c.list_objects("data", prefix="a/"): ...
    c.batch_get(["a/b.bin", "a/c.bin"], bucket="data")

`AsyncClient` is the asyncio core (same calls, awaited); `Client` is its blocking facade, safe
across threads and after fork(). Object requests go straight to the owning target by HRW over a
cached cluster map (see routing.py); 429/503 and transport failures are retried for idempotent
calls (retry.py). Every exception is an `errors.ClientError` (tree in errors.py).
"""

from ais.client.core import ApiAnswer, AsyncClient, AsyncObjectReader, BucketLike, ClientStats, to_bucket
from ais.client.errors import (AccessDenied, BadRequest, BucketExists, BucketNotFound, ClientError, Conflict,
                               ConnectError, DecodeError, EtlExists, EtlNotFound, InsufficientStorage, InvalidName,
                               NotConnected, NotFound, ObjectNotFound, RangeNotSatisfiable, ReadError, RequestTimeout,
                               ServerError, StatusError, StreamConsumed, Throttled, TransportError, WaitTimeout)
from ais.client.retry import RetryPolicy
from ais.client.routing import Route, Router
from ais.client.sync import Client, ObjectReader
from ais.client.transport import AiohttpTransport, Request, Response, Timeouts, Transport
from ais.client.types import (LS_ARCH_DIR, LS_CACHED, LS_NAME_ONLY, BatchEntry, BatchItem, JobStatus, ListEntry,
                              ListPage, ObjectProps)

__all__ = [
    "AccessDenied", "AiohttpTransport", "ApiAnswer", "AsyncClient", "AsyncObjectReader", "BadRequest", "BatchEntry",
    "BatchItem",
    "BucketExists", "BucketLike", "BucketNotFound", "Client", "ClientError", "ClientStats", "Conflict",
    "ConnectError", "DecodeError", "EtlExists", "EtlNotFound", "InsufficientStorage", "InvalidName", "JobStatus",
    "LS_ARCH_DIR", "LS_CACHED", "LS_NAME_ONLY", "ListEntry", "ListPage", "NotConnected", "NotFound", "ObjectNotFound",
    "ObjectProps", "ObjectReader", "RangeNotSatisfiable", "ReadError", "Request", "RequestTimeout", "Response",
    "RetryPolicy", "Route", "Router", "ServerError", "StatusError", "StreamConsumed", "Throttled", "Timeouts",
    "Transport", "TransportError", "WaitTimeout", "to_bucket",
]
