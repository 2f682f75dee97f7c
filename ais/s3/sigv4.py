"""Parse and verify AWS Signature Version 4 the way S3 does; name SigV2 callers.

`parse()` turns a request (method, path and query exactly as sent, headers) into a
`SigV4Auth` (header or presigned), a `SigV2Auth` (access key only: SigV2 is not verified), or
None for an anonymous request. `verify()` then checks it against the caller's secret key.

The canonical request follows S3, not the generic SigV4 rules: the path is URI-encoded once
(never normalised or double-encoded), query names and values are URI-encoded and sorted,
header values are trimmed with inner whitespace collapsed, and a presigned request leaves
`X-Amz-Signature` out. The path and query are decoded and re-encoded (so `%7e`, `~` and
`%7E` all sign alike); a client that signed its own odd but literal encoding is accepted
too, because the signature covers exactly the bytes it sent.

The body is not covered here: `payload_hash` is what the client declared. For a plain hash
the handler must compare it with the body (`check_payload_sha256`); for `STREAMING-*` the
body goes through `ais.s3.chunked`, seeded with `signing_key()` and the request signature.
"""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_tz
from urllib.parse import quote, unquote_to_bytes

from ais.s3.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidArgument,
    InvalidRequest,
    RequestExpired,
    RequestTimeTooSkewed,
    S3Error,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_TRAILER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

MAX_SKEW_S = 15 * 60
MAX_PRESIGNED_EXPIRES_S = 7 * 24 * 3600

_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_DATE8 = re.compile(r"[0-9]{8}")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_EXPIRES = re.compile(r"[0-9]{1,12}")
_ENCODE_SAFE = "-_.~"  # RFC 3986 unreserved, the only characters SigV4 leaves as they are
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")


@dataclass(frozen=True, slots=True)
class SigV2Auth:
    """A SigV2 request (`Authorization: AWS AK:sig` or `?AWSAccessKeyId=`): who, not proof."""

    access_key: str
    signature: str
    is_presigned: bool


