"""Cluster metadata documents: the cluster map (wire: Smap) and bucket metadata (wire: BMD).

Both are immutable and versioned; the primary proxy makes a new version for every change
and metasyncs it. JSON shapes follow reference §3.1 and §3.3 so the SDK can read them.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping

from ais import apc, hrw
from ais.names import Bucket, Namespace


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the cluster map (wire: Snode)."""

    id: str
    role: str  # "proxy" | "target"
    public_url: str
    intra_url: str
    flags: int = 0
    id_digest: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id_digest", hrw.digest(self.id))

    @property
    def display(self) -> str:
        return f"{'p' if self.role == 'proxy' else 't'}[{self.id}]"

    @property
    def in_maintenance(self) -> bool:
        return bool(self.flags & (apc.FLAG_MAINTENANCE | apc.FLAG_DECOMMISSION))

    def to_wire(self) -> dict[str, Any]:
        pub = _net_info(self.public_url)
        intra = _net_info(self.intra_url)
        return {
            "daemon_id": self.id,
            "daemon_type": self.role,
            "public_net": pub,
            "intra_control_net": intra,
            "intra_data_net": intra,
            "flags": self.flags,
            "id_digest": self.id_digest,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "Node":
        return cls(
            id=d["daemon_id"],
            role=d["daemon_type"],
            public_url=d["public_net"]["direct_url"],
            intra_url=d["intra_control_net"]["direct_url"],
            flags=int(d.get("flags", 0)),
        )


def _net_info(url: str) -> dict[str, str]:
    hostport = url.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return {"node_ip_addr": host, "node_hostname": host, "daemon_port": port, "direct_url": url}


@dataclass(frozen=True, slots=True)
class ClusterMap:
    """Proxies, targets and the primary (wire: Smap)."""

    version: int
    uuid: str
    primary_id: str
    proxies: Mapping[str, Node]
    targets: Mapping[str, Node]
    creation_time: str = ""
    # HRW results memoised per map version (the map is immutable); bounded.
    _owners: dict[str, Node | None] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def new(cls, primary: Node) -> "ClusterMap":
        return cls(version=1, uuid=uuidlib.uuid4().hex[:12], primary_id=primary.id,
                   proxies={primary.id: primary}, targets={},
                   creation_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def primary(self) -> Node:
        return self.proxies[self.primary_id]

    def get(self, node_id: str) -> Node | None:
        return self.targets.get(node_id) or self.proxies.get(node_id)

    def nodes(self) -> Iterator[Node]:
        yield from self.proxies.values()
        yield from self.targets.values()

    def active_targets(self) -> list[Node]:
        return [t for t in self.targets.values() if not t.in_maintenance]

    def owner(self, uname: str) -> Node | None:
        """The target that owns `uname` (HRW over active targets)."""
        cache = self._owners
        try:
            return cache[uname]
        except KeyError:
            pass
        node = hrw.choose(uname, ((t.id_digest, t) for t in self.targets.values() if not t.in_maintenance))
        if len(cache) >= 65536:
            cache.clear()
        cache[uname] = node
        return node

    def with_node(self, node: Node) -> "ClusterMap":
        group = dict(self.proxies if node.role == "proxy" else self.targets)
        group[node.id] = node
        if node.role == "proxy":
            return replace(self, version=self.version + 1, proxies=group)
        return replace(self, version=self.version + 1, targets=group)

    def with_primary(self, node_id: str) -> "ClusterMap":
        """The next version with proxy `node_id` as the primary (an election or a set-primary)."""
        if node_id not in self.proxies:
            raise KeyError(f"no proxy {node_id!r} in the cluster map")
        return replace(self, version=self.version + 1, primary_id=node_id)

    def electable_proxies(self) -> list[Node]:
        """Proxies that may become primary, best candidate first: electable, not in maintenance,
        not the primary, by descending ID digest (reference §3.2 `HrwProxy`)."""
        return sorted((p for p in self.proxies.values() if p.id != self.primary_id and not p.in_maintenance
                       and not p.flags & apc.FLAG_NON_ELECTABLE), key=lambda p: p.id_digest, reverse=True)

    def without_node(self, node_id: str) -> "ClusterMap":
        return replace(self, version=self.version + 1,
                       proxies={k: v for k, v in self.proxies.items() if k != node_id},
                       targets={k: v for k, v in self.targets.items() if k != node_id})

    def to_wire(self) -> dict[str, Any]:
        return {
            "pmap": {k: v.to_wire() for k, v in self.proxies.items()},
            "tmap": {k: v.to_wire() for k, v in self.targets.items()},
            "proxy_si": self.primary.to_wire(),
            "uuid": self.uuid,
            "creation_time": self.creation_time,
            "version": str(self.version),
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "ClusterMap":
        return cls(
            version=int(d["version"]),
            uuid=d.get("uuid", ""),
            primary_id=d["proxy_si"]["daemon_id"],
            proxies={k: Node.from_wire(v) for k, v in d.get("pmap", {}).items()},
            targets={k: Node.from_wire(v) for k, v in (d.get("tmap") or {}).items()},
            creation_time=d.get("creation_time", ""),
        )


def default_bucket_props(bck: Bucket, bid: int) -> dict[str, Any]:
    """Bucket properties with AIStore's JSON keys (reference §1.4)."""
    return {
        "provider": bck.provider,
        "backend_bck": {"name": "", "provider": ""},
        "checksum": {"type": "xxhash", "validate_cold_get": False, "validate_warm_get": False,
                     "validate_obj_move": False, "enable_read_range": False},
        "versioning": {"enabled": True, "validate_warm_get": False, "synchronize": False},
        "mirror": {"copies": 1, "burst_buffer": 128, "enabled": False},
        "ec": {"enabled": False, "data_slices": 1, "parity_slices": 1, "objsize_limit": 262144},
        "lru": {"dont_evict_time": "2h0m", "capacity_upd_time": "10m", "enabled": not bck.is_ais},
        "write_policy": {"data": "", "md": ""},
        # frontend: a token bucket per bucket and verb at the proxies (each takes 1/n of the rate)
        "rate_limit": {"backend": {"enabled": False, "interval": "1m", "max_tokens": 1000, "num_retries": 3},
                       "frontend": {"enabled": False, "interval": "1m", "max_tokens": 1000, "burst_size": 375}},
        "access": "0",
        "features": "0",
        "bid": str(bid),
        "created": str(time.time_ns()),
    }


def bucket_id(props: Mapping[str, Any]) -> int:
    """The bucket ID in a bucket's props (0 when it has none)."""
    return int(str(props.get("bid", "0")))


# Top-level props a PATCH may change, and those it may not.
READONLY_PROPS = frozenset({"provider", "bid", "created"})


@dataclass(frozen=True, slots=True)
class BucketMD:
    """Buckets and their properties (wire: BMD): provider -> namespace uname -> name -> props."""

    version: int
    uuid: str
    buckets: Mapping[Bucket, Mapping[str, Any]] = field(default_factory=dict)

    def get(self, bck: Bucket) -> Mapping[str, Any] | None:
        return self.buckets.get(bck)

    def with_bucket(self, bck: Bucket, props: Mapping[str, Any]) -> "BucketMD":
        new = dict(self.buckets)
        new[bck] = props
        return replace(self, version=self.version + 1, buckets=new)

    def without_bucket(self, bck: Bucket) -> "BucketMD":
        return replace(self, version=self.version + 1,
                       buckets={k: v for k, v in self.buckets.items() if k != bck})

    def next_bid(self) -> int:
        return max((int(p.get("bid", 0)) for p in self.buckets.values()), default=0) + 1

    def to_wire(self) -> dict[str, Any]:
        providers: dict[str, dict[str, dict[str, Any]]] = {}
        for bck, props in self.buckets.items():
            providers.setdefault(bck.provider, {}).setdefault(bck.namespace.uname, {})[bck.name] = props
        return {"providers": providers, "uuid": self.uuid, "version": str(self.version)}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "BucketMD":
        buckets: dict[Bucket, Mapping[str, Any]] = {}
        for prov, namespaces in (d.get("providers") or {}).items():
            for ns, names in namespaces.items():
                for name, props in names.items():
                    buckets[Bucket(name, prov, Namespace.parse(ns))] = props
        return cls(version=int(d["version"]), uuid=d.get("uuid", ""), buckets=buckets)


@dataclass(frozen=True, slots=True)
class AccessKeys:
    """S3 access keys of the cluster (our addition to the metadata set): access key -> secret,
    and for a key bound to a user (made while auth is on) the user's permissions as token
    claims (`sub`, `admin`, `clusters`, `buckets`; `tid`: the token it was made with)."""

    version: int
    keys: Mapping[str, str] = field(default_factory=dict)
    bindings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def with_key(self, access_key: str, secret: str, binding: Mapping[str, Any] | None = None) -> "AccessKeys":
        bindings = {**self.bindings, access_key: dict(binding)} if binding else dict(self.bindings)
        return replace(self, version=self.version + 1, keys={**self.keys, access_key: secret}, bindings=bindings)

    def without_key(self, access_key: str) -> "AccessKeys":
        return replace(self, version=self.version + 1,
                       keys={k: v for k, v in self.keys.items() if k != access_key},
                       bindings={k: v for k, v in self.bindings.items() if k != access_key})

    def owner(self, access_key: str) -> str:
        return str(self.bindings.get(access_key, {}).get("sub", ""))

    def to_wire(self) -> dict[str, Any]:
        return {"version": str(self.version), "keys": dict(self.keys), "bindings": dict(self.bindings)}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "AccessKeys":
        return cls(version=int(d["version"]), keys=dict(d.get("keys") or {}), bindings=dict(d.get("bindings") or {}))


@dataclass(frozen=True, slots=True)
class RebalanceMD:
    """Rebalance metadata (wire: RMD): one version per change of the active target set. Every
    target runs the rebalance `job_id` of the newest version it holds until it has sent away
    what it no longer owns under cluster map `smap_version` or later (reference §9)."""

    version: int
    smap_version: int = 0

    @property
    def job_id(self) -> str:
        return f"g{self.version}"

    def next(self, smap_version: int) -> "RebalanceMD":
        return replace(self, version=self.version + 1, smap_version=smap_version)

    def to_wire(self) -> dict[str, Any]:
        return {"version": str(self.version), "smap_version": str(self.smap_version)}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "RebalanceMD":
        return cls(version=int(d["version"]), smap_version=int(d.get("smap_version", 0)))


def placement_changed(old: ClusterMap | None, new: ClusterMap) -> bool:
    """True when `new` moves objects: its set of active targets differs from `old`'s."""
    before = {t.id for t in old.active_targets()} if old is not None else set()
    return before != {t.id for t in new.active_targets()}
