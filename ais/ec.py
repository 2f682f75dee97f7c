"""Erasure coding: the `ec` bucket props, checked where bucket props change (the primary), and
the rules proxies and targets share (how many targets a scheme needs, replicate or slice).

An object of an EC bucket lives whole on its HRW owner (the "main" copy) and, on other targets,
either as `data_slices` data plus `parity_slices` parity slices (Reed-Solomon) or, below
`objsize_limit` bytes, as `parity_slices` full replicas. Any `data_slices` slices (or one
replica) rebuild it, so the cluster may lose any `parity_slices` targets (AIStore's scheme,
docs/storage_svcs.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ais.errors import BadRequest
from ais.names import Bucket

ACT_EC_ENCODE = "ec-encode"   # the bucket action, and the job's kind

MIN_SLICES = 1
MAX_SLICES = 32
ALWAYS_REPLICATE = -1   # objsize_limit: every object is replicated, none sliced


@dataclass(frozen=True, slots=True)
class EcConf:
    enabled: bool = False
    data_slices: int = 1
    parity_slices: int = 1
    objsize_limit: int = 262144

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> "EcConf":
        """The `ec` section of (validated) bucket props; absent means disabled."""
        ec = props.get("ec") or {}
        return cls(enabled=bool(ec.get("enabled", False)), data_slices=int(ec.get("data_slices", 1)),
                   parity_slices=int(ec.get("parity_slices", 1)), objsize_limit=int(ec.get("objsize_limit", 262144)))

    def replicated(self, size: int) -> bool:
        """An object of `size` bytes is replicated rather than sliced (AIStore: size < limit)."""
        return self.objsize_limit == ALWAYS_REPLICATE or size < self.objsize_limit

    @property
    def targets_needed(self) -> int:
        """The main copy and every slice each on its own target."""
        if self.objsize_limit == ALWAYS_REPLICATE:
            return self.parity_slices + 1
        return self.data_slices + self.parity_slices + 1


def _whole(ec: Mapping[str, Any], key: str, low: int, high: int | None) -> int:
    value = ec.get(key)
    if type(value) is not int or value < low or (high is not None and value > high):
        span = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise BadRequest(f"invalid ec.{key} {value!r}: expected a whole number in {span}")
    return value


def check_props(bck: Bucket, new: Mapping[str, Any], old: Mapping[str, Any] | None, active_targets: int) -> bool:
    """Validate the `ec` section of bucket props about to be stored (BadRequest naming the field).
    True when this change turns erasure coding on (the bucket's objects then need encoding)."""
    ec = new.get("ec")
    if ec is None:
        return False
    if not isinstance(ec, Mapping):
        raise BadRequest("bucket property 'ec' must be an object")
    if type(ec.get("enabled", False)) is not bool:
        raise BadRequest(f"invalid ec.enabled {ec.get('enabled')!r}: expected true or false")
    _whole(ec, "data_slices", MIN_SLICES, MAX_SLICES)
    _whole(ec, "parity_slices", MIN_SLICES, MAX_SLICES)
    _whole(ec, "objsize_limit", ALWAYS_REPLICATE, None)
    conf = EcConf.from_props(new)
    if not conf.enabled:
        return False
    if not bck.is_ais:
        raise BadRequest(f"invalid ec.enabled for {bck.cname}: erasure coding is supported for ais:// buckets only")
    before = EcConf.from_props(old or {})
    if before.enabled:
        for key in ("data_slices", "parity_slices", "objsize_limit"):
            if getattr(before, key) != getattr(conf, key):
                raise BadRequest(f"invalid ec.{key} for {bck.cname}: it cannot change while erasure coding is "
                                 f"enabled (disable it first, then enable it with the new value)")
    if conf.targets_needed > active_targets:
        what = (f"ec.parity_slices={conf.parity_slices} replicas" if conf.objsize_limit == ALWAYS_REPLICATE else
                f"ec.data_slices={conf.data_slices} + ec.parity_slices={conf.parity_slices} slices")
        raise BadRequest(f"invalid ec.data_slices/ec.parity_slices for {bck.cname}: {what} plus the object need "
                         f"{conf.targets_needed} targets, and the cluster has {active_targets} active targets")
    return not before.enabled
