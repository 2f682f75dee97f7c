"""S3 object operations on a target: the `/s3/<bucket>/<key>` requests a proxy streams here.

    GET     GetObject (one range, conditionals, `response-*` overrides); ListParts (?uploadId)
    HEAD    HeadObject
    PUT     PutObject (plain or aws-chunked); CopyObject (x-amz-copy-source);
            UploadPart (?partNumber&uploadId); UploadPartCopy
    POST    CreateMultipartUpload (?uploads); CompleteMultipartUpload (?uploadId)
    DELETE  DeleteObject (204 even when missing); AbortMultipartUpload (?uploadId)
    other object subresources (?acl, ?tagging, ...): NotImplemented

Objects are the native ones (same files, same metadata), so both APIs see the same data. The
S3 state lives in `ObjectMeta`: `md5` (the ETag of a single PUT or copy), `etag` (a multipart
upload's `md5-of-part-md5s-N`) and `s3_checksums` (`x-amz-checksum-<alg>` -> base64).

Custom metadata holds user metadata (`x-amz-meta-<name>`, stored as `<name>` lower-cased) and
the system headers S3 keeps per object (Content-Type, Content-Encoding, Content-Disposition,
Content-Language, Cache-Control, Expires) under reserved keys `s3:<header, lower-cased>`. A `:`
cannot occur in an `x-amz-meta-*` name (it is not an HTTP token character), so no user key
collides with them.

Multipart uploads use the native layout (`%mp/<upload id>/part.NNNNN`). Each part file carries
its MD5 and S3 checksums in the `user.ais.part` extended attribute, set before the part is
renamed into place; `upload.json` keeps the metadata and checksum algorithm given at creation.

Bodies arrive raw or `aws-chunked` (decoded in the same pool hop that hashes and writes them).
Signatures are the proxy's business: chunk signatures are not verified here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, AsyncIterator, BinaryIO, Callable, Mapping
from urllib.parse import quote
from xml.etree import ElementTree

import aiohttp
from aiohttp import web

from ais import apc, names
from ais.cmap import Node, bucket_id
from ais.errors import AisError, InvalidName, ObjectNotFound, RangeNotSatisfiable, ServiceUnavailable
from ais.httpdate import http_date
from ais.log import request_id
from ais.names import Bucket
from ais.s3 import sigv4
from ais.s3.checksums import (ALGORITHMS, Checksum, algorithm_from_header, check_content_md5, composite_checksum,
                              content_md5_digest, header_name, multipart_etag, normalize_algorithm,
                              part_md5_from_etag, verify_checksum)
from ais.s3.chunked import ChunkedDecoder, decoded_length as _decoded_length
from ais.s3.errors import (EntityTooSmall, InvalidArgument, InvalidBucketName, InvalidPart, InvalidPartOrder,
                           InvalidRange, InvalidRequest, MalformedXML, NoSuchKey, NoSuchUpload, PreconditionFailed,
                           S3Error, S3NotImplemented, error_class)
from ais.s3.web import COPY_SOURCE, element, parse_copy_source, read_xml, xml_response
from target import ec, mirror, rebalance, remote
from target.backends.base import RemoteAttrs
from target.context import CTX, TargetContext
from target.fs import meta as fsmeta
from target.fs.meta import ObjectMeta
from target.objects import (SMALL_OBJECT_BYTES, _UPLOAD_ID_RE, MetaOf, Received, _check_bid, _mpu_assemble, _mpu_create,
                            _mpu_dir, _mpu_load, batches, commit_object, mpu_uploads,
                            delete_object_everywhere, etag_of,
                            object_headers, parse_range, put_body, receive_body, redirect_if_not_owner, serve_file,
                            write_work)

SYSTEM_PREFIX = "s3:"
SYSTEM_HEADERS = ("Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control",
                  "Expires")
_SYSTEM_KEYS = {SYSTEM_PREFIX + h.lower(): h for h in SYSTEM_HEADERS}
META_PREFIX = "x-amz-meta-"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
MAX_USER_METADATA_BYTES = 2048
MIN_PART_BYTES = 5 << 20
MAX_PART_NUMBER = 10_000
MAX_LIST = 1000
PART_XATTR = "user.ais.part"
_NATIVE_PROPS = {"checksum", "version", "etag", "last-modified"}
# Object subresources AWS has and we do not: NotImplemented, never mistaken for a plain request.
_UNSUPPORTED = frozenset({"acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select", "select-type",
                          "attributes"})
_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
              "response-expires": "Expires", "response-cache-control": "Cache-Control",
              "response-content-disposition": "Content-Disposition",
              "response-content-encoding": "Content-Encoding"}
_COPY_CONDITIONS = {"x-amz-copy-source-if-match": "If-Match", "x-amz-copy-source-if-none-match": "If-None-Match",
                    "x-amz-copy-source-if-modified-since": "If-Modified-Since",
                    "x-amz-copy-source-if-unmodified-since": "If-Unmodified-Since"}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_COPY_RANGE = re.compile(r"bytes=([0-9]{1,19})-([0-9]{1,19})")
_XML_CODE = re.compile(rb"<Code>([^<]{1,64})</Code>")
_XML_MESSAGE = re.compile(rb"<Message>([^<]{0,1024})</Message>")


class MetadataTooLarge(S3Error):
    status = 400
    s3_code = "MetadataTooLarge"
    default_message = "Your metadata headers exceed the maximum allowed metadata size."


# --- 1. resolve -----------------------------------------------------------------------------------

def _resolve(request: web.Request) -> tuple[TargetContext, Bucket, str, Mapping[str, Any]]:
    """Bucket (the `ais://` bucket of that name, or the remote one the proxy names in
    `Ais-S3-Provider`), key and bucket props; S3 errors for bad names."""
    ctx = request.app[CTX]
    try:
        bck = names.make_bucket(request.match_info["bucket"], request.headers.get(apc.HDR_S3_PROVIDER, ""))
    except InvalidName as exc:
        raise InvalidBucketName(exc.message) from exc
    try:
        key = names.check_object_name(request.match_info["key"])
    except InvalidName as exc:
        raise InvalidArgument(exc.message) from exc
    props = ctx.bucket_props(bck)
    _refuse_unsupported(request.query)
    return ctx, bck, key, props


def _refuse_unsupported(query: Mapping[str, str]) -> None:
    found = _UNSUPPORTED.intersection(query)
    if found:
        raise S3NotImplemented(f"object subresource {sorted(found)[0]!r} is not implemented")
    version = query.get("versionId")
    if version is not None and version != "null":
        raise S3NotImplemented("object versions are not kept: only versionId=null is served")


def _no_such_key(key: str) -> NoSuchKey:
    return NoSuchKey(details={"Key": key})


def _rid() -> dict[str, str]:
    return {"x-amz-request-id": request_id.get()}


def _iso(ns: int) -> str:
    """ISO 8601 with milliseconds, as S3 XML documents carry times."""
    t = time.gmtime(ns // 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{(ns // 1_000_000) % 1000:03d}Z"


# --- metadata: request headers in, response headers out ---------------------------------------------

def _header_value(value: str) -> str:
    """aiohttp decodes header bytes as UTF-8 with surrogate escapes; a latin-1 value becomes latin-1 text."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _strip_aws_chunked(encoding: str) -> str:
    return ",".join(e.strip() for e in encoding.split(",") if e.strip() and e.strip().lower() != "aws-chunked")