@dataclass(frozen=True, slots=True)
class SigV4Auth:
    """A parsed SigV4 request: the credential, the claimed signature, and the request
    parts the canonical request is built from."""

    access_key: str
    date: str                              # YYYYMMDD, from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str                         # lowercase hex
    amz_date: str                          # YYYYMMDDTHHMMSSZ, the signing time
    payload_hash: str                      # hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-*
    expires_s: int | None                  # presigned only
    is_presigned: bool
    session_token: str | None
    method: str
    raw_path: str
    raw_query: str
    header_values: tuple[tuple[str, str | None], ...]  # signed header → value, None if absent

    @property
    def scope(self) -> str:
        """The credential scope: `YYYYMMDD/region/s3/aws4_request`."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @property
    def is_streaming(self) -> bool:
        """The body is `aws-chunked` and must go through `ais.s3.chunked`."""
        return self.payload_hash in STREAMING_MODES


def split_target(target: str) -> tuple[str, str]:
    """The raw path and raw query of a request target as sent (`/b/k?x=1`)."""
    path, _, query = target.partition("?")
    return path, query


# Parsing ----------------------------------------------------------------------------------

def parse(method: str, raw_path: str, raw_query: str,
          headers: Mapping[str, str]) -> SigV4Auth | SigV2Auth | None:
    """Who signed this request and how; None when anonymous. Malformed auth raises."""
    lowered = _lower_headers(headers)
    authorization = lowered.get("authorization", [""])[0].strip()
    query = _query_dict(raw_query)
    if authorization and ("X-Amz-Algorithm" in query or "AWSAccessKeyId" in query):
        raise InvalidArgument("Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                              "parameter or the Authorization header should be specified.")
    if authorization:
        return _parse_header_auth(method, raw_path, raw_query, lowered, authorization)
    if "X-Amz-Algorithm" in query:
        return _parse_presigned(method, raw_path, raw_query, lowered, query)
    if "AWSAccessKeyId" in query:
        return SigV2Auth(query["AWSAccessKeyId"], query.get("Signature", ""), is_presigned=True)
    return None


def _parse_header_auth(method: str, raw_path: str, raw_query: str,
                       headers: dict[str, list[str]], authorization: str) -> SigV4Auth | SigV2Auth:
    scheme, _, rest = authorization.partition(" ")
    if scheme == "AWS":
        access_key, colon, signature = rest.strip().rpartition(":")
        if not colon or not access_key:
            raise AuthorizationHeaderMalformed("SigV2 Authorization must be 'AWS AccessKey:Signature'.")
        return SigV2Auth(access_key, signature, is_presigned=False)
    if scheme != ALGORITHM:
        raise InvalidArgument(f"Unsupported Authorization Type {scheme!r}.")
    fields = _auth_fields(rest)
    access_key, date, region, service = _parse_credential(fields["Credential"], AuthorizationHeaderMalformed)
    amz_date = _header_amz_date(headers)
    if amz_date[:8] != date:
        raise AuthorizationHeaderMalformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    signed = _signed_header_names(fields["SignedHeaders"], AuthorizationHeaderMalformed)
    return SigV4Auth(
        access_key=access_key, date=date, region=region, service=service, signed_headers=signed,
        signature=fields["Signature"].lower(), amz_date=amz_date,
        payload_hash=_declared_payload_hash(headers), expires_s=None, is_presigned=False,
        session_token=_first(headers, "x-amz-security-token"), method=method.upper(),
        raw_path=raw_path, raw_query=raw_query, header_values=_signed_values(signed, headers))


def _auth_fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name.strip()] = value.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        raise AuthorizationHeaderMalformed(f"The authorization header is malformed; missing {', '.join(missing)}.")
    return fields


def _parse_credential(credential: str, error: type[S3Error]) -> tuple[str, str, str, str]:
    """`AK/YYYYMMDD/region/service/aws4_request` → (access key, date, region, service)."""
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not parts[0] or parts[4] != "aws4_request":
        raise error(f"The credential {credential!r} is malformed; expected "
                    "'<AccessKey>/<YYYYMMDD>/<region>/s3/aws4_request'.")
    access_key, date, region, service, _ = parts
    if not _DATE8.fullmatch(date):
        raise error(f"Invalid credential date {date!r}.")
    if service != "s3":
        raise error(f"The credential is for service {service!r}; expecting 's3'.")
    return access_key, date, region, service


def _signed_header_names(value: str, error: type[S3Error]) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(";") if name.strip())
    if "host" not in names:
        raise error("SignedHeaders must include 'host'.")
    return names


def _header_amz_date(headers: dict[str, list[str]]) -> str:
    """The signing time: `x-amz-date`, else the `Date` header; both absent → AccessDenied."""
    amz = _first(headers, "x-amz-date")
    if amz is not None:
        if _parse_amz_date(amz) is None:
            raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
        return amz
    http_date = _first(headers, "date")
    parsed = parsedate_tz(http_date) if http_date else None
    if parsed is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    epoch = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    return time.strftime(_AMZ_DATE_FORMAT, time.gmtime(epoch))


def _declared_payload_hash(headers: dict[str, list[str]]) -> str:
    value = _first(headers, "x-amz-content-sha256")
    if value is None:
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    return check_payload_hash(value)


def check_payload_hash(value: str) -> str:
    """`value` if it is a valid `x-amz-content-sha256`; InvalidArgument (400) otherwise, as S3 answers."""
    if value == UNSIGNED_PAYLOAD or value in STREAMING_MODES or _SHA256_HEX.fullmatch(value):
        return value
    raise InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* mode, or "
                          "a valid sha256 value.")


def _parse_presigned(method: str, raw_path: str, raw_query: str, headers: dict[str, list[str]],
                     query: dict[str, str]) -> SigV4Auth:
    err = AuthorizationQueryParametersError
    missing = [n for n in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                           "X-Amz-Signature") if not query.get(n)]
    if missing:
        raise err(f"Query-string authentication version 4 requires {', '.join(missing)}.")
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise err(f"X-Amz-Algorithm only supports {ALGORITHM!r}.")
    access_key, date, region, service = _parse_credential(query["X-Amz-Credential"], err)
    amz_date = query["X-Amz-Date"]
    if _parse_amz_date(amz_date) is None or amz_date[:8] != date:
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\" and match "
                  "the credential date.")
    signed = _signed_header_names(query["X-Amz-SignedHeaders"], err)
    payload_hash = check_payload_hash(query.get("X-Amz-Content-Sha256", UNSIGNED_PAYLOAD))
    return SigV4Auth(
        access_key=access_key, date=date, region=region, service=service, signed_headers=signed,
        signature=query["X-Amz-Signature"].lower(), amz_date=amz_date, payload_hash=payload_hash,
        expires_s=_presigned_expires(query["X-Amz-Expires"]), is_presigned=True,
        session_token=query.get("X-Amz-Security-Token"), method=method.upper(),
        raw_path=raw_path, raw_query=raw_query, header_values=_signed_values(signed, headers))


def _presigned_expires(value: str) -> int:
    if not _EXPIRES.fullmatch(value):
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 1:
        raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGNED_EXPIRES_S:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is, the given X-Amz-Expires "
            "must be less than 604800 seconds")
    return expires


# Verification -----------------------------------------------------------------------------

def verify(auth: SigV4Auth, secret_key: str, now: float | None = None) -> None:
    """Check the request time and signature; raises RequestTimeTooSkewed (header auth),
    RequestExpired/AccessDenied (presigned) or SignatureDoesNotMatch."""
    _check_time(auth, time.time() if now is None else now)
    missing = [name for name, value in auth.header_values if value is None]
    if missing:
        raise SignatureDoesNotMatch(f"The signed header(s) {', '.join(missing)} are missing from "
                                    "the request.")
    if not _SHA256_HEX.fullmatch(auth.signature):  # also keeps compare_digest to ASCII
        raise SignatureDoesNotMatch("The signature must be 64 hexadecimal digits.")
    key = signing_key(secret_key, auth.date, auth.region, auth.service)
    candidates = [canonical_request(auth)]
    if hmac.compare_digest(_hmac_hex(key, string_to_sign(auth, candidates[0])), auth.signature):
        return
    literal = canonical_request(auth, literal=True)   # only for clients that sign a non-canonical encoding
    if literal != candidates[0]:
        candidates.append(literal)
        if hmac.compare_digest(_hmac_hex(key, string_to_sign(auth, literal)), auth.signature):
            return
    raise SignatureDoesNotMatch(details={
        "AWSAccessKeyId": auth.access_key, "StringToSign": string_to_sign(auth, candidates[0]),
        "SignatureProvided": auth.signature, "CanonicalRequest": candidates[0]})


def _check_time(auth: SigV4Auth, now: float) -> None:
    signed_at = _parse_amz_date(auth.amz_date)
    assert signed_at is not None, "parse() validated amz_date"
    if auth.expires_s is None:
        if abs(now - signed_at) > MAX_SKEW_S:
            raise RequestTimeTooSkewed(details={
                "RequestTime": auth.amz_date,
                "ServerTime": time.strftime(_AMZ_DATE_FORMAT, time.gmtime(now)),
                "MaxAllowedSkewMilliseconds": str(MAX_SKEW_S * 1000)})
        return
    if signed_at - now > MAX_SKEW_S:
        raise AccessDenied("Request is not valid yet")
    if now > signed_at + auth.expires_s:
        raise RequestExpired(details={
            "Expires": time.strftime(_AMZ_DATE_FORMAT, time.gmtime(signed_at + auth.expires_s)),
            "ServerTime": time.strftime(_AMZ_DATE_FORMAT, time.gmtime(now))})


def canonical_request(auth: SigV4Auth, *, literal: bool = False) -> str:
    """The SigV4 canonical request. `literal` keeps the path and query pairs exactly as
    sent (only sorted), for clients that sign their own, non-canonical, encoding."""
    path = auth.raw_path or "/"
    query = _canonical_query(auth.raw_query, auth.is_presigned, literal)
    headers = "".join(f"{name}:{value}\n" for name, value in auth.header_values)
    return "\n".join([auth.method, path if literal else _uri_encode(path, "/"), query, headers,
                      ";".join(auth.signed_headers), auth.payload_hash])


def string_to_sign(auth: SigV4Auth, canonical: str) -> str:
    digest = hashlib.sha256(_utf8(canonical)).hexdigest()
    return "\n".join([ALGORITHM, auth.amz_date, auth.scope, digest])


@functools.lru_cache(maxsize=1024)
def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    """`kSigning` = HMAC chain over date, region, service and "aws4_request" (memoised: it
    changes once a day per key, and four HMACs per request showed in profiles)."""
    key = _utf8("AWS4" + secret_key)
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, _utf8(part), hashlib.sha256).digest()
    return key


def chunk_signature(key: bytes, amz_date: str, scope: str, previous_signature: str,
                    chunk_sha256_hex: str) -> str:
    """The signature of one `aws-chunked` chunk, chained from the previous one (the first
    chunk chains from the request's own signature, the "seed")."""
    return _hmac_hex(key, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous_signature,
                                     EMPTY_SHA256, chunk_sha256_hex]))


