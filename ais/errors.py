"""One exception tree for every node, and its wire rendering.

    AisError (500)
    ├── BadRequest (400)
    │   ├── InvalidName          bad bucket or object name
    │   ├── BadMessage           malformed JSON / msgpack / action message
    │   └── UnknownAction
    ├── Unauthorized (401)       no, bad, expired or revoked token
    ├── Forbidden (403)          authenticated, but not allowed
    ├── NotFound (404)
    │   ├── BucketNotFound       `bucket "ais://b" does not exist`
    │   └── ObjectNotFound       `ais://b/o does not exist`
    ├── MethodNotAllowed (405)
    ├── Conflict (409)
    │   └── BucketExists         `bucket "ais://b" already exists`
    ├── Locked (423)
    ├── PayloadTooLarge (413)
    ├── RangeNotSatisfiable (416)
    ├── TooManyRequests (429)
    ├── NotImplementedErr (501)
    ├── ServiceUnavailable (503)
    └── InsufficientStorage (507)

Messages embed the cname (`ais://bucket[/object]`) because the SDK classifies errors by
scanning the text for it (reference §0). Handlers raise; one middleware renders.
"""

from __future__ import annotations

from typing import Any


class AisError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.headers = headers or {}

    def to_wire(self, *, node: str, method: str, path: str, remote: str, caller: str = "") -> dict[str, Any]:
        """The JSON body AIStore sends for an HTTP error (`cmn/err.go::ErrHTTP`)."""
        return {
            "tcode": self.code,
            "message": f"{node}: {self.message}" if node else self.message,
            "method": method,
            "url_path": path,
            "remote_addr": remote,
            "caller": caller,
            "node": node,
            "status": self.status,
        }


class BadRequest(AisError):
    status = 400
    code = "bad-request"


class InvalidName(BadRequest):
    code = "invalid-name"


class BadMessage(BadRequest):
    code = "bad-message"


class UnknownAction(BadRequest):
    code = "unknown-action"


class Unauthorized(AisError):
    """No credentials, or credentials that do not verify (a bad, expired or revoked token)."""
    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="ais"'})


class Forbidden(AisError):
    status = 403
    code = "forbidden"


class NotFound(AisError):
    status = 404
    code = "not-found"


class BucketNotFound(NotFound):
    code = "bucket-not-found"

    def __init__(self, cname: str) -> None:
        super().__init__(f'bucket "{cname}" does not exist')


class ObjectNotFound(NotFound):
    code = "object-not-found"

    def __init__(self, cname: str) -> None:
        super().__init__(f"{cname} does not exist")


class MethodNotAllowed(AisError):
    status = 405
    code = "method-not-allowed"


class Conflict(AisError):
    status = 409
    code = "conflict"


class BucketExists(Conflict):
    code = "bucket-exists"

    def __init__(self, cname: str) -> None:
        super().__init__(f'bucket "{cname}" already exists')


class PayloadTooLarge(AisError):
    status = 413
    code = "payload-too-large"


class RangeNotSatisfiable(AisError):
    status = 416
    code = "range-not-satisfiable"


class Locked(AisError):
    status = 423
    code = "locked"


class TooManyRequests(AisError):
    status = 429
    code = "too-many-requests"


class NotImplementedErr(AisError):
    status = 501
    code = "not-implemented"


class ServiceUnavailable(AisError):
    status = 503
    code = "unavailable"


class InsufficientStorage(AisError):
    status = 507
    code = "insufficient-storage"
