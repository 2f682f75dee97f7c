"""The AuthN registry: users, roles, registered clusters and revoked tokens, and every rule
about changing them. HTTP handlers (server.py) translate requests into these calls.

Invariants:
- the `Admin` role exists and is an admin role; the superuser exists and holds it;
- a user's roles all exist (deleting a role takes it away from its users);
- cluster ids and aliases are unique together (a cluster is found by either);
- a change is on disk before it is visible: each one builds new collections, saves them, then
  swaps them in, under one lock.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import logging
import os
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

from ais.authn import access
from ais.authn.config import AuthnConfig
from ais.authn.errors import (InvalidCredentials, Unauthorized, cluster_exists, cluster_not_found, role_exists,
                              role_not_found, user_exists, user_not_found)
from ais.authn.model import ADMIN_ROLE, Cluster, ClusterPerm, Role, User, UserChange, check_urls
from ais.authn.store import Store
from ais.authn.tokens import SERVICE_SUBJECT, Signer, user_claims
from ais.errors import BadRequest, Conflict, Forbidden

log = logging.getLogger(__name__)

# Roles created for every registered cluster (as AIStore's AuthN does), named `<prefix>-<alias or id>`.
DEFAULT_ROLES = (
    ("ClusterOwner", "Full access to cluster {}", access.ACCESS_SU),
    ("BucketOwner", "Read-write access to the buckets of cluster {}", access.ACCESS_RW),
    ("Guest", "Read-only access to the buckets of cluster {}", access.ACCESS_RO),
)

# scrypt: 16 MiB and some 50 ms per hash, run in a worker thread.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 1 << 14, 8, 1, 32


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN)
    return "scrypt${}${}${}${}${}".format(_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, base64.b64encode(salt).decode(),
                                          base64.b64encode(digest).decode())


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the user does not exist, so a wrong name costs what a wrong password does."""
    return hash_password(os.urandom(8).hex())


