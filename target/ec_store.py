"""Slices, replicas and EC metadata on a target's disks (blocking; run in the mountpath's pool).

Layout next to a bucket's objects (`%ob`), on the mountpath HRW picks for the object's name:
    <mp>/@ais/<bucket>/%ec/<object name>   this target's slice or replica of the object
    <mp>/@ais/<bucket>/%mt/<object name>   EC metadata (JSON): the object's size, checksum, version
                                           and custom metadata, d and p, the generation, which
                                           slice this target has (role), and every holder
The main target keeps a metadata file too (role "main", no slice), which HEAD shows and which
names the holders to clean up after an overwrite. Rebalance and listing walk `%ob` only, so
slices are never taken for misplaced objects.

Both files are written to `%wk` and renamed into place. A slice and its metadata are renamed
one after the other; a crash in between leaves a pair that disagrees, which the per-slice
checksum in the metadata exposes when the slice is read, so it is never used.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ais.errors import BadMessage
from target.fs import meta as fsmeta

EC_DIR = "%ec"
META_DIR = "%mt"

ROLE_MAIN = "main"
ROLE_SLICE = "slice"
ROLE_REPLICA = "replica"


@dataclass(frozen=True, slots=True)
class EcMeta:
    size: int                      # the object's
    data: int                      # d
    parity: int                    # p
    generation: int                # grows with every encoding of the object (ns clock)
    role: str                      # main | slice | replica
    index: int = 0                 # slice number 1..d+p; 0 for the main copy and replicas
    replicated: bool = False       # the object is kept as p replicas, not slices
    cksum_type: str = "xxhash"     # the object's checksum
    cksum_value: str = ""
    version: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    slice_cksum: str = ""          # xxh64 of this target's slice or replica
    nodes: dict[str, int] = field(default_factory=dict)   # holder node ID -> slice number (0: replica)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "EcMeta":
        try:
            d: Any = json.loads(text)
            meta = cls(size=int(d["size"]), data=int(d["data"]), parity=int(d["parity"]),
                       generation=int(d["generation"]), role=str(d["role"]), index=int(d.get("index", 0)),
                       replicated=bool(d.get("replicated", False)), cksum_type=str(d.get("cksum_type", "none")),
                       cksum_value=str(d.get("cksum_value", "")), version=str(d.get("version", "")),
                       custom={str(k): str(v) for k, v in (d.get("custom") or {}).items()},
                       slice_cksum=str(d.get("slice_cksum", "")),
                       nodes={str(k): int(v) for k, v in (d.get("nodes") or {}).items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadMessage(f"malformed EC metadata: {exc}") from exc
        if meta.role not in (ROLE_MAIN, ROLE_SLICE, ROLE_REPLICA) or meta.size < 0 or not 1 <= meta.data <= 32 \
                or not 1 <= meta.parity <= 32 or not 0 <= meta.index <= meta.data + meta.parity:
            raise BadMessage(f"invalid EC metadata: role {meta.role!r}, size {meta.size}, d {meta.data}, "
                             f"p {meta.parity}, slice {meta.index}")
        return meta

    def as_role(self, role: str, index: int = 0, slice_cksum: str = "") -> "EcMeta":
        return replace(self, role=role, index=index, slice_cksum=slice_cksum)


@dataclass(frozen=True, slots=True)
class EcPaths:
    mp: str
    slice: str      # %ec/<object>
    meta: str       # %mt/<object>
    slice_root: str
    meta_root: str


def read_meta(path: str) -> EcMeta | None:
    try:
        with open(path, "rb") as f:
            return EcMeta.from_json(f.read())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except BadMessage:
        return None   # torn or foreign: as good as absent


def _fsync_dir(path: str) -> None:
    dfd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def write_meta(paths: EcPaths, work: str, meta: EcMeta, fsync: bool) -> None:
    """Publish metadata atomically (work file -> rename)."""
    with open(work, "wb") as f:
        f.write(meta.to_json().encode())
        if fsync:
            os.fsync(f.fileno())
    fsmeta.ensure_parent(paths.meta)
    os.rename(work, paths.meta)
    if fsync:
        _fsync_dir(paths.meta)


def write_work(work: str, data: bytes, fsync: bool) -> None:
    with open(work, "wb") as f:
        f.write(data)
        if fsync:
            os.fsync(f.fileno())


def publish_slice(paths: EcPaths, slice_work: str, meta_work: str, meta: EcMeta, fsync: bool) -> bool:
    """Publish a received slice or replica (already fsynced in `slice_work`) with its metadata,
    unless this target holds a newer generation of the object; then both work files go. The
    caller serializes writers of one object."""
    current = read_meta(paths.meta)
    if current is not None and current.generation > meta.generation:
        fsmeta.unlink_quiet(slice_work)
        return False
    fsmeta.ensure_parent(paths.slice)
    os.rename(slice_work, paths.slice)
    write_meta(paths, meta_work, meta, fsync)
    return True


def remove(paths: EcPaths, below: int = 0) -> bool:
    """Remove the slice (or replica) and the metadata; with `below`, only a generation older
    than it. True if there was anything."""
    if below:
        current = read_meta(paths.meta)
        if current is not None and current.generation >= below:
            return False
    found = fsmeta.remove_object(paths.slice, paths.slice_root)
    return fsmeta.remove_object(paths.meta, paths.meta_root) or found


def open_slice(paths: EcPaths) -> tuple[Any, EcMeta] | None:
    """The slice file, open, with its metadata (None if either is missing)."""
    meta = read_meta(paths.meta)
    if meta is None or meta.role == ROLE_MAIN:
        return None
    try:
        f = open(paths.slice, "rb")  # noqa: SIM115 - the caller closes it
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return f, meta


def read_slice(paths: EcPaths) -> tuple[bytes, EcMeta] | None:
    opened = open_slice(paths)
    if opened is None:
        return None
    f, meta = opened
    with f:
        return f.read(), meta
