"""Plain data the client returns and accepts: object properties, listing pages and entries,
job status, batch-get items and results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ais.names import Bucket

# list-objects flags (reference §2)
LS_CACHED = 1 << 0
LS_ARCH_DIR = 1 << 3
LS_NAME_ONLY = 1 << 4
LS_NAME_SIZE = 1 << 5

# list entry flags
ENTRY_IS_CACHED = 1 << 6
ENTRY_IN_ARCH = 1 << 7
ENTRY_IS_DIR = 1 << 8
ENTRY_IS_ARCHIVE = 1 << 9


@dataclass(frozen=True, slots=True)
class ObjectProps:
    """What GET, HEAD and PUT answers say about an object."""

    size: int = 0
    checksum_type: str = ""
    checksum_value: str = ""
    version: str = ""
    atime_ns: int = 0
    etag: str = ""
    present: bool = True
    location: str = ""
    custom: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, h: Mapping[str, str]) -> "ObjectProps":
        """From response headers (names lower-cased)."""
        custom: dict[str, str] = {}
        for kv in (h.get("ais-custom-md") or "").split(","):
            k, sep, v = kv.partition("=")
            if sep and k.strip():
                custom[k.strip()] = v.strip()
        atime = h.get("ais-atime") or "0"
        size = h.get("content-length") or "0"
        return cls(size=int(size) if size.isdigit() else 0,
                   checksum_type=h.get("ais-checksum-type", ""), checksum_value=h.get("ais-checksum-value", ""),
                   version=h.get("ais-version", ""), atime_ns=int(atime) if atime.isdigit() else 0,
                   etag=h.get("etag", "").strip('"'), present=h.get("ais-present", "true") != "false",
                   location=h.get("ais-location", ""), custom=custom)


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One listed object (only the properties asked for are filled in)."""

    name: str
    size: int = 0
    checksum: str = ""
    atime: str = ""
    version: str = ""
    location: str = ""
    custom: str = ""
    copies: int = 0
    flags: int = 0

    @property
    def is_cached(self) -> bool:
        return bool(self.flags & ENTRY_IS_CACHED)

    @property
    def in_archive(self) -> bool:
        return bool(self.flags & ENTRY_IN_ARCH)

    @property
    def is_dir(self) -> bool:
        return bool(self.flags & ENTRY_IS_DIR)


@dataclass(frozen=True, slots=True)
class ListPage:
    entries: list[ListEntry]
    continuation_token: str
    uuid: str


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job cluster-wide (wire: xaction status)."""

    id: str
    kind: str = ""
    error: str = ""
    end_time_ns: int = 0
    aborted: bool = False
    idle: bool = False

    @property
    def finished(self) -> bool:
        return self.end_time_ns != 0 or self.aborted

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "JobStatus":
        return cls(id=str(d.get("uuid") or ""), kind=str(d.get("kind") or ""), error=str(d.get("err") or ""),
                   end_time_ns=int(d.get("end_time") or 0), aborted=bool(d.get("aborted")),
                   idle=bool(d.get("is_idle")))


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One entry of a batch-get request: an object, a file inside a shard, or a byte range."""

    name: str
    bucket: Bucket | None = None     # None: the batch's default bucket
    archpath: str = ""
    offset: int = 0
    length: int = 0                  # 0: whole; -1: from offset to the end
    opaque: bytes = b""

    def __post_init__(self) -> None:
        if self.offset < 0 or self.length < -1:
            raise ValueError(f"invalid range offset={self.offset} length={self.length}")
        if self.offset and not self.length:
            raise ValueError("a nonzero offset needs a length (-1 reads to the end)")


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One result of a batch-get, in request order. `error` is set for a missing entry
    (only when the batch continues on errors); `data` is then empty."""

    item: BatchItem
    bucket: Bucket
    data: bytes
    error: str = ""

    @property
    def name(self) -> str:
        return self.item.name
