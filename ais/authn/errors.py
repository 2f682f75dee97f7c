"""AuthN's errors: the service's conditions on top of `ais.errors`.

The SDK's `AuthNResponseHandler` classifies an error by status and by words in its message:
401 with "invalid credentials"; 404/409 naming a "user ", "role " or "cluster ". Messages here
keep to one of those words each, so the SDK raises the right `Err*` class.
"""

from __future__ import annotations

from ais.errors import Conflict, NotFound, Unauthorized

__all__ = ["InvalidCredentials", "Unauthorized"]


class InvalidCredentials(Unauthorized):
    code = "invalid-credentials"

    def __init__(self) -> None:
        super().__init__("invalid credentials: unknown user or wrong password")


def user_not_found(uid: str) -> NotFound:
    return NotFound(f"user {uid!r} does not exist")


def role_not_found(name: str) -> NotFound:
    return NotFound(f"role {name!r} does not exist")


def cluster_not_found(key: str) -> NotFound:
    return NotFound(f"cluster {key!r} is not registered")


def user_exists(uid: str) -> Conflict:
    return Conflict(f"user {uid!r} already exists")


def role_exists(name: str) -> Conflict:
    return Conflict(f"role {name!r} already exists")


def cluster_exists(key: str) -> Conflict:
    return Conflict(f"cluster {key!r} is already registered")
