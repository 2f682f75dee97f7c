"""Bucket identity, name validation and unames (`provider/@ns/bucket/object`).

Validation is the first line of defence against path traversal: an object name that passes
`check_object_name` can never resolve outside its bucket directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ais import apc
from ais.errors import BadMessage, BadRequest, InvalidName

_BUCKET_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_NS_RE = re.compile(r"[A-Za-z0-9_.\-]{0,64}")


@dataclass(frozen=True, slots=True)
class Namespace:
    uuid: str = ""
    name: str = ""

    @property
    def uname(self) -> str:
        return f"@{self.uuid}#{self.name}"

    @property
    def is_global(self) -> bool:
        return not self.uuid and not self.name

    @classmethod
    def parse(cls, text: str) -> "Namespace":
        """Parse `@uuid#name` (the SDK's `Namespace.get_path()`); empty means global."""
        if not text or text in ("@#", "#"):
            return cls()
        if not text.startswith("@") or "#" not in text:
            raise InvalidName(f"invalid namespace {text!r}: expected '@uuid#name'")
        uuid, _, name = text[1:].partition("#")
        if not _NS_RE.fullmatch(uuid) or not _NS_RE.fullmatch(name):
            raise InvalidName(f"invalid namespace {text!r}")
        return cls(uuid, name)


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    provider: str = apc.PROVIDER_AIS
    namespace: Namespace = Namespace()

    @property
    def cname(self) -> str:
        """Display name the SDK's error parser recognises: `ais://name`."""
        scheme = apc.PROVIDER_SCHEME.get(self.provider, self.provider)
        if self.namespace.is_global:
            return f"{scheme}://{self.name}"
        return f"{scheme}://{self.namespace.uname}/{self.name}"

    @property
    def uname(self) -> str:
        """`provider/@uuid#ns/name/`, the prefix of every object's uname (reference §3.2)."""
        return f"{self.provider}/{self.namespace.uname}/{self.name}/"

    def object_uname(self, obj: str) -> str:
        return self.uname + obj

    def object_cname(self, obj: str) -> str:
        return f"{self.cname}/{obj}"

    @property
    def is_ais(self) -> bool:
        return self.provider == apc.PROVIDER_AIS

    def to_wire(self) -> dict[str, object]:
        return {"name": self.name, "provider": self.provider,
                "namespace": {"uuid": self.namespace.uuid, "name": self.namespace.name}}


def bucket_from_wire(d: Mapping[str, Any]) -> Bucket:
    """A bucket from its wire form `{"name", "provider", "namespace": {"uuid", "name"}}`."""
    ns = (d.get("namespace") or {}) if isinstance(d, Mapping) else None
    if not isinstance(d, Mapping) or not isinstance(ns, Mapping):
        raise BadMessage(f"expected a bucket {{name, provider, namespace: {{uuid, name}}}}, got {d!r:.200}")
    name, provider = d.get("name"), d.get("provider") or ""
    ns_uuid, ns_name = ns.get("uuid") or "", ns.get("name") or ""
    if not name or not isinstance(name, str) or not isinstance(provider, str) \
            or not isinstance(ns_uuid, str) or not isinstance(ns_name, str):
        raise BadMessage(f"expected a bucket {{name, provider, namespace: {{uuid, name}}}} of strings, got {d!r:.200}")
    return make_bucket(name, provider, f"@{ns_uuid}#{ns_name}" if ns_uuid or ns_name else "")


def normalize_provider(provider: str) -> str:
    try:
        return apc.PROVIDER_ALIASES[provider.lower()]
    except KeyError:
        raise InvalidName(f"unknown provider {provider!r}") from None


def check_bucket_name(name: str) -> str:
    if not _BUCKET_RE.fullmatch(name) or name in (".", ".."):  # fullmatch: `$` admits a final "\n"
        raise InvalidName(
            f"invalid bucket name {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return name


def make_bucket(name: str, provider: str = "", namespace: str = "") -> Bucket:
    return Bucket(check_bucket_name(name), normalize_provider(provider), Namespace.parse(namespace))


class BucketCache:
    """`make_bucket(name, provider)` for hot paths (the fast lanes): valid buckets built once;
    None for an invalid name or provider (the regular handler answers those)."""

    def __init__(self, limit: int = 4096) -> None:
        self._cache: dict[tuple[str, str], Bucket] = {}
        self._limit = limit

    def get(self, name: str, provider: str) -> Bucket | None:
        bck = self._cache.get((name, provider))
        if bck is None:
            try:
                bck = make_bucket(name, provider)
            except InvalidName:
                return None
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[(name, provider)] = bck
        return bck


def parse_uname_bucket(uname: str) -> Bucket:
    """Parse a bucket uname as sent in `bck_to`: `ais/@#/dst/` (trailing slash optional)."""
    parts = uname.strip("/").split("/")
    if len(parts) == 3:
        prov, ns, name = parts
    elif len(parts) == 2:
        (prov, name), ns = parts, ""
    else:
        raise InvalidName(f"invalid bucket uname {uname!r}: expected 'provider/@uuid#ns/bucket/'")
    return make_bucket(name, prov, ns)


def parse_uname_object(uname: str) -> tuple[Bucket, str]:
    """Parse an object uname as sent in `object_to`: `ais/@#/bucket/dir/obj`."""
    parts = uname.split("/", 3)
    if len(parts) != 4 or not parts[3]:
        raise InvalidName(f"invalid object uname {uname!r}: expected 'provider/@uuid#ns/bucket/object'")
    bck = make_bucket(parts[2], parts[0], parts[1])
    return bck, check_object_name(parts[3])


def check_object_name(name: str) -> str:
    """Reject names that could escape the bucket directory or break the on-disk layout."""
    if not name:
        raise InvalidName("object name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > apc.MAX_OBJ_NAME_BYTES:
        raise InvalidName(f"object name is longer than {apc.MAX_OBJ_NAME_BYTES} bytes")
    if "\x00" in name:
        raise InvalidName("object name contains a NUL byte")
    if not is_utf8(name):   # a lone surrogate from a JSON escape: no file name, no msgpack string
        raise InvalidName(f"object name {name!r:.200} is not valid UTF-8")
    if name.startswith("/"):
        raise InvalidName(f"object name {name!r} is an absolute path")
    for seg in name.split("/"):
        if seg in ("..", "."):
            raise InvalidName(f"object name {name!r} has a '{seg}' path segment")
        if seg == "":
            raise InvalidName(f"object name {name!r} has an empty path segment")
        if len(seg.encode("utf-8", "surrogatepass")) > 255:
            raise InvalidName(f"object name {name!r} has a path segment longer than 255 bytes")
    return name


def is_utf8(text: str) -> bool:
    """Text that encodes as UTF-8: no lone surrogates (JSON's `\\ud800`, or aiohttp's
    `surrogateescape` for header bytes that are not UTF-8)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def check_header_text(value: str, what: str) -> str:
    """A value that will be sent back in a response header (custom metadata, S3 `response-*`
    overrides): printable UTF-8, so the answer can be written at all (aiohttp refuses CR/LF in a
    header, and cannot encode a lone surrogate: the connection would just drop)."""
    if not is_utf8(value) or any(c < " " and c != "\t" or c == "\x7f" for c in value):
        raise BadRequest(f"invalid {what} {value!r:.200}: control characters and invalid UTF-8 are not allowed")
    return value


def check_prepend(prepend: Any) -> str:
    """A job's `prepend` (put in front of every destination name by copy and transform jobs): a
    string that keeps every name valid, so `a/` and `v2-` are fine and `../`, `/` or `a//` are not."""
    if prepend is None:
        return ""
    if not isinstance(prepend, str):
        raise BadMessage(f"'prepend' must be a string, got {prepend!r:.100}")
    if prepend:
        try:
            check_object_name(prepend + "x")
        except InvalidName as exc:
            raise InvalidName(f"invalid prepend {prepend!r:.200}: destination names would be invalid "
                              f"({exc.message})") from None
    return prepend


def prop_names(value: Any) -> set[str]:
    """The `props` of an intra-cluster listing request: a list of property names (None: none)."""
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise BadMessage(f"'props' must be a list of property names, got {value!r:.100}")
    return set(value)


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}


def parse_bool(value: str | None, what: str = "value") -> bool:
    """Go `strconv.ParseBool` forms (the SDK sends Python's `True`/`False`)."""
    if value is None or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise BadRequest(f"invalid boolean {value!r} for {what}")


def base36(n: int) -> str:
    """Lower-case base-36 of a non-negative int (AIStore's `utm` marker and ETag suffix)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
               "tib": 1 << 40}


def parse_size(text: str | None, what: str = "size") -> int:
    """A byte count: raw (`1048576`) or with a unit (`128k`, `4mb`, `1MiB`; binary multiples). 0 if empty."""
    raw = (text or "").strip().lower()
    if not raw:
        return 0
    digits = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(digits):].strip()
    try:
        value = float(digits)
    except ValueError:
        raise BadRequest(f"invalid {what} {text!r}: expected bytes, e.g. 1048576, 128k, 4MiB") from None
    # not `0 <= value`: NaN; the bound keeps inf (`1e400`) and sizes past an int64 (Go's) out
    if unit not in _SIZE_UNITS or not 0 <= value * _SIZE_UNITS[unit] < 2**63:
        raise BadRequest(f"invalid {what} {text!r}: expected bytes, e.g. 1048576, 128k, 4MiB")
    return int(value * _SIZE_UNITS[unit])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration_s(text: str) -> float:
    """A Go duration string (`2h0m`, `90s`, `500ms`, `0s`) in seconds; ValueError if malformed."""
    text = str(text).strip()
    if text in ("", "0"):
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)