def metadata_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Custom metadata from request (or peer response) headers: user metadata and system headers."""
    custom: dict[str, str] = {}
    user_bytes = 0
    for name, value in headers.items():
        low = name.lower()
        if low.startswith(META_PREFIX) and len(low) > len(META_PREFIX):
            key, value = low[len(META_PREFIX):], _header_value(value)
            custom[key] = f"{custom[key]},{value}" if key in custom else value  # repeats join, as in S3
            user_bytes += len(key) + len(value)
    if user_bytes > MAX_USER_METADATA_BYTES:
        raise MetadataTooLarge(details={"MaxSizeAllowed": str(MAX_USER_METADATA_BYTES)})
    for header in SYSTEM_HEADERS:
        value = headers.get(header, "")
        if header == "Content-Encoding":
            value = _strip_aws_chunked(value)
        if value:
            custom[SYSTEM_PREFIX + header.lower()] = _header_value(value)
    return custom


def s3_headers(ctx: TargetContext, bck: Bucket, key: str, mp: str, meta: ObjectMeta,
                checksum_mode: bool) -> dict[str, str]:
    """GET/HEAD headers: the native props, then S3's system headers, user metadata and checksums."""
    h = object_headers(ctx, bck, key, mp, meta, _NATIVE_PROPS)
    h["Accept-Ranges"] = "bytes"
    h["Content-Type"] = DEFAULT_CONTENT_TYPE
    h["x-amz-request-id"] = request_id.get()
    for k, v in meta.custom.items():
        if "\r" in v or "\n" in v:
            continue
        if k.startswith(SYSTEM_PREFIX):
            if k in _SYSTEM_KEYS:
                h[_SYSTEM_KEYS[k]] = v
        elif _TOKEN.fullmatch(k) and k not in remote.REMOTE_KEYS:
            h[META_PREFIX + k] = v
    if checksum_mode and meta.s3_checksums:
        h.update(meta.s3_checksums)
        composite = any("-" in v for v in meta.s3_checksums.values())
        h["x-amz-checksum-type"] = "COMPOSITE" if composite else "FULL_OBJECT"
    return h


def _checksum_mode(request: web.Request) -> bool:
    return request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


# --- conditionals and ranges --------------------------------------------------------------------------

def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    wanted = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    return etag in wanted


