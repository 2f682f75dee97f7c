"""What AuthN keeps: users, roles, registered clusters and their permissions, with their wire
forms (the SDK's `UserInfo`, `RoleInfo`, `ClusterInfo`) and the validation of what arrives.

Permissions are ints inside and uint64 decimal strings on the wire. A user names its roles;
their definitions are looked up when a token is issued, so a changed role applies to the next
login. Password hashes never leave the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from ais import apc
from ais.authn import access
from ais.errors import BadRequest
from ais.names import check_bucket_name, normalize_provider

ADMIN_ROLE = "Admin"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,127}$")


def check_name(what: str, value: Any) -> str:
    """A user, role or cluster name: it travels in URL paths, so letters, digits and `._@+=-`."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what} name is missing: expected a non-empty string")
    if not _NAME_RE.match(value):
        raise BadRequest(f"invalid {what} name {value!r}: use up to 128 letters, digits and '._@+=-', "
                         "starting with a letter or digit")
    return value


def _perm(where: str, value: Any) -> int:
    try:
        return access.parse(value)
    except ValueError as exc:
        raise BadRequest(f"{where}: {exc}") from None


def _obj(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _list(where: str, value: Any) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequest(f"{where}: expected a JSON list, got {type(value).__name__}")
    return value


def _str(where: str, value: Any, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"{where}: expected a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class ClusterPerm:
    """`perm` on a whole cluster (every bucket in it, and cluster-level operations)."""
    id: str
    perm: int

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "perm": str(self.perm)}

    @classmethod
    def from_wire(cls, d: Any, where: str = "clusters") -> "ClusterPerm":
        d = _obj(where, d)
        cid = _str(f"{where}.id", d.get("id"))
        if not cid:
            raise BadRequest(f"{where}: cluster permission without a cluster id")
        return cls(cid, _perm(f"{where}.perm", d.get("perm", "0")))


@dataclass(frozen=True, slots=True)
class BucketRef:
    name: str
    provider: str = apc.PROVIDER_AIS
    ns_uuid: str = ""       # the cluster a bucket belongs to (empty: any)
    ns_name: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider,
                "namespace": {"uuid": self.ns_uuid, "name": self.ns_name}}

    @classmethod
    def from_wire(cls, d: Any, where: str = "bck") -> "BucketRef":
        d = _obj(where, d)
        ns = _obj(f"{where}.namespace", d.get("namespace") or {})
        try:
            name = check_bucket_name(_str(f"{where}.name", d.get("name")))
            provider = normalize_provider(_str(f"{where}.provider", d.get("provider")) or apc.PROVIDER_AIS)
        except BadRequest as exc:
            raise BadRequest(f"{where}: {exc.message}") from None
        return cls(name, provider, _str(f"{where}.namespace.uuid", ns.get("uuid")),
                   _str(f"{where}.namespace.name", ns.get("name")))


@dataclass(frozen=True, slots=True)
class BucketPerm:
    bck: BucketRef
    perm: int

    def to_wire(self) -> dict[str, Any]:
        return {"bck": self.bck.to_wire(), "perm": str(self.perm)}

    @classmethod
    def from_wire(cls, d: Any, where: str = "buckets") -> "BucketPerm":
        d = _obj(where, d)
        return cls(BucketRef.from_wire(d.get("bck"), f"{where}.bck"), _perm(f"{where}.perm", d.get("perm", "0")))


def _cluster_perms(d: Mapping[str, Any]) -> tuple[ClusterPerm, ...]:
    return tuple(ClusterPerm.from_wire(x, f"clusters[{i}]") for i, x in enumerate(_list("clusters", d.get("clusters"))))