def trailer_signature(key: bytes, amz_date: str, scope: str, previous_signature: str,
                      trailer_sha256_hex: str) -> str:
    """The `x-amz-trailer-signature`, chained from the final (zero-size) chunk's signature
    over the SHA-256 of the trailers as `name:value\\n` lines."""
    return _hmac_hex(key, "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous_signature,
                                     trailer_sha256_hex]))


def check_payload_sha256(auth: SigV4Auth, actual_sha256_hex: str) -> None:
    """For a body sent with a plain hex `x-amz-content-sha256`: did it arrive intact?"""
    if _SHA256_HEX.fullmatch(auth.payload_hash) and not hmac.compare_digest(auth.payload_hash,
                                                                        actual_sha256_hex):
        raise XAmzContentSHA256Mismatch(details={"ClientComputedContentSHA256": auth.payload_hash,
                                                 "S3ComputedContentSHA256": actual_sha256_hex})


# Query and encoding helpers ---------------------------------------------------------------

def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Query pairs decoded as `verify()` reads them (`+` is a space; no `=` means "")."""
    pairs = []
    for raw_name, raw_value in _raw_pairs(raw_query):
        pairs.append((_decode(raw_name), _decode(raw_value)))
    return pairs


def _raw_pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _decode(raw: str) -> str:
    return unquote_to_bytes(_utf8(raw.replace("+", " "))).decode("utf-8", "surrogateescape")


def _uri_encode(text: str, extra_safe: str = "") -> str:
    """SigV4 UriEncode of an already percent-encoded string: decode, then encode every byte
    outside the unreserved set (and `extra_safe`), uppercase hex."""
    if _UNRESERVED.fullmatch(text) or (extra_safe == "/" and _UNRESERVED_PATH.fullmatch(text)):
        return text   # nothing to decode or encode (most keys)
    return quote(unquote_to_bytes(_utf8(text)), safe=_ENCODE_SAFE + extra_safe)


def _canonical_query(raw_query: str, presigned: bool, literal: bool) -> str:
    pairs = []
    for raw_name, raw_value in _raw_pairs(raw_query):
        if presigned and _decode(raw_name) == "X-Amz-Signature":
            continue
        if literal:
            pairs.append((raw_name, raw_value))
        else:
            pairs.append((_uri_encode(raw_name.replace("+", " ")), _uri_encode(raw_value.replace("+", " "))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _query_dict(raw_query: str) -> dict[str, str]:
    """First value of each decoded query name, for the auth parameters."""
    found: dict[str, str] = {}
    for name, value in parse_query(raw_query):
        found.setdefault(name, value)
    return found


def _lower_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Name → every value, lowercased names; `items()` so a multidict keeps its repeats."""
    lowered: dict[str, list[str]] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), []).append(value)
    return lowered


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0].strip() if values else None