def _http_time_s(value: str | None) -> int | None:
    """Seconds since the epoch of an HTTP date; None when absent or unparseable (then ignored)."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def preconditions(headers: Mapping[str, str], etag: str, mtime_ns: int) -> int:
    """0 when the request may proceed, else 304 or 412, in RFC 7232 §6 order (which S3 follows):
    If-Match, else If-Unmodified-Since; then If-None-Match, else If-Modified-Since."""
    mtime_s = mtime_ns // 1_000_000_000
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            return 412
    elif (t := _http_time_s(headers.get("If-Unmodified-Since"))) is not None and mtime_s > t:
        return 412
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return 304
    elif (t := _http_time_s(headers.get("If-Modified-Since"))) is not None and mtime_s <= t:
        return 304
    return 0


def _check_preconditions(request: web.Request, meta: ObjectMeta, headers: dict[str, str]) -> web.Response | None:
    """A 304 to send, a PreconditionFailed to raise, or None to go on."""
    outcome = preconditions(request.headers, etag_of(meta), meta.mtime_ns)
    if outcome == 412:
        raise PreconditionFailed(details={"Condition": "If-Match/If-Unmodified-Since"})
    if outcome == 304:
        keep = ("ETag", "Last-Modified", "x-amz-request-id")
        return web.Response(status=304, headers={k: headers[k] for k in keep if k in headers})
    return None


def _override(query: Mapping[str, str], headers: dict[str, str]) -> None:
    """The `response-*` query parameters of GetObject, as the headers they name; a value that
    cannot be a header (CR/LF: header injection) is InvalidArgument, not a dropped connection."""
    for name, header in _OVERRIDES.items():
        if name in query:
            try:
                headers[header] = names.check_header_text(query[name], name)
            except AisError as exc:
                raise InvalidArgument(exc.message, details={"ArgumentName": name}) from None


def _range(header: str | None, size: int, headers: dict[str, str]) -> tuple[int, int, int]:
    """(status, offset, count) for a Range header; a malformed one is ignored, as S3 does.
    `headers` gets the Content-Range of a 206 and loses the whole-object checksums."""
    if header is None or not _RANGE.fullmatch(header.strip()):
        return 200, 0, size
    try:
        offset, count = parse_range(header, size)
    except RangeNotSatisfiable:
        raise InvalidRange(details={"RangeRequested": header, "ActualObjectSize": str(size)},
                           headers={"Content-Range": f"bytes */{size}"}) from None
    headers["Content-Range"] = f"bytes {offset}-{offset + count - 1}/{size}"
    for name in [h for h in headers if h.startswith("x-amz-checksum-")]:
        del headers[name]  # whole-object checksums do not describe a range
    return 206, offset, count


# --- GET / HEAD -----------------------------------------------------------------------------------------

def _open_for_get(path: str, small: int) -> tuple[ObjectMeta, bytes | None, BinaryIO | None] | None:
    """One hop: metadata, plus the content of a small object or the open file of a large one."""
    opened = fsmeta.open_object(path)
    if opened is None:
        return None
    f, meta = opened
    if meta.size > small:
        return meta, None, f
    with f:
        return meta, f.read(), None


async def get_object(request: web.Request) -> web.StreamResponse:
    # 1. resolve, 2. ownership, 3. subresources
    ctx, bck, key, props = _resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, key)) is not None:
        return r
    if "uploadId" in request.query:
        return await _list_parts(request, ctx, bck, key)
    if "partNumber" in request.query:
        raise S3NotImplemented("GetObject by partNumber is not implemented")
    if request.query.get("etl_name"):   # our extension: an inline transform, as on the native API
        from target.etl import inline  # the ETL package imports the object handlers
        return await inline.get_transformed(request, ctx, bck, key)
    # 4. metadata (and a small object's bytes) in one hop
    mp, path = ctx.mountpaths.object_path(bck, key)
    if not bck.is_ais:
        ctx.atimes[bck.object_uname(key)] = time.time_ns()   # for LRU
    opened = await ctx.mountpaths.run(mp, _open_for_get, path, SMALL_OBJECT_BYTES)
    if opened is None and await mirror.restore(ctx, bck, key, props):   # on another mountpath (target/mirror.py)
        opened = await ctx.mountpaths.run(mp, _open_for_get, path, SMALL_OBJECT_BYTES)
    if opened is None and await ec.restore_object(ctx, bck, key, props):   # from EC slices (target/ec.py)
        opened = await ctx.mountpaths.run(mp, _open_for_get, path, SMALL_OBJECT_BYTES)
    if opened is None and bck.is_ais and await rebalance.pull_from_neighbor(request, ctx, bck, key, props):
        opened = await ctx.mountpaths.run(mp, _open_for_get, path, SMALL_OBJECT_BYTES)   # not moved here yet
    if opened is None:
        if not bck.is_ais:
            return await _cold_get(request, ctx, bck, key, props)
        raise _no_such_key(key)
    meta, data, f = opened
    try:
        # 5. conditions, range, headers
        _check_bid(ctx, bck, key, meta)
        headers = s3_headers(ctx, bck, key, mp, meta, _checksum_mode(request))
        if (not_modified := _check_preconditions(request, meta, headers)) is not None:
            return not_modified
        _override(request.query, headers)
        status, offset, count = _range(request.headers.get("Range"), meta.size, headers)
        ctx.metrics.bytes_out.labels(verb="GET").inc(count)
        # 6. answer: bytes in hand, or sendfile
        if data is not None:
            return web.Response(status=status, body=data[offset:offset + count], headers=headers)
        assert f is not None
        return await serve_file(request, ctx, mp, f, status, headers, offset, count)
    finally:
        if f is not None:
            f.close()


def _remote_s3_headers(attrs: RemoteAttrs) -> dict[str, str]:
    """GET/HEAD headers of a remote object not (yet) in the cluster."""
    h = {"Accept-Ranges": "bytes", "Content-Type": DEFAULT_CONTENT_TYPE, "x-amz-request-id": request_id.get()}
    if attrs.etag:
        h["ETag"] = f'"{attrs.etag}"'
    if attrs.mtime_ns:
        h["Last-Modified"] = http_date(attrs.mtime_ns)
    for k, v in attrs.custom.items():
        if _TOKEN.fullmatch(k) and "\r" not in v and "\n" not in v:
            h[META_PREFIX + k] = v
    return h


async def _cold_get(request: web.Request, ctx: TargetContext, bck: Bucket, key: str,
                    props: Mapping[str, Any]) -> web.StreamResponse:
    """GetObject of a remote object the cluster lacks: fetched once, streamed meanwhile."""
    def range_of(attrs: RemoteAttrs, headers: dict[str, str]) -> tuple[int, int, int]:
        _override(request.query, headers)
        return _range(request.headers.get("Range"), attrs.size, headers)
    remote.admit_cold(ctx, bck, key)
    try:
        fetch = remote.cold_fetch(ctx, bck, key, props)
        return await remote.serve_cold(request, fetch, _remote_s3_headers, range_of)
    except ObjectNotFound:
        raise _no_such_key(key) from None


async def head_object(request: web.Request) -> web.StreamResponse:
    ctx, bck, key, props = _resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, key)) is not None:
        return r
    if "partNumber" in request.query:
        raise S3NotImplemented("HeadObject by partNumber is not implemented")
    mp, path = ctx.mountpaths.object_path(bck, key)
    meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None and await mirror.restore(ctx, bck, key, props):   # on another mountpath
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None and await ec.restore_object(ctx, bck, key, props):   # from EC slices (target/ec.py)
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)
    if meta is None and bck.is_ais and await rebalance.pull_from_neighbor(request, ctx, bck, key, props):
        meta = await ctx.mountpaths.run(mp, fsmeta.stat_object, path)   # not moved here yet
    if meta is None and not bck.is_ais:
        try:
            attrs = await (await ctx.backend(bck)).head_object(bck.name, key)
        except ObjectNotFound:
            raise _no_such_key(key) from None
        headers = _remote_s3_headers(attrs)
        status, _, count = _range(request.headers.get("Range"), attrs.size, headers)
        resp = web.Response(status=status, headers=headers)
        resp.headers["Content-Length"] = str(count)
        return resp
    if meta is None:
        raise _no_such_key(key)
    _check_bid(ctx, bck, key, meta)
    headers = s3_headers(ctx, bck, key, mp, meta, _checksum_mode(request))
    if (not_modified := _check_preconditions(request, meta, headers)) is not None:
        return not_modified
    status, _, count = _range(request.headers.get("Range"), meta.size, headers)
    resp = web.Response(status=status, headers=headers)
    resp.headers["Content-Length"] = str(count)
    return resp


# --- PUT: receive a body --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Body:
    """A body stored in a work file, validated."""

    size: int
    xxhash: str
    md5: str                                       # hex
    checksums: dict[str, str] = field(default_factory=dict)  # x-amz-checksum-<alg> -> base64




# Set by a proxy that verified the request's seed signature (it strips client-sent copies):
# the derived signing key (never the secret) lets the target check the chunk signatures.
HDR_SIGNING_KEY = "Ais-S3-Signing-Key"
HDR_SEED = "Ais-S3-Seed-Signature"
HDR_SCOPE = "Ais-S3-Scope"
HDR_AMZ_DATE = "Ais-S3-Amz-Date"


def _chunked_decoder(headers: Mapping[str, str]) -> ChunkedDecoder | None:
    """An aws-chunked decoder when the body is framed; it verifies chunk signatures when the
    proxy passed the signing key of a verified request."""
    mode = headers.get("x-amz-content-sha256", "")
    if mode not in sigv4.STREAMING_MODES:
        if "aws-chunked" not in headers.get("Content-Encoding", "").lower():
            return None
        mode = sigv4.STREAMING_UNSIGNED_TRAILER
    key_hex = headers.get(HDR_SIGNING_KEY, "")
    signing = None
    if key_hex and mode in (sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER):
        try:
            signing = bytes.fromhex(key_hex)
        except ValueError:
            raise InvalidArgument("malformed signing key from the proxy") from None
    return ChunkedDecoder(mode, seed_signature=headers.get(HDR_SEED) if signing else None, signing_key=signing,
                          amz_date=headers.get(HDR_AMZ_DATE, ""), scope=headers.get(HDR_SCOPE, ""),
                          declared_trailer=headers.get("x-amz-trailer"),
                          decoded_length=_decoded_length(headers.get("x-amz-decoded-content-length")))


def _payload_sha256(headers: Mapping[str, str]) -> str | None:
    """The declared SHA-256 of a non-streaming body (covered by the signature, when signed);
    InvalidArgument for a value that is no hash and no mode, anonymous requests included."""
    value = headers.get("x-amz-content-sha256")
    if value is None:
        return None
    value = value.strip()
    value = sigv4.check_payload_hash(value.lower() if len(value) == 64 else value)
    return value if len(value) == 64 else None


def _declared_checksums(headers: Mapping[str, str], required: str) -> list[tuple[Checksum, str | None]]:
    """Checksums to compute while writing: those sent as headers (with the value to verify), and
    those only named (`x-amz-checksum-algorithm`, `x-amz-sdk-checksum-algorithm`, the upload's
    algorithm) unless they come as aws-chunked trailers, which the decoder checks itself."""
    out: dict[str, tuple[Checksum, str | None]] = {}
    for name, value in headers.items():
        algorithm = algorithm_from_header(name)
        if algorithm is not None:
            out[algorithm] = (Checksum(algorithm), value)
    trailing = {algorithm_from_header(n) for n in headers.get("x-amz-trailer", "").split(",") if n.strip()}
    named = [headers.get("x-amz-checksum-algorithm", ""), headers.get("x-amz-sdk-checksum-algorithm", ""), required]
    for algorithm in {normalize_algorithm(n) for n in named if n}:
        if algorithm not in out and algorithm not in trailing:
            out[algorithm] = (Checksum(algorithm), None)
    return list(out.values())


def _receiver(headers: Mapping[str, str], required: str = "") -> tuple[Received, Callable[[Received], _Body]]:
    """How to receive an S3 body: a `Received` that decodes aws-chunked framing and computes
    xxhash, MD5 (the ETag), the declared S3 checksums and the SigV4 payload SHA-256 in the
    hops that write (one pass over each chunk, in the pool), and the check to run once it is
    all in: decoder trailers, payload hash, Content-MD5, checksum headers. A malformed
    Content-MD5 fails here, before the body is read."""
    content_md5 = headers.get("Content-MD5")
    if content_md5 is not None:
        content_md5_digest(content_md5)  # malformed: InvalidDigest before reading the body
    decoder = _chunked_decoder(headers)
    declared = _declared_checksums(headers, required)
    md5 = hashlib.md5(usedforsecurity=False)
    declared_sha = _payload_sha256(headers) if decoder is None else None
    sha = hashlib.sha256() if declared_sha else None
    extra: list[Any] = [md5, *(c for c, _ in declared)] + ([sha] if sha is not None else [])
    rec = Received(decode=None if decoder is None else decoder.feed, extra=extra)

    def check(rec: Received) -> _Body:
        if decoder is not None:
            decoder.finish()
        if sha is not None and declared_sha is not None:
            sigv4.check_payload_sha256_hex(declared_sha, sha.hexdigest())
        if content_md5 is not None:
            check_content_md5(content_md5, md5.digest())
        for checksum, expected in declared:
            if expected is not None:
                verify_checksum(checksum.algorithm, expected, checksum.digest())
        checksums = {c.header: c.b64digest() for c, _ in declared}
        if decoder is not None:
            checksums.update(decoder.trailers)
        return _Body(rec.size, rec.hasher.hexdigest(), md5.hexdigest(), checksums)

    return rec, check


async def _receive(request: web.Request, ctx: TargetContext, mp: str, work: str, required: str = "") -> _Body:
    """Stream the body (aws-chunked decoded) into `work` and check it (`_receiver`). On failure, no work file."""
    rec, check = _receiver(request.headers, required)
    await receive_body(request, ctx, mp, work, rec=rec)
    try:
        return check(rec)
    except BaseException:
        await asyncio.shield(ctx.mountpaths.run(mp, fsmeta.unlink_quiet, work))
        raise


async def put_object(request: web.Request) -> web.StreamResponse:
    # 1. resolve, 2. ownership, 3. which PUT
    ctx, bck, key, props = _resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, key)) is not None:
        return r
    if "uploadId" in request.query or "partNumber" in request.query:
        return await _upload_part(request, ctx, bck, key)
    if COPY_SOURCE in request.headers:
        return await _copy_object(request, ctx, bck, key, props)
    # 4. PutObject: receive and check the body, publish atomically (one pool hop for a small one)
    rec, meta_of = put_receiver(request.headers, props)
    _, meta = await put_body(request, ctx, bck, key, props, rec, meta_of)
    return web.Response(headers=put_answer(meta))


def put_receiver(headers: Mapping[str, str], props: Mapping[str, Any]) -> tuple[Received, MetaOf]:
    """PutObject's receiver (`_receiver`) and the metadata of what it received, once checked."""
    custom, bid = metadata_from_headers(headers), bucket_id(props)
    rec, check = _receiver(headers)

    def meta_of(rec: Received) -> ObjectMeta:
        body = check(rec)
        return ObjectMeta(size=body.size, cksum_type="xxhash", cksum_value=body.xxhash, custom=custom, bid=bid,
                          md5=body.md5, s3_checksums=body.checksums)

    return rec, meta_of