class Registry:
    def __init__(self, cfg: AuthnConfig, store: Store, signer: Signer) -> None:
        self.cfg, self.store, self.signer = cfg, store, signer
        self.users: dict[str, User] = {}
        self.roles: dict[str, Role] = {}
        self.clusters: dict[str, Cluster] = {}
        self.revoked: dict[str, int] = {}        # token -> its exp (kept until then)
        self._lock = asyncio.Lock()
        # told about every new revocation and every registered or changed cluster (revocation.py)
        self.on_revoked: Callable[[str], None] = lambda token: None
        self.on_cluster_changed: Callable[[str], None] = lambda cluster_id: None

    # --- start-up --------------------------------------------------------------------------

    def load(self) -> None:
        """Read the state and make sure the Admin role and the superuser exist. Blocking:
        call once at start-up, off the event loop."""
        docs = self.store.load()
        try:
            self.users = {k: User.from_disk(v) for k, v in docs["users"].items()}
            self.roles = {k: Role.from_wire(v) for k, v in docs["roles"].items()}
            self.clusters = {k: Cluster.from_wire(v) for k, v in docs["clusters"].items()}
            self.revoked = {str(k): int(v) for k, v in docs["revoked"].items()}
        except (KeyError, TypeError, ValueError, BadRequest) as exc:
            raise ValueError(f"damaged AuthN state in {self.cfg.conf_dir}: {exc}") from exc
        self._prune_revoked()
        changed: dict[str, Any] = {}
        admin = self.roles.get(ADMIN_ROLE)
        if admin is None or not admin.admin:
            self.roles[ADMIN_ROLE] = Role(ADMIN_ROLE, "AuthN administrator", admin=True)
            changed["roles"] = self._roles_doc(self.roles)
        su = self.cfg.su_name
        if su not in self.users:
            log.info("creating the superuser %r", su)
            self.users[su] = User(su, hash_password(self.cfg.su_pass), (ADMIN_ROLE,))
            changed["users"] = self._users_doc(self.users)
        elif ADMIN_ROLE not in self.users[su].roles:
            self.users[su] = replace(self.users[su], roles=(*self.users[su].roles, ADMIN_ROLE))
            changed["users"] = self._users_doc(self.users)
        if changed:
            self.store.save_blocking(changed)

    # --- tokens ----------------------------------------------------------------------------

    async def login(self, uid: str, password: str, expires_in_s: float | None) -> str:
        user = self.users.get(uid)
        ok = await asyncio.to_thread(check_password, password, user.password_hash if user else _dummy_hash())
        if user is None or not ok:
            raise InvalidCredentials()
        ttl = self.cfg.token_ttl_s if not expires_in_s else min(expires_in_s, self.cfg.max_token_ttl_s)
        return self.signer.sign(user_claims(user, self.roles, int(time.time()), ttl))

    def authenticate(self, token: str) -> dict[str, Any]:
        """The claims of a valid, unrevoked token of this service (Unauthorized otherwise)."""
        claims = self.signer.verify(token)
        if token in self.revoked:
            raise Unauthorized("token has been revoked")
        return claims

    def is_admin(self, claims: Mapping[str, Any]) -> bool:
        """An admin token of a user who is an admin now (a token outlives role changes; the
        service's own push tokens manage nothing here)."""
        user = self.users.get(str(claims.get("sub", "")))
        return bool(claims.get("admin")) and user is not None and \
            any(self.roles[r].admin for r in user.roles if r in self.roles)

    async def revoke(self, token: str, caller: Mapping[str, Any]) -> bool:
        """Record a revoked token; False when there was nothing to do (expired, or already revoked).
        An admin revokes any token, anyone else only their own."""
        claims = self.signer.decode_expired_ok(token)
        if not self.is_admin(caller) and claims.get("sub") != caller.get("sub"):
            raise Forbidden("only an admin may revoke another user's token")
        exp = int(claims.get("exp", 0))
        if exp <= time.time() or token in self.revoked:
            return False
        async with self._lock:
            revoked = {t: e for t, e in self.revoked.items() if e > time.time()}
            revoked[token] = exp
            await self.store.save({"revoked": revoked})
            self.revoked = revoked
        log.info("revoked a token of %r (expires %s)", claims.get("sub"), time.strftime("%FT%TZ", time.gmtime(exp)))
        self.on_revoked(token)
        return True

    def unexpired_revoked(self) -> list[str]:
        now = time.time()
        return [t for t, exp in self.revoked.items() if exp > now]

    def _prune_revoked(self) -> None:
        now = time.time()
        self.revoked = {t: e for t, e in self.revoked.items() if e > now}

    # --- users -----------------------------------------------------------------------------

    def get_user(self, uid: str) -> User:
        user = self.users.get(uid)
        if user is None:
            raise user_not_found(uid)
        return user

    async def add_user(self, change: UserChange) -> User:
        if change.id == SERVICE_SUBJECT:
            raise BadRequest(f"user name {SERVICE_SUBJECT!r} is reserved for the service itself")
        if not change.password:
            raise BadRequest(f"user {change.id!r}: a password ('pass') is required")
        self._check_roles(change.roles or ())
        password_hash = await asyncio.to_thread(hash_password, change.password)
        async with self._lock:
            if change.id in self.users:
                raise user_exists(change.id)
            self._check_roles(change.roles or ())
            user = User(change.id, password_hash, change.roles or (), change.clusters or (), change.buckets or ())
            await self._save_users({**self.users, user.id: user})
        log.info("added user %r with roles %s", user.id, list(user.roles))
        return user

    async def update_user(self, change: UserChange, caller: Mapping[str, Any]) -> User:
        """Admins change anything; a user may change its own password only. Empty role and
        permission lists leave those unchanged (the SDK sends `roles: []` with a new password)."""
        self.get_user(change.id)
        admin = self.is_admin(caller)
        if not admin:
            if caller.get("sub") != change.id:
                raise Forbidden("only an admin may change another user")
            if change.roles or change.clusters or change.buckets:
                raise Forbidden("only an admin may change a user's roles or permissions")
        if not (change.password or change.roles or change.clusters or change.buckets):
            raise BadRequest(f"nothing to update for user {change.id!r}: give 'pass', 'roles', 'clusters' "
                             "or 'buckets'")
        self._check_roles(change.roles or ())
        if change.id == self.cfg.su_name and change.roles and ADMIN_ROLE not in change.roles:
            raise BadRequest(f"the superuser {change.id!r} must keep the {ADMIN_ROLE!r} role")
        password_hash = await asyncio.to_thread(hash_password, change.password) if change.password else None
        async with self._lock:
            user = self.get_user(change.id)
            self._check_roles(change.roles or ())
            user = replace(user, password_hash=password_hash or user.password_hash, roles=change.roles or user.roles,
                           clusters=change.clusters or user.clusters, buckets=change.buckets or user.buckets)
            await self._save_users({**self.users, user.id: user})
        log.info("updated user %r", user.id)
        return user

    async def delete_user(self, uid: str) -> None:
        if uid == self.cfg.su_name:
            raise BadRequest(f"the superuser {uid!r} cannot be deleted")
        async with self._lock:
            self.get_user(uid)
            await self._save_users({k: v for k, v in self.users.items() if k != uid})
        log.info("deleted user %r", uid)

    def _check_roles(self, names: tuple[str, ...]) -> None:
        for name in names:
            if name not in self.roles:
                raise role_not_found(name)

    async def _save_users(self, users: dict[str, User]) -> None:
        await self.store.save({"users": self._users_doc(users)})
        self.users = users

    # --- roles -----------------------------------------------------------------------------

    def get_role(self, name: str) -> Role:
        role = self.roles.get(name)
        if role is None:
            raise role_not_found(name)
        return role

    async def add_role(self, role: Role) -> Role:
        async with self._lock:
            if role.name in self.roles:
                raise role_exists(role.name)
            await self.store.save({"roles": self._roles_doc({**self.roles, role.name: role})})
            self.roles = {**self.roles, role.name: role}
        log.info("added role %r", role.name)
        return role

    async def update_role(self, name: str, body: Mapping[str, Any]) -> Role:
        """Fields given replace the role's; `clusters`/`buckets` given as null stay as they are."""
        async with self._lock:
            old = self.get_role(name)
            given = Role.from_wire({**old.to_wire(), **{k: v for k, v in body.items() if v is not None},
                                    "name": body.get("name") or name})
            if given.name != name:
                raise BadRequest(f"role name {given.name!r} in the body does not match {name!r} in the path "
                                 "(a role cannot be renamed)")
            if name == ADMIN_ROLE and not given.admin:
                raise BadRequest(f"role {ADMIN_ROLE!r} must stay an admin role")
            await self.store.save({"roles": self._roles_doc({**self.roles, name: given})})
            self.roles = {**self.roles, name: given}
        log.info("updated role %r", name)
        return given

    async def delete_role(self, name: str) -> None:
        if name == ADMIN_ROLE:
            raise BadRequest(f"role {ADMIN_ROLE!r} cannot be deleted")
        async with self._lock:
            self.get_role(name)
            await self._drop_roles({name})
        log.info("deleted role %r", name)

    async def _drop_roles(self, names: set[str]) -> None:
        """Delete roles and take them away from their users (under the lock)."""
        roles = {k: v for k, v in self.roles.items() if k not in names}
        users = {k: replace(u, roles=tuple(r for r in u.roles if r not in names)) if set(u.roles) & names else u
                 for k, u in self.users.items()}
        await self.store.save({"roles": self._roles_doc(roles), "users": self._users_doc(users)})
        self.roles, self.users = roles, users

    # --- clusters --------------------------------------------------------------------------

    def find_cluster(self, key: str) -> Cluster:
        """A registered cluster by id or alias."""
        cluster = self.clusters.get(key)
        if cluster is None:
            cluster = next((c for c in self.clusters.values() if c.alias and c.alias == key), None)
        if cluster is None:
            raise cluster_not_found(key)
        return cluster

    def _check_alias(self, alias: str, cluster_id: str) -> None:
        for c in self.clusters.values():
            if c.id != cluster_id and alias in (c.id, c.alias):
                raise Conflict(f"cluster alias {alias!r} is already used by cluster {c.id!r}")

    async def register_cluster(self, cluster: Cluster) -> Cluster:
        async with self._lock:
            if cluster.id in self.clusters or any(c.alias == cluster.id for c in self.clusters.values()):
                raise cluster_exists(cluster.id)
            if cluster.alias:
                self._check_alias(cluster.alias, cluster.id)
            clusters = {**self.clusters, cluster.id: cluster}
            roles = dict(self.roles)
            for name, desc, perm in DEFAULT_ROLES:
                role_name = f"{name}-{cluster.alias or cluster.id}"
                label = f"{cluster.id}[{cluster.alias}]" if cluster.alias else cluster.id
                roles.setdefault(role_name, Role(role_name, desc.format(label), (ClusterPerm(cluster.id, perm),)))
            await self.store.save({"clusters": self._clusters_doc(clusters), "roles": self._roles_doc(roles)})
            self.clusters, self.roles = clusters, roles
        log.info("registered cluster %r (alias %r) at %s", cluster.id, cluster.alias, list(cluster.urls))
        self.on_cluster_changed(cluster.id)
        return cluster

    async def update_cluster(self, key: str, body: Mapping[str, Any]) -> Cluster:
        """`alias` and `urls` replace the cluster's when given (non-empty); the id never changes."""
        async with self._lock:
            old = self.find_cluster(key)
            body_id = body.get("id")
            if body_id not in (None, "", old.id):
                raise BadRequest(f"cluster id {body_id!r} in the body does not match {old.id!r} (ids never change)")
            alias, urls = body.get("alias"), body.get("urls")
            if alias is not None and not isinstance(alias, str):
                raise BadRequest("cluster 'alias' must be a string")
            new = Cluster.from_wire({"id": old.id, "alias": alias or old.alias,
                                     "urls": list(check_urls(urls) if urls else old.urls)})
            if new.alias:
                self._check_alias(new.alias, new.id)
            clusters = {**self.clusters, new.id: new}
            await self.store.save({"clusters": self._clusters_doc(clusters)})
            self.clusters = clusters
        log.info("updated cluster %r: alias %r, urls %s", new.id, new.alias, list(new.urls))
        self.on_cluster_changed(new.id)
        return new

    async def delete_cluster(self, key: str) -> None:
        """Unregister a cluster, with the default roles made for it."""
        async with self._lock:
            cluster = self.find_cluster(key)
            # its default roles, whatever alias they were named after (an alias may have changed since)
            prefixes = tuple(f"{prefix}-" for prefix, _, _ in DEFAULT_ROLES)
            mine = {n for n, r in self.roles.items()
                    if n.startswith(prefixes) and [c.id for c in r.clusters] == [cluster.id] and not r.buckets}
            clusters = {k: v for k, v in self.clusters.items() if k != cluster.id}
            await self.store.save({"clusters": self._clusters_doc(clusters)})
            self.clusters = clusters
            if mine:
                await self._drop_roles(mine)
        log.info("unregistered cluster %r", cluster.id)

    # --- documents -------------------------------------------------------------------------

    @staticmethod
    def _users_doc(users: Mapping[str, User]) -> dict[str, Any]:
        return {k: u.to_disk() for k, u in users.items()}

    @staticmethod
    def _roles_doc(roles: Mapping[str, Role]) -> dict[str, Any]:
        return {k: r.to_wire() for k, r in roles.items()}

    @staticmethod
    def _clusters_doc(clusters: Mapping[str, Cluster]) -> dict[str, Any]:
        return {k: c.to_wire() for k, c in clusters.items()}
