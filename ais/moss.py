"""Batch-get ("moss", reference §7): the request model shared by proxies and targets.

A request names entries (objects, files inside shards, byte ranges) across buckets; the answer
is one archive with the entries in request order. This module parses and validates the JSON
request (every problem a 400 naming the field) and names archive members; the flow lives in
`proxy.moss` (pick the designated target, redirect) and `target.moss` (assemble).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from aiohttp import web

from ais import apc, hrw, names
from ais.cmap import ClusterMap, Node
from ais.errors import AisError, BadRequest
from ais.names import Bucket
from ais.web import ci_get, read_json

MISSING_DIR = "__404__"
MAX_BODY_BYTES = 64 << 20          # a 100,000-entry request is ~10 MiB of JSON
MAX_ENTRIES = 1_000_000

_MIMES = {".tar": ".tar", "tar": ".tar", "application/x-tar": ".tar",
          ".tgz": ".tgz", "tgz": ".tgz", ".tar.gz": ".tar.gz", "tar.gz": ".tar.gz", "application/gzip": ".tgz",
          ".tar.zst": ".tar.zst", "tar.zst": ".tar.zst", "application/zstd": ".tar.zst",
          ".zip": ".zip", "zip": ".zip", "application/zip": ".zip"}
CONTENT_TYPES = {".tar": "application/x-tar", ".tgz": "application/gzip", ".tar.gz": "application/gzip",
                 ".tar.zst": "application/zstd", ".zip": "application/zip"}

COLOC_NONE, COLOC_TARGET_AWARE = 0, 1

def normalize_mime(mime: str, field: str = "mime") -> str:
    """`""` -> ".tar"; "tgz" -> ".tgz"; ...; a 400 naming `field` for anything else."""
    if not mime:
        return ".tar"
    norm = _MIMES.get(mime.strip().lower())
    if norm is None:
        raise BadRequest(f"invalid {field} {mime!r}: expected one of .tar, .tgz, .tar.gz, .tar.zst, .zip")
    return norm


@dataclass(frozen=True, slots=True)
class BatchEntry:
    bck: Bucket
    obj: str
    archpath: str = ""
    start: int = 0
    length: int = 0          # 0: whole (start must be 0); > 0: exactly that many bytes; -1: from start to the end
    opaque: str = ""         # as sent (base64 text), echoed back in the multipart metadata

    @property
    def uname(self) -> str:
        return self.bck.object_uname(self.obj)

    @property
    def cname(self) -> str:
        cname = self.bck.object_cname(self.obj)
        return f"{cname}/{self.archpath}" if self.archpath else cname

    def member_name(self, onob: bool) -> str:
        """`<bucket>/<object>[/<archpath>]`, or without the bucket with `onob`."""
        name = self.obj if onob else f"{self.bck.name}/{self.obj}"
        return f"{name}/{self.archpath}" if self.archpath else name

    def missing_name(self, onob: bool) -> str:
        return f"{MISSING_DIR}/{self.member_name(onob)}"

    def resolve_range(self, size: int) -> tuple[int, int]:
        """(offset, count) of this entry within an object (or archived file) of `size` bytes."""
        if self.start == 0 and self.length == 0:
            return 0, size
        if self.start > size or (self.start == size and self.length > 0):
            raise RangeError(f"{self.cname}: range start {self.start} is beyond the end ({size} bytes)")
        count = size - self.start if self.length < 0 else self.length
        if self.start + count > size:
            raise RangeError(f"{self.cname}: range {self.start}+{self.length} is beyond the end ({size} bytes)")
        return self.start, count


class RangeError(AisError):
    status = 416
    code = "range-not-satisfiable"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    entries: tuple[BatchEntry, ...]
    mime: str = ".tar"
    coer: bool = False       # continue on error: missing entries become empty __404__/ members
    onob: bool = False       # member names without the bucket
    strm: bool = True        # stream the archive; False: multipart (metadata JSON, then the archive)
    coloc: int = COLOC_NONE

    @property
    def buckets(self) -> list[Bucket]:
        by_identity = {id(e.bck): e.bck for e in self.entries}   # entries share Bucket objects: hash few
        return list(dict.fromkeys(by_identity.values()))

    def to_wire(self) -> dict[str, Any]:
        """The JSON body (peers and tests); inverse of `parse_request`."""
        out = []
        for e in self.entries:
            d: dict[str, Any] = {"objname": e.obj, "bucket": e.bck.name, "provider": e.bck.provider}
            if not e.bck.namespace.is_global:
                d["uname"] = e.uname
            for key, val in (("archpath", e.archpath), ("start", e.start), ("length", e.length), ("opaque", e.opaque)):
                if val:
                    d[key] = val
            out.append(d)
        return {"in": out, "mime": self.mime, "coer": self.coer, "onob": self.onob, "strm": self.strm,
                "coloc": self.coloc}


def parse_coloc(raw: Any) -> int:
    """`1`, `"1"`, or Python 3.10's `str(IntEnum)` spelling `Colocation.TARGET_AWARE`."""
    if raw is None or raw == "":
        return COLOC_NONE
    text = str(raw)
    if text.startswith("Colocation."):
        text = {"Colocation.NONE": "0", "Colocation.TARGET_AWARE": "1",
                "Colocation.TARGET_AND_SHARD_AWARE": "2"}.get(text, text)
    if isinstance(raw, bool) or text not in ("0", "1", "2"):
        raise BadRequest(f"invalid coloc {raw!r}: expected 0 (none), 1 (target-aware) or 2 (shard-aware)")
    return int(text)