def _signed_values(signed: tuple[str, ...],
                   headers: dict[str, list[str]]) -> tuple[tuple[str, str | None], ...]:
    """Each signed header's canonical value: repeats joined by ",", each trimmed with runs
    of whitespace collapsed to one space."""
    out: list[tuple[str, str | None]] = []
    for name in signed:
        values = headers.get(name)
        out.append((name, ",".join(" ".join(v.split()) for v in values) if values else None))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _parse_amz_date(value: str) -> int | None:
    """Seconds since the epoch of an ISO 8601 basic timestamp; None if malformed. Cached: every
    request signed within the same second carries the same string, and strptime is slow."""
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:
        return calendar.timegm(time.strptime(value, _AMZ_DATE_FORMAT))
    except ValueError:
        return None


def _hmac_hex(key: bytes, message: str) -> str:
    return hmac.digest(key, _utf8(message), "sha256").hex()   # OpenSSL's one-shot HMAC


def _utf8(text: str) -> bytes:
    """Text as the bytes the client sent: aiohttp decodes header bytes that are not UTF-8 with
    `surrogateescape`, and a signature covers those bytes (strict UTF-8 would raise, a 500)."""
    return text.encode("utf-8", "surrogateescape")


# --- SigV2 (HMAC-SHA1): boto3 still presigns with it by default in us-east-1 -----------------