def _bucket_perms(d: Mapping[str, Any]) -> tuple[BucketPerm, ...]:
    return tuple(BucketPerm.from_wire(x, f"buckets[{i}]") for i, x in enumerate(_list("buckets", d.get("buckets"))))


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    desc: str = ""
    clusters: tuple[ClusterPerm, ...] = ()
    buckets: tuple[BucketPerm, ...] = ()
    admin: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "desc": self.desc, "clusters": [c.to_wire() for c in self.clusters],
                "buckets": [b.to_wire() for b in self.buckets], "admin": self.admin}

    @classmethod
    def from_wire(cls, d: Any) -> "Role":
        d = _obj("role", d)
        admin = d.get("admin", False)
        if not isinstance(admin, bool):
            raise BadRequest(f"role 'admin' must be true or false, got {admin!r}")
        return cls(check_name("role", d.get("name")), _str("desc", d.get("desc")),
                   _cluster_perms(d), _bucket_perms(d), admin)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    password_hash: str
    roles: tuple[str, ...] = ()
    clusters: tuple[ClusterPerm, ...] = ()      # granted to the user directly, beside its roles
    buckets: tuple[BucketPerm, ...] = ()

    def to_wire(self, roles: Mapping[str, Role]) -> dict[str, Any]:
        """The SDK's `UserInfo`: roles expanded to their definitions; never the password."""
        return {"id": self.id, "roles": [roles[r].to_wire() if r in roles else Role(r).to_wire() for r in self.roles],
                "clusters": [c.to_wire() for c in self.clusters], "buckets": [b.to_wire() for b in self.buckets]}

    def to_disk(self) -> dict[str, Any]:
        return {"id": self.id, "pass_hash": self.password_hash, "roles": list(self.roles),
                "clusters": [c.to_wire() for c in self.clusters], "buckets": [b.to_wire() for b in self.buckets]}

    @classmethod
    def from_disk(cls, d: Mapping[str, Any]) -> "User":
        return cls(str(d["id"]), str(d["pass_hash"]), tuple(str(r) for r in d.get("roles") or ()),
                   _cluster_perms(d), _bucket_perms(d))


@dataclass(frozen=True, slots=True)
class UserChange:
    """A user as a request describes it (`{"id", "pass", "roles", "clusters", "buckets"}`);
    None where the request leaves a field out."""
    id: str
    password: str | None = None
    roles: tuple[str, ...] | None = None
    clusters: tuple[ClusterPerm, ...] | None = None
    buckets: tuple[BucketPerm, ...] | None = None

    @classmethod
    def from_wire(cls, d: Any, user_id: str = "") -> "UserChange":
        d = _obj("user", d)
        uid = _str("id", d.get("id")) or user_id
        if user_id and uid != user_id:
            raise BadRequest(f"user id {uid!r} in the body does not match {user_id!r} in the path")
        password = d.get("pass", d.get("password"))
        if password is not None and (not isinstance(password, str) or not password.strip()):
            raise BadRequest("user 'pass' must be a non-empty string")
        roles = None
        if d.get("roles") is not None:
            roles = tuple(_role_name(i, r) for i, r in enumerate(_list("roles", d["roles"])))
        return cls(check_name("user", uid), password, roles,
                   _cluster_perms(d) if d.get("clusters") is not None else None,
                   _bucket_perms(d) if d.get("buckets") is not None else None)


def _role_name(i: int, r: Any) -> str:
    """A role reference: its name, or a role object (the SDK sends whole `RoleInfo`s)."""
    if isinstance(r, Mapping):
        r = r.get("name")
    return check_name(f"roles[{i}]", r)


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    alias: str = ""
    urls: tuple[str, ...] = field(default_factory=tuple)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "alias": self.alias, "urls": list(self.urls)}

    @classmethod
    def from_wire(cls, d: Any) -> "Cluster":
        d = _obj("cluster", d)
        alias = _str("alias", d.get("alias"))
        return cls(check_name("cluster", _str("id", d.get("id"))), check_name("cluster alias", alias) if alias else "",
                   check_urls(d.get("urls")))


def check_urls(value: Any) -> tuple[str, ...]:
    urls = _list("urls", value)
    if not urls:
        raise BadRequest("cluster 'urls' is empty: give at least one http(s):// URL of a proxy")
    for u in urls:
        try:
            parts = urlsplit(u) if isinstance(u, str) else None
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest(f"invalid cluster URL {u!r}: expected http(s)://host:port")
    return tuple(str(u).rstrip("/") for u in urls)