def put_answer(meta: ObjectMeta) -> dict[str, str]:
    """PutObject's answer headers."""
    return {"ETag": f'"{meta.md5}"', **meta.s3_checksums, **_rid()}


# --- copy -----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Source:
    """The (range of the) source object of a copy, being streamed."""

    chunks: AsyncIterator[bytes]
    length: int | None
    custom: dict[str, str]
    checksums: dict[str, str]    # whole-object checksums; empty for a range


def _copy_range(header: str | None, size: int) -> tuple[int, int]:
    """(offset, count) of `x-amz-copy-source-range: bytes=first-last` (both required, inside the object)."""
    if header is None:
        return 0, size
    m = _COPY_RANGE.fullmatch(header.strip())
    if m is None or int(m[1]) > int(m[2]) or int(m[2]) >= size:
        raise InvalidArgument(f"Range specified is not valid for source object of size: {size}",
                              details={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": header})
    return int(m[1]), int(m[2]) - int(m[1]) + 1


async def _read_range(ctx: TargetContext, mp: str, fd: int, offset: int, count: int) -> AsyncIterator[bytes]:
    while count > 0:
        chunk = await ctx.mountpaths.run(mp, os.pread, fd, min(1 << 20, count), offset)
        if not chunk:
            raise ConnectionResetError("the copy source shrank while being read")
        offset += len(chunk)
        count -= len(chunk)
        yield chunk


@contextlib.asynccontextmanager
async def _local_source(ctx: TargetContext, bck: Bucket, key: str, conditions: Mapping[str, str],
                        rng: str | None) -> AsyncIterator[_Source]:
    mp, path = ctx.mountpaths.object_path(bck, key)
    opened = await ctx.mountpaths.run(mp, fsmeta.open_object, path)
    if opened is None:
        raise _no_such_key(key)
    f, meta = opened
    try:
        _check_bid(ctx, bck, key, meta)
        if preconditions(conditions, etag_of(meta), meta.mtime_ns):
            raise PreconditionFailed(details={"Condition": "x-amz-copy-source-if-*"})
        offset, count = _copy_range(rng, meta.size)
        yield _Source(_read_range(ctx, mp, f.fileno(), offset, count), count, dict(meta.custom),
                      {} if rng else dict(meta.s3_checksums))
    finally:
        f.close()


async def _peer_error(resp: aiohttp.ClientResponse) -> S3Error:
    """A peer target's S3 error, re-raised under its own code (copy-source conditions: 412)."""
    if resp.status in (304, 412):
        return PreconditionFailed(details={"Condition": "x-amz-copy-source-if-*"})
    body = await resp.content.read(64 << 10)
    code, message = _XML_CODE.search(body), _XML_MESSAGE.search(body)
    err = error_class(code[1].decode() if code else "InternalError")(message[1].decode() if message else "")
    if type(err) is S3Error:
        err.status = resp.status
    return err


@contextlib.asynccontextmanager
async def _remote_source(ctx: TargetContext, owner: Node, bck: Bucket, key: str, conditions: Mapping[str, str],
                         rng: str | None) -> AsyncIterator[_Source]:
    """Stream the source from its owner's S3 GET: conditions, range and metadata travel as headers.

    The metadata is read back from the answer's headers, so a source stored without a
    Content-Type gets the default one (binary/octet-stream) stored explicitly on the copy.
    """
    if rng is not None and not _COPY_RANGE.fullmatch(rng.strip()):
        _copy_range(rng, 0)  # raises InvalidArgument
    headers = ctx.http.headers({**conditions, "x-amz-checksum-mode": "ENABLED"})
    if rng is not None:
        headers["Range"] = rng.strip()
    url = f"{owner.public_url}/s3/{quote(bck.name)}/{quote(key)}"
    try:
        async with ctx.http.session.get(url, headers=headers, timeout=ctx.http.data_timeout()) as resp:
            if resp.status == 416:
                raise InvalidArgument("Range specified is not valid for the source object",
                                      details={"ArgumentName": "x-amz-copy-source-range"})
            if resp.status not in (200, 206):
                raise await _peer_error(resp)
            if rng is not None:
                _check_peer_range(rng, resp.headers.get("Content-Range", ""))
            checksums = {} if rng else {n.lower(): v for n, v in resp.headers.items() if _is_checksum(n)}
            yield _Source(resp.content.iter_chunked(1 << 20), resp.content_length, metadata_from_headers(resp.headers),
                          checksums)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceUnavailable(f"reading the copy source from {owner.display} failed: {exc}") from exc


def _check_peer_range(rng: str, content_range: str) -> None:
    """A peer clips a range to the object; a copy range must lie inside it, or it is invalid."""
    m = _COPY_RANGE.fullmatch(rng.strip())
    assert m is not None, "validated before the request"
    served, _, total = content_range.removeprefix("bytes ").partition("/")
    if served != f"{int(m[1])}-{int(m[2])}":
        raise InvalidArgument(f"Range specified is not valid for source object of size: {total or '?'}",
                              details={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": rng})


def _is_checksum(header: str) -> bool:
    try:
        return algorithm_from_header(header) is not None
    except S3Error:
        return False


def _open_source(request: web.Request, ctx: TargetContext, source: tuple[Bucket, str],
                 rng: str | None) -> contextlib.AbstractAsyncContextManager[_Source]:
    """The copy source, local or on its owner, with the copy-source conditions applied."""
    bck, key = source
    ctx.bucket_props(bck)
    conditions = {std: request.headers[amz] for amz, std in _COPY_CONDITIONS.items() if amz in request.headers}
    owner = ctx.smap.owner(bck.object_uname(key))
    if owner is None:
        raise ServiceUnavailable("the cluster has no active targets")
    if owner.id == ctx.me.id:
        return _local_source(ctx, bck, key, conditions, rng)
    return _remote_source(ctx, owner, bck, key, conditions, rng)


async def _copy_into(request: web.Request, ctx: TargetContext, source: tuple[Bucket, str], mp: str, work: str,
                     rng: str | None) -> tuple[_Body, _Source]:
    """Stream the copy source into `work`, hashing it like a PUT body."""
    md5 = hashlib.md5(usedforsecurity=False)
    rec = Received(extra=[md5])
    async with _open_source(request, ctx, source, rng) as src:
        await write_work(ctx, mp, work, batches(src.chunks, ctx.cfg.target.write_buffer_bytes), rec,
                         expected_bytes=src.length)
    checksums = {k: v for k, v in src.checksums.items() if "-" not in v}  # composite ones describe parts
    return _Body(rec.size, rec.hasher.hexdigest(), md5.hexdigest(), checksums), src


async def _copy_object(request: web.Request, ctx: TargetContext, bck: Bucket, key: str,
                       props: Mapping[str, Any]) -> web.StreamResponse:
    """CopyObject: metadata directive COPY (the source's) or REPLACE (this request's)."""
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument("Unknown metadata directive.", details={"ArgumentName": "x-amz-metadata-directive"})
    source = parse_copy_source(request.headers[COPY_SOURCE])
    if source == (bck, key) and directive == "COPY":
        raise InvalidRequest("This copy request is illegal because it is trying to copy an object to itself "
                             "without changing the object's metadata, storage class, website redirect location "
                             "or encryption attributes.")
    replaced = metadata_from_headers(request.headers) if directive == "REPLACE" else None
    mp, _ = ctx.mountpaths.object_path(bck, key)
    work = ctx.mountpaths.work_path(mp)
    body, src = await _copy_into(request, ctx, source, mp, work, None)
    meta = ObjectMeta(size=body.size, cksum_type="xxhash", cksum_value=body.xxhash,
                      custom=src.custom if replaced is None else replaced, bid=bucket_id(props), md5=body.md5,
                      s3_checksums=body.checksums)
    meta = await commit_object(ctx, bck, key, mp, work, meta, props)
    return xml_response("CopyObjectResult", [element("LastModified", _iso(meta.mtime_ns)),
                                             element("ETag", f'"{body.md5}"')])


# --- multipart ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Upload:
    upload_id: str
    mp: str
    dir: str
    doc: Mapping[str, Any]   # upload.json

    @property
    def custom(self) -> dict[str, str]:
        return dict((self.doc.get("s3") or {}).get("custom") or {})

    @property
    def algorithm(self) -> str:
        return str((self.doc.get("s3") or {}).get("algorithm") or "")


@dataclass(frozen=True, slots=True)
class _Part:
    number: int
    size: int
    mtime_ns: int
    md5: str                                       # hex
    checksums: dict[str, str]


async def _require_upload(request: web.Request, ctx: TargetContext, bck: Bucket, key: str, upload_id: str) -> _Upload:
    if not _UPLOAD_ID_RE.fullmatch(upload_id):
        raise NoSuchUpload(details={"UploadId": upload_id})
    mp, d = _mpu_dir(ctx, bck, key, upload_id)
    doc = await ctx.mountpaths.run(mp, _mpu_load, d, bck.object_uname(key))
    if doc is None:   # during a rebalance: on its previous owner still?
        await rebalance.pull_upload(request, ctx, bck, key, upload_id)
        doc = await ctx.mountpaths.run(mp, _mpu_load, d, bck.object_uname(key))
    if doc is None:
        raise NoSuchUpload(details={"UploadId": upload_id})
    return _Upload(upload_id, mp, d, doc)


def _part_number(value: str | None) -> int:
    try:
        n = int(value or "")
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PART_NUMBER:
        raise InvalidArgument(f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
                              details={"ArgumentName": "partNumber", "ArgumentValue": str(value)})
    return n


def _publish_part(work: str, path: str, doc: Mapping[str, Any]) -> None:
    """Blocking: the part's MD5 and checksums go on the work file, then it is renamed into place."""
    os.setxattr(work, PART_XATTR, json.dumps(doc).encode())
    os.replace(work, path)


def _part_doc(path: str) -> dict[str, Any]:
    """Blocking: a part's stored MD5 and checksums; parts uploaded natively get their MD5 computed."""
    try:
        doc = json.loads(os.getxattr(path, PART_XATTR))
        return doc if isinstance(doc, dict) else {}
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
            raise
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return {"md5": md5.hexdigest()}


def _read_parts(d: str) -> dict[int, _Part] | None:
    """Blocking: the parts uploaded so far by number; None when the upload is gone."""
    parts: dict[int, _Part] = {}
    try:
        with os.scandir(d) as entries:
            for e in entries:
                digits = e.name[5:]
                if not e.name.startswith("part.") or not digits.isdigit():
                    continue
                st = e.stat()
                doc = _part_doc(e.path)
                parts[int(digits)] = _Part(int(digits), st.st_size, st.st_mtime_ns, str(doc.get("md5", "")),
                                           dict(doc.get("cks") or {}))
    except FileNotFoundError:
        return None
    return parts


async def _parts(ctx: TargetContext, up: _Upload) -> dict[int, _Part]:
    parts = await ctx.mountpaths.run(up.mp, _read_parts, up.dir)
    if parts is None:
        raise NoSuchUpload(details={"UploadId": up.upload_id})
    return parts


async def _create_upload(request: web.Request, ctx: TargetContext, bck: Bucket, key: str) -> web.StreamResponse:
    """CreateMultipartUpload: the metadata and checksum algorithm apply to the completed object."""
    custom = metadata_from_headers(request.headers)
    named = request.headers.get("x-amz-checksum-algorithm", "")
    algorithm = normalize_algorithm(named) if named else ""
    upload_id = os.urandom(16).hex()
    mp, d = _mpu_dir(ctx, bck, key, upload_id)
    await ctx.mountpaths.run(mp, _mpu_create, d, bck.object_uname(key),
                             {"s3": {"custom": custom, "algorithm": algorithm}})
    resp = xml_response("InitiateMultipartUploadResult", [element("Bucket", bck.name), element("Key", key),
                                                          element("UploadId", upload_id)])
    if algorithm:
        resp.headers["x-amz-checksum-algorithm"] = algorithm
    return resp


async def _upload_part(request: web.Request, ctx: TargetContext, bck: Bucket, key: str) -> web.StreamResponse:
    """UploadPart, or UploadPartCopy when `x-amz-copy-source` is set."""
    part = _part_number(request.query.get("partNumber"))
    up = await _require_upload(request, ctx, bck, key, request.query.get("uploadId", ""))
    work = ctx.mountpaths.work_path(up.mp)
    copying = COPY_SOURCE in request.headers
    if copying:
        source = parse_copy_source(request.headers[COPY_SOURCE])
        body, _ = await _copy_into(request, ctx, source, up.mp, work, request.headers.get("x-amz-copy-source-range"))
    else:
        body = await _receive(request, ctx, up.mp, work, up.algorithm)
    try:
        await ctx.mountpaths.run(up.mp, _publish_part, work, f"{up.dir}/part.{part:05d}",
                                 {"md5": body.md5, "cks": body.checksums})
    except FileNotFoundError:
        await ctx.mountpaths.run(up.mp, fsmeta.unlink_quiet, work)
        raise NoSuchUpload(details={"UploadId": up.upload_id}) from None
    if copying:
        return xml_response("CopyPartResult", [element("LastModified", _iso(time.time_ns())),
                                               element("ETag", f'"{body.md5}"')])
    return web.Response(headers={"ETag": f'"{body.md5}"', **body.checksums, **_rid()})


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One `<Part>` of a CompleteMultipartUpload document."""

    number: int
    etag: str
    checksums: dict[str, str]


def _parse_complete(doc: ElementTree.Element) -> list[_Wanted]:
    if _local_name(doc.tag) != "CompleteMultipartUpload":
        raise MalformedXML("expected a <CompleteMultipartUpload> document")
    wanted = []
    for el in doc:
        if _local_name(el.tag) != "Part":
            continue
        fields = {_local_name(c.tag): (c.text or "").strip() for c in el}
        try:
            number = int(fields["PartNumber"])
        except (KeyError, ValueError):
            raise MalformedXML("every <Part> needs an integer <PartNumber>") from None
        checksums = {header_name(n[8:]): v for n, v in fields.items()
                     if n.startswith("Checksum") and n[8:].upper() in ALGORITHMS}
        wanted.append(_Wanted(number, fields.get("ETag", ""), checksums))
    if not wanted or len(wanted) > MAX_PART_NUMBER:
        raise MalformedXML(f"CompleteMultipartUpload takes 1 to {MAX_PART_NUMBER} parts")
    return wanted


def _invalid_part(w: _Wanted) -> InvalidPart:
    return InvalidPart(details={"PartNumber": str(w.number), "ETag": w.etag})


def _choose_parts(wanted: list[_Wanted], parts: Mapping[int, _Part]) -> list[_Part]:
    """The listed parts, checked: ascending numbers, matching ETags (and checksums), all but the last >= 5 MiB."""
    chosen: list[_Part] = []
    for w in wanted:
        if chosen and w.number <= chosen[-1].number:
            raise InvalidPartOrder(details={"PartNumber": str(w.number)})
        part = parts.get(w.number)
        if part is None or not w.etag or part_md5_from_etag(w.etag).hex() != part.md5:
            raise _invalid_part(w)
        if any(part.checksums.get(h, v) != v for h, v in w.checksums.items()):
            raise _invalid_part(w)
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_BYTES:
            raise EntityTooSmall(details={"ProposedSize": str(part.size), "MinSizeAllowed": str(MIN_PART_BYTES),
                                          "PartNumber": str(part.number)})
    return chosen


def _composite(algorithm: str, parts: list[_Part]) -> dict[str, str]:
    """The object's COMPOSITE checksum when the upload named an algorithm and every part has it."""
    if not algorithm:
        return {}
    header = header_name(algorithm)
    values = [p.checksums.get(header) for p in parts]
    if not all(values):
        return {}
    return {header: composite_checksum(algorithm, [v for v in values if v])}


async def _complete_upload(request: web.Request, ctx: TargetContext, bck: Bucket, key: str,
                           props: Mapping[str, Any]) -> web.StreamResponse:
    # 1. the upload and the parts the client lists
    up = await _require_upload(request, ctx, bck, key, request.query.get("uploadId", ""))
    wanted = _parse_complete(await read_xml(request))
    chosen = _choose_parts(wanted, await _parts(ctx, up))
    # 2. concatenate into a work file, publish, drop the upload
    work = ctx.mountpaths.work_path(up.mp)
    try:
        size, digest = await ctx.mountpaths.run(up.mp, _mpu_assemble, up.dir, work, [p.number for p in chosen],
                                                ctx.cfg.target.fsync)
    except BaseException as exc:
        await asyncio.shield(ctx.mountpaths.run(up.mp, fsmeta.unlink_quiet, work))
        if isinstance(exc, FileNotFoundError):  # completed or aborted meanwhile
            raise NoSuchUpload(details={"UploadId": up.upload_id}) from exc
        raise
    etag = multipart_etag(bytes.fromhex(p.md5) for p in chosen)
    checksums = _composite(up.algorithm, chosen)
    meta = ObjectMeta(size=size, cksum_type="xxhash", cksum_value=digest, custom=up.custom, bid=bucket_id(props),
                      etag=etag, s3_checksums=checksums)
    await commit_object(ctx, bck, key, up.mp, work, meta, props)
    await ctx.mountpaths.run(up.mp, shutil.rmtree, up.dir, True)
    # 3. answer
    location = f"{request.scheme}://{request.host}/s3/{quote(bck.name)}/{quote(key)}"
    parts = [element("Location", location), element("Bucket", bck.name), element("Key", key),
             element("ETag", f'"{etag}"')]
    parts += [element("Checksum" + h.removeprefix("x-amz-checksum-").upper(), v) for h, v in checksums.items()]
    return xml_response("CompleteMultipartUploadResult", parts)


def _int_arg(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise InvalidArgument(f"{name} must be a non-negative integer", details={"ArgumentName": name,
                                                                                  "ArgumentValue": raw})
    return n


def _part_xml(p: _Part) -> str:
    checksums = "".join(element("Checksum" + h.removeprefix("x-amz-checksum-").upper(), v)
                        for h, v in sorted(p.checksums.items()))
    return ("<Part>" + element("PartNumber", p.number) + element("LastModified", _iso(p.mtime_ns))
            + element("ETag", f'"{p.md5}"') + element("Size", p.size) + checksums + "</Part>")


async def _list_parts(request: web.Request, ctx: TargetContext, bck: Bucket, key: str) -> web.StreamResponse:
    """ListParts, paged by `max-parts` and `part-number-marker`."""
    up = await _require_upload(request, ctx, bck, key, request.query.get("uploadId", ""))
    max_parts = min(_int_arg(request.query, "max-parts", MAX_LIST), MAX_LIST)
    marker = _int_arg(request.query, "part-number-marker", 0)
    after = [p for n, p in sorted((await _parts(ctx, up)).items()) if n > marker]
    page, truncated = after[:max_parts], len(after) > max_parts
    owner = "<ID>ais</ID><DisplayName>ais</DisplayName>"
    parts = [element("Bucket", bck.name), element("Key", key), element("UploadId", up.upload_id),
             f"<Initiator>{owner}</Initiator>", f"<Owner>{owner}</Owner>", element("StorageClass", "STANDARD"),
             element("PartNumberMarker", marker), element("NextPartNumberMarker", page[-1].number if page else marker),
             element("MaxParts", max_parts), element("IsTruncated", "true" if truncated else "false")]
    if up.algorithm:
        parts.append(element("ChecksumAlgorithm", up.algorithm))
    parts += [_part_xml(p) for p in page]
    return xml_response("ListPartsResult", parts)


async def _abort_upload(request: web.Request, ctx: TargetContext, bck: Bucket, key: str, upload_id: str) -> web.StreamResponse:
    up = await _require_upload(request, ctx, bck, key, upload_id)
    await ctx.mountpaths.run(up.mp, shutil.rmtree, up.dir, True)
    return web.Response(status=204, headers=_rid())


# --- DELETE / POST --------------------------------------------------------------------------------------

async def delete_object(request: web.Request) -> web.StreamResponse:
    """DeleteObject (204 whether or not it existed), or AbortMultipartUpload with ?uploadId."""
    ctx, bck, key, _ = _resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, key)) is not None:
        return r
    if "uploadId" in request.query:
        return await _abort_upload(request, ctx, bck, key, request.query["uploadId"])
    await rebalance.delete_at_neighbors(ctx, bck, key, request)   # copies not moved here yet (first: see objects.py)
    await delete_object_everywhere(ctx, bck, key)
    return web.Response(status=204, headers=_rid())


async def post_object(request: web.Request) -> web.StreamResponse:
    """CreateMultipartUpload (?uploads) or CompleteMultipartUpload (?uploadId)."""
    ctx, bck, key, props = _resolve(request)
    if (r := redirect_if_not_owner(request, ctx, bck, key)) is not None:
        return r
    if "uploads" in request.query:
        return await _create_upload(request, ctx, bck, key)
    if "uploadId" in request.query:
        return await _complete_upload(request, ctx, bck, key, props)
    raise S3NotImplemented("POST on an object takes ?uploads or ?uploadId")


# --- intra-cluster: in-progress uploads of a bucket, for ListMultipartUploads on the proxy ------------------

def _scan_uploads(root: str, uname_prefix: str, bucket_uname_len: int) -> list[dict[str, Any]]:
    """Blocking: uploads under one mountpath's `%mp` whose object uname starts with `uname_prefix`."""
    return [{"key": doc["uname"][bucket_uname_len:], "upload_id": upload_id, "initiated_ns": int(doc.get("created_ns", 0))}
            for upload_id, doc in mpu_uploads(root) if doc["uname"].startswith(uname_prefix)]


async def list_uploads(request: web.Request) -> web.StreamResponse:
    """`GET /v1/s3/uploads/{bucket}?prefix=`: JSON list of {key, upload_id, initiated_ns}."""
    ctx = request.app[CTX]
    q = request.query
    bck = names.make_bucket(request.match_info["bucket"], q.get("provider", ""), q.get("namespace", ""))
    prefix = bck.uname + q.get("prefix", "")
    mps = ctx.mountpaths
    found = await asyncio.gather(*(mps.run(mp, _scan_uploads, mps.mpu_dir(mp, ""), prefix, len(bck.uname))
                                   for mp in mps.paths))
    return web.json_response(sorted((u for per_mp in found for u in per_mp),
                                    key=lambda u: (u["key"], u["upload_id"])))