# Subresources that are part of a SigV2 canonical resource (as botocore's HmacV1Auth lists them).
_V2_SUBRESOURCES = frozenset({
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
    "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId",
    "response-content-type", "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "delete", "lifecycle", "tagging", "restore",
    "storageClass", "notification", "replication", "analytics", "metrics", "inventory", "select", "select-type",
    "object-lock"})


def _v2_resource(raw_path: str, raw_query: str) -> str:
    pairs = [p.split("=", 1) for p in raw_query.split("&") if p] if raw_query else []
    kept = sorted(((p[0], None if len(p) == 1 else unquote_to_bytes(p[1]).decode("utf-8", "replace"))
                   for p in pairs if p[0] in _V2_SUBRESOURCES), key=lambda kv: kv[0])
    if not kept:
        return raw_path
    return raw_path + "?" + "&".join(k if v is None else f"{k}={v}" for k, v in kept)


def _v2_paths(raw_path: str, mount: str) -> list[str]:
    """The resource paths a SigV2 signer may have used for this request.

    botocore signs the bucket/key path without the endpoint's own path prefix (our `/s3`),
    with a trailing slash for a bucket; others sign the path as sent. All name the same
    bucket or object, so accepting each widens nothing.
    """
    paths = [raw_path]
    if mount and raw_path.startswith(mount + "/"):
        inner = raw_path[len(mount):]
        paths.append(inner)
        if inner.count("/") == 1:  # a bucket: "/b" -> "/b/"
            paths.append(inner + "/")
    return paths


def verify_v2(auth: SigV2Auth, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
              secret_key: str, now: float | None = None, mount: str = "/s3") -> None:
    """Check a SigV2 signature (header `AWS AK:sig` or presigned `Signature`/`Expires`)."""
    now = time.time() if now is None else now
    lowered = _lower_headers(headers)
    query = _query_dict(raw_query)

    def first(name: str) -> str:
        if auth.is_presigned and name in query:
            return query[name]
        return lowered.get(name, [""])[0].strip()
    amz = {k: ",".join(v.strip() for v in vals) for k, vals in lowered.items() if k.startswith("x-amz-")}
    if auth.is_presigned:
        amz.update({k.lower(): v for k, v in query.items() if k.lower().startswith("x-amz-")})
        try:
            expires = int(query.get("Expires", ""))
        except ValueError:
            raise AccessDenied("Query-string authentication requires the Expires parameter") from None
        if now > expires:
            raise RequestExpired()
        date = str(expires)
    else:
        date = "" if "x-amz-date" in amz else first("date")
        stamp = parsedate_tz(date or amz.get("x-amz-date", ""))
        if stamp is None or abs(calendar.timegm(stamp[:9]) - (stamp[9] or 0) - now) > MAX_SKEW_S:
            raise RequestTimeTooSkewed()
    lines = [method.upper(), first("content-md5"), first("content-type"), date]
    lines += [f"{k}:{amz[k]}" for k in sorted(amz)]
    head = "\n".join(lines) + "\n"
    for path in _v2_paths(raw_path, mount):
        string_to_sign = head + _v2_resource(path, raw_query)
        expected = base64.b64encode(hmac.new(_utf8(secret_key), _utf8(string_to_sign), hashlib.sha1).digest())
        if hmac.compare_digest(expected, _utf8(auth.signature)):
            return
    raise SignatureDoesNotMatch(details={"StringToSign": head + _v2_resource(raw_path, raw_query)})


def check_payload_sha256_hex(declared: str, actual: str) -> None:
    """The body's SHA-256 must be the one the client declared (and signed)."""
    if not hmac.compare_digest(declared.lower(), actual.lower()):
        raise XAmzContentSHA256Mismatch(details={"ClientComputedContentSHA256": declared,
                                                 "S3ComputedContentSHA256": actual})