def _flag(body: Mapping[str, Any], key: str, default: bool) -> bool:
    raw = ci_get(body, key, default)
    if raw is None:
        return default
    if not isinstance(raw, bool):
        raise BadRequest(f"invalid {key!r}: expected true or false, got {raw!r}")
    return raw


def _int(get: Callable[..., Any], key: str, where: str) -> int:
    raw = get(key, 0)
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not -2**63 <= raw < 2**63:   # an int64, as in Go
        raise BadRequest(f"invalid {where}.{key} {raw!r:.40}: expected an integer (int64)")
    return raw


def parse_request(body: Any, default: Bucket | None = None, query_coloc: str = "") -> BatchRequest:
    """Validate a MossReq JSON body; every problem is a 400 naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("batch request must be a JSON object with a non-empty 'in' list")
    raw_in = ci_get(body, "in")
    if not isinstance(raw_in, list) or not raw_in:
        raise BadRequest("invalid 'in': expected a non-empty list of entries")
    if len(raw_in) > MAX_ENTRIES:
        raise BadRequest(f"invalid 'in': {len(raw_in)} entries, at most {MAX_ENTRIES} per request")
    buckets: dict[tuple[str, str], Bucket] = {}
    entries = []
    for i, d in enumerate(raw_in):
        where = f"in[{i}]"
        if not isinstance(d, dict):
            raise BadRequest(f"invalid {where}: expected an object with 'objname'")
        try:
            entries.append(_entry(d, where, default, buckets))
        except AisError as exc:   # InvalidName and friends: say which entry
            if where in exc.message:
                raise
            raise BadRequest(f"invalid {where}: {exc.message}") from exc
    coloc = parse_coloc(query_coloc) if query_coloc else parse_coloc(ci_get(body, "coloc"))
    mime = ci_get(body, "mime", "") or ""
    if not isinstance(mime, str):
        raise BadRequest(f"invalid 'mime' {mime!r}: expected a string such as .tar")
    return BatchRequest(tuple(entries), normalize_mime(mime), _flag(body, "coer", False), _flag(body, "onob", False),
                        _flag(body, "strm", True), coloc)


_ENTRY_KEYS = frozenset({"objname", "bucket", "provider", "uname", "archpath", "start", "length", "opaque"})
_PLAIN_KEYS = frozenset({"objname", "bucket", "provider"})


def _entry(d: Mapping[str, Any], where: str, default: Bucket | None,
           buckets: dict[tuple[str, str], Bucket]) -> BatchEntry:
    if len(d) == 3 and d.keys() == _PLAIN_KEYS:
        # {"objname", "bucket", "provider"}: what the SDK and ais.client send for a whole object
        obj, bname, prov = d["objname"], d["bucket"], d["provider"]
        if type(obj) is str and obj and type(bname) is str and bname and type(prov) is str:
            bck = buckets.get((bname, prov))
            if bck is None:
                bck = buckets[(bname, prov)] = names.make_bucket(bname, prov)
            return BatchEntry(bck, names.check_object_name(obj))
    if d.keys() <= _ENTRY_KEYS:
        # the usual spelling (the SDK's): plain lookups give what `ci_get` would, at a fraction of
        # its cost for absent keys (it scans every key for a case-insensitive match)
        return _entry_fields(d.get, where, default, buckets)
    return _entry_fields(lambda key, dflt=None: ci_get(d, key, dflt), where, default, buckets)


def _entry_fields(get: Callable[..., Any], where: str, default: Bucket | None,
                  buckets: dict[tuple[str, str], Bucket]) -> BatchEntry:
    uname = get("uname", "") or ""
    if uname:
        if not isinstance(uname, str):
            raise BadRequest(f"invalid {where}.uname {uname!r}")
        bck, obj = names.parse_uname_object(uname)
    else:
        obj = get("objname", "")
        if not isinstance(obj, str) or not obj:
            raise BadRequest(f"invalid {where}.objname: required, a non-empty string")
        names.check_object_name(obj)
        bname, prov = get("bucket", "") or "", get("provider", "") or ""
        if not isinstance(bname, str) or not isinstance(prov, str):
            raise BadRequest(f"invalid {where}.bucket/provider: expected strings")
        if bname:
            key = (bname, prov)
            bck_or_none = buckets.get(key)
            if bck_or_none is None:
                bck_or_none = buckets[key] = names.make_bucket(bname, prov)
            bck = bck_or_none
        elif default is not None:
            bck = default
        else:
            raise BadRequest(f"invalid {where}: no bucket (name one in the entry or in the path /v1/ml/moss/<bucket>)")
    archpath = get("archpath", "") or ""
    if not isinstance(archpath, str) or "\x00" in archpath or not names.is_utf8(archpath):
        raise BadRequest(f"invalid {where}.archpath {archpath!r:.200}: expected a UTF-8 string without NUL")
    start, length = _int(get, "start", where), _int(get, "length", where)
    if start < 0:
        raise BadRequest(f"invalid {where}.start {start}: must be >= 0")
    if length < -1:
        raise BadRequest(f"invalid {where}.length {length}: must be > 0, or -1 to read to the end")
    if start > 0 and length == 0:
        raise BadRequest(f"invalid {where}: start {start} needs a length (> 0, or -1 to read to the end)")
    opaque = get("opaque", "") or ""
    if not isinstance(opaque, str):
        raise BadRequest(f"invalid {where}.opaque: expected base64 text")
    return BatchEntry(bck, obj, archpath.lstrip("/") if archpath else "", start, length, opaque)


async def read_request(request: web.Request) -> BatchRequest:
    """The MossReq of `GET /v1/ml/moss[/<bucket>]` (a proxy's or a target's), validated; the path's
    bucket (with `provider` and `namespace` from the query) is the default of entries without one."""
    q = request.query
    default = None
    if request.match_info.get("bucket"):
        default = names.make_bucket(request.match_info["bucket"], q.get(apc.Q_PROVIDER, ""), q.get(apc.Q_NAMESPACE, ""))
    return parse_request(await read_json(request, MAX_BODY_BYTES), default, q.get("coloc", ""))


# --- HRW for a whole batch ------------------------------------------------------------------

def owners(smap: ClusterMap, unames: Sequence[str]) -> list[Node | None]:
    """`smap.owner(uname)` of every name (HRW over the active targets)."""
    candidates = [(t.id_digest, t) for t in smap.active_targets()]
    if not candidates:
        return [None] * len(unames)
    return list(hrw.choose_many(unames, candidates))
