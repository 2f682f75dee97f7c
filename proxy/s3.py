"""The S3 front end at `/s3` on every proxy.

Bucket-level operations are served here (list buckets, create, head, delete, list objects
V1/V2 with delimiters, location, versioning, delete objects, list multipart uploads).
Object-level requests are reverse-proxied to the owning target and its answer streamed back
in constant memory: stock S3 clients (boto3, aws-cli) do not follow 307 redirects.
"""

from __future__ import annotations

import asyncio
import json
import base64
import binascii
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import web

from ais import apc, names
from ais.auth import Perm, Principal
from ais.errors import AisError, NotFound, ServiceUnavailable
from ais.log import request_id
from ais.names import Bucket
from ais.s3 import errors as s3e
from ais.s3 import sigv4
from ais.s3.web import COPY_SOURCE, MAX_XML_BYTES, element, parse_copy_source, read_xml, render_s3_error, xml_response
from ais.web import STREAMING, body_chunks, read_body
from proxy import relay
from proxy.buckets import PRIMARY, create_bucket, merged_page
from proxy.remote import bucket_params, remote_page
from proxy.context import CTX, ProxyContext

log = logging.getLogger(__name__)

MAX_KEYS = 1000
# Bucket subresources AWS has and we do not: answered NotImplemented, never misread as a listing.
_UNSUPPORTED_BUCKET_QUERIES = {"acl", "policy", "cors", "lifecycle", "tagging", "website", "logging", "replication",
                               "encryption", "notification", "object-lock", "ownershipControls", "publicAccessBlock",
                               "requestPayment", "accelerate", "analytics", "inventory", "metrics",
                               "intelligent-tiering", "versions", "policyStatus"}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "expect"}


_VHOST = "s3.vhost"  # request key: the bucket named by a virtual-host Host header


def _vhost_bucket(request: web.Request, domain: str) -> str | None:
    """`imgs` for `Host: imgs.s3.local[:port]` under domain `s3.local`; None otherwise."""
    if not domain:
        return None
    host = request.host.rsplit(":", 1)[0].lower() if not request.host.startswith("[") else ""
    suffix = "." + domain.lower().strip(".")
    if host.endswith(suffix) and len(host) > len(suffix):
        return host[: -len(suffix)]
    return None


def _bucket(request: web.Request) -> Bucket:
    name = request.get(_VHOST) or request.match_info["bucket"]
    try:
        return names.make_bucket(name)
    except AisError as exc:
        raise s3e.InvalidBucketName(exc.message) from exc


_REMOTE_ORDER = ("aws", "gcp", "azure")


def lookup(ctx: ProxyContext, bck: Bucket) -> Bucket | None:
    """The bucket an S3 name means: `ais://name` if it exists, else a remote bucket of that
    name already in bucket metadata (S3 names carry no provider)."""
    if ctx.bmd.get(bck) is not None:
        return bck
    for provider in _REMOTE_ORDER:
        remote = Bucket(bck.name, provider)
        if ctx.bmd.get(remote) is not None:
            return remote
    return None


def _existing(ctx: ProxyContext, bck: Bucket) -> Bucket:
    found = lookup(ctx, bck)
    if found is None:
        raise s3e.NoSuchBucket(f"The specified bucket does not exist: {bck.name}")
    return found


def _iso(ns: int) -> str:
    t = time.gmtime(ns // 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{(ns // 1_000_000) % 1000:03d}Z"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --- authentication ---------------------------------------------------------------------------

def secrets(ctx: ProxyContext) -> dict[str, str]:
    """Access key -> secret: keys managed with `ais s3 keys`, plus those in the config."""
    keys = dict(ctx.store.keys.keys) if ctx.store.keys else {}
    for entry in ctx.cfg.s3.access_keys:
        ak, _, sk = entry.partition(":")
        if ak and sk:
            keys.setdefault(ak, sk)
    return keys


def _mount(request: web.Request) -> str:
    if request.get(_VHOST):
        return ""
    return "/s3" if request.path == "/s3" or request.path.startswith("/s3/") else ""


def authenticate(request: web.Request, ctx: ProxyContext, perm: int, bck: Bucket | None = None) -> dict[str, str]:
    """Always parse SigV4 (header or presigned); verify it when the cluster has access keys or
    auth is on, then check that the key's user may do `perm` (on `bck`).

    Returns the headers that let the owning target verify aws-chunked chunk signatures of a
    verified request (the derived signing key, never the secret); empty otherwise.
    """
    raw_path, _, raw_query = request.raw_path.partition("?")
    auth = sigv4.parse(request.method, raw_path, raw_query, request.headers)
    keys = secrets(ctx)
    if not keys and ctx.gate is None:
        return {}  # anonymous access
    if auth is None:
        if ctx.gate is not None:
            raise s3e.Unauthenticated("Anonymous access is not allowed: authentication is on; "
                                      "sign requests with an access key (`ais s3 keys add`)")
        raise s3e.AccessDenied("Anonymous access is not allowed: this cluster has S3 access keys")
    secret = keys.get(auth.access_key)
    if secret is None:
        raise s3e.InvalidAccessKeyId("The AWS Access Key Id you provided does not exist in our records.")
    headers = _verify(request, auth, secret, raw_path, raw_query)
    request[_ACCESS_KEY] = auth.access_key
    if ctx.gate is not None:
        _authorize(ctx, auth.access_key, perm, bck)
    return headers


_ACCESS_KEY = "s3.access_key"   # of a verified request
_OBJECT_PERMS = {"GET": Perm.GET, "HEAD": Perm.HEAD_OBJECT, "PUT": Perm.PUT, "POST": Perm.PUT,
                 "DELETE": Perm.DELETE_OBJECT}


def _bucket_perm(method: str, q: Mapping[str, str]) -> int:
    if method == "PUT":
        return Perm.CREATE_BUCKET
    if method == "DELETE":
        return Perm.DESTROY_BUCKET
    if method == "POST":
        return Perm.DELETE_OBJECT   # DeleteObjects
    if method == "GET" and not ("location" in q or "versioning" in q):
        return Perm.LIST_OBJECTS
    return Perm.HEAD_BUCKET


def _authorize_copy_source(request: web.Request, ctx: ProxyContext) -> None:
    """CopyObject reads its source: the key's user needs GET there too."""
    if ctx.gate is None:
        return
    src = lookup(ctx, parse_copy_source(request.headers[COPY_SOURCE])[0])
    access_key = request.get(_ACCESS_KEY)
    if src is not None and access_key:
        _authorize(ctx, access_key, Perm.GET, src)


def _authorize(ctx: ProxyContext, access_key: str, perm: int, bck: Bucket | None) -> None:
    """The permission check of a verified key: as its bound user; a key from the config file
    (set by the operator, bound to nobody) may do anything."""
    binding = ctx.store.keys.bindings.get(access_key) if ctx.store.keys else None
    if binding is None:
        return
    principal = Principal.from_claims(binding, str(binding.get("tid") or ""))
    md = ctx.store.auth
    if principal.token_id and md is not None and md.is_revoked(principal.token_id):
        raise s3e.AccessDenied("the token this access key was made with has been revoked")
    principal.require(perm, ctx.smap.uuid, bck)   # Forbidden: rendered as AccessDenied


def _verify(request: web.Request, auth: sigv4.SigV4Auth | sigv4.SigV2Auth, secret: str,
            raw_path: str, raw_query: str) -> dict[str, str]:
    if isinstance(auth, sigv4.SigV4Auth):
        sigv4.verify(auth, secret)
        if auth.payload_hash in (sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER):
            key = sigv4.signing_key(secret, auth.date, auth.region, auth.service)
            return {"Ais-S3-Signing-Key": key.hex(), "Ais-S3-Seed-Signature": auth.signature,
                    "Ais-S3-Scope": auth.scope, "Ais-S3-Amz-Date": auth.amz_date}
        return {}
    # SigV2: boto3 still presigns with it by default
    sigv4.verify_v2(auth, request.method, raw_path, raw_query, request.headers, secret, mount=_mount(request))
    return {}


# --- service ----------------------------------------------------------------------------------

async def list_buckets(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    authenticate(request, ctx, Perm.LIST_BUCKETS)
    items = []
    for bck, props in sorted(ctx.bmd.buckets.items(), key=lambda kv: kv[0].name):
        if bck.namespace.is_global:
            created = int(str(props.get("created", "0")) or 0)
            items.append(f"<Bucket>{element('Name', bck.name)}{element('CreationDate', _iso(created))}</Bucket>")
    owner = "<Owner><ID>ais</ID><DisplayName>ais</DisplayName></Owner>"
    return xml_response("ListAllMyBucketsResult", [owner, "<Buckets>", *items, "</Buckets>"])


# --- bucket -----------------------------------------------------------------------------------

async def bucket_op(request: web.Request) -> web.StreamResponse:
    """Dispatch a bucket-level request by method and subresource."""
    ctx = request.app[CTX]
    q = request.query
    bck = _bucket(request)
    authenticate(request, ctx, _bucket_perm(request.method, q), bck)
    unsupported = _UNSUPPORTED_BUCKET_QUERIES.intersection(q)
    if unsupported:
        raise s3e.S3NotImplemented(f"bucket subresource {sorted(unsupported)[0]!r} is not implemented")
    method = request.method
    if method == "PUT":
        if "versioning" in q:
            raise s3e.S3NotImplemented("PutBucketVersioning is not implemented: object versions are not kept")
        return await _create(request, ctx, bck)
    if method == "HEAD":
        if lookup(ctx, bck) is None:
            raise s3e.NoSuchBucket()
        return web.Response(headers={"x-amz-bucket-region": "us-east-1", "x-amz-request-id": request_id.get()})
    if method == "DELETE":
        return await _delete_bucket(ctx, request, bck)
    if method == "POST" and "delete" in q:
        return await _delete_objects(request, ctx, _existing(ctx, bck))
    if method == "GET":
        bck = _existing(ctx, bck)
        if "location" in q:
            return xml_response("LocationConstraint", [])
        if "versioning" in q:
            return xml_response("VersioningConfiguration", [])
        if "uploads" in q:
            return await _list_uploads(request, ctx, bck)
        return await _list_objects(request, ctx, bck, v2=q.get("list-type") == "2")
    raise s3e.S3MethodNotAllowed(f"{method} is not allowed on a bucket")


async def _create(request: web.Request, ctx: ProxyContext, bck: Bucket) -> web.StreamResponse:
    await read_body(request, MAX_XML_BYTES)  # CreateBucketConfiguration (region): accepted, ignored
    if ctx.is_primary:
        try:
            await create_bucket(request.app[PRIMARY], bck, None)
        except AisError as exc:
            if exc.status == 409:
                raise s3e.BucketAlreadyOwnedByYou() from exc
            raise
    else:
        await _native_on_primary(ctx, "POST", bck, {"action": apc.ACT_CREATE_BCK})
    return web.Response(headers={"Location": f"/{bck.name}", "x-amz-request-id": request_id.get()})


async def _native_on_primary(ctx: ProxyContext, method: str, bck: Bucket, action: dict[str, Any]) -> None:
    url = f"{ctx.smap.primary.public_url}/v1/buckets/{bck.name}"
    try:
        await ctx.http.call(method, url, json_body=action, timeout_s=60)
    except AisError as exc:
        if exc.status == 409:
            raise s3e.BucketAlreadyOwnedByYou() from exc
        if exc.status == 404:
            raise s3e.NoSuchBucket() from exc
        raise


async def _delete_bucket(ctx: ProxyContext, request: web.Request, bck: Bucket) -> web.StreamResponse:
    if not _existing(ctx, bck).is_ais:
        raise s3e.S3MethodNotAllowed(f"{bck.name} is a remote bucket: it cannot be deleted through this cluster")
    if await merged_page(ctx, bck, "", "", 1, ["name"]):
        raise s3e.BucketNotEmpty()
    await _native_on_primary(ctx, "DELETE", bck, {"action": apc.ACT_DESTROY_BCK})
    return web.Response(status=204, headers={"x-amz-request-id": request_id.get()})


# --- list objects -----------------------------------------------------------------------------

def _max_keys(raw: str | None) -> int:
    if raw is None or raw == "":
        return MAX_KEYS
    try:
        n = int(raw)
    except ValueError:
        raise s3e.InvalidArgument(f"Provided max-keys not an integer or within integer range: {raw!r}") from None
    if n < 0:
        raise s3e.InvalidArgument("max-keys must not be negative")
    return min(n, MAX_KEYS)


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise s3e.InvalidArgument("The continuation token provided is incorrect") from None


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode("utf-8")).decode()


_AFTER_PREFIX = "\U0010ffff"  # sorts after every name that continues a common prefix


async def s3_listing(ctx: ProxyContext, bck: Bucket, prefix: str, delimiter: str, after: str,
                     max_keys: int) -> tuple[list[dict[str, Any]], list[str], bool, str]:
    """(contents, common prefixes, truncated, resume point) of one S3 listing page."""
    if not bck.is_ais:
        return await _remote_listing(ctx, bck, prefix, delimiter, after, max_keys)
    contents: list[dict[str, Any]] = []
    prefixes: list[str] = []
    resume = after
    props = ["name", "size", "etag", "last-modified"]
    while len(contents) + len(prefixes) < max_keys:
        want = max_keys - len(contents) - len(prefixes)
        page = await merged_page(ctx, bck, prefix, resume, min(want + 1, MAX_KEYS), props)
        if not page:
            return contents, prefixes, False, resume
        for e in page:
            name = e["n"]
            if len(contents) + len(prefixes) == max_keys:
                return contents, prefixes, True, resume
            cut = name.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                cp = name[:cut + len(delimiter)]
                prefixes.append(cp)
                resume = cp + _AFTER_PREFIX
                break  # re-list after the common prefix: the rest of the page is inside it
            contents.append(e)
            resume = name
    more = await merged_page(ctx, bck, prefix, resume, 1, ["name"]) if max_keys else []
    return contents, prefixes, bool(more), resume


async def _remote_listing(ctx: ProxyContext, bck: Bucket, prefix: str, delimiter: str, resume: str,
                          max_keys: int) -> tuple[list[dict[str, Any]], list[str], bool, str]:
    """A remote bucket's S3 page from backend pages. The resume point carries the backend's
    token, the entry to start from and the last common prefix (names come sorted, so a prefix
    split across backend pages is reported once)."""
    state = json.loads(resume) if resume.startswith("{") else {"t": "", "a": resume, "p": ""}
    token, after, last_cp = str(state.get("t", "")), str(state.get("a", "")), str(state.get("p", ""))
    contents: list[dict[str, Any]] = []
    prefixes: list[str] = []
    props = ["name", "size", "etag", "last-modified"]
    while True:
        page, next_token = await remote_page(ctx, bck, prefix, token, 1000, props, False)
        for i, e in enumerate(page):
            name = e["n"]
            if after and name <= after:
                continue
            cut = name.find(delimiter, len(prefix)) if delimiter else -1
            cp = name[:cut + len(delimiter)] if cut >= 0 else ""
            if cp and cp == last_cp:
                continue
            if len(contents) + len(prefixes) == max_keys:
                return contents, prefixes, True, json.dumps({"t": token, "a": page[i - 1]["n"] if i else after,
                                                             "p": last_cp})
            if cp:
                prefixes.append(cp)
                last_cp = cp
            else:
                contents.append(e)
        if not next_token:
            return contents, prefixes, False, ""
        token, after = next_token, ""


async def _list_objects(request: web.Request, ctx: ProxyContext, bck: Bucket, v2: bool) -> web.StreamResponse:
    q = request.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    enc = q.get("encoding-type", "")
    if enc and enc != "url":
        raise s3e.InvalidArgument(f"Invalid Encoding Method specified in Request: {enc!r}")
    max_keys = _max_keys(q.get("max-keys"))
    token = q.get("continuation-token", "")
    start = (_decode_token(token) if token else max(q.get("start-after", ""), "")) if v2 else q.get("marker", "")
    contents, cps, truncated, resume = await s3_listing(ctx, bck, prefix, delimiter, start, max_keys)

    def k(v: str) -> str:
        return quote(v, safe="/") if enc else v
    parts = [element("Name", bck.name), element("Prefix", k(prefix)), element("MaxKeys", max_keys)]
    if delimiter:
        parts.append(element("Delimiter", k(delimiter)))
    if enc:
        parts.append(element("EncodingType", enc))
    parts.append(element("IsTruncated", "true" if truncated else "false"))
    if v2:
        parts.append(element("KeyCount", len(contents) + len(cps)))
        if token:
            parts.append(element("ContinuationToken", token))
        if q.get("start-after"):
            parts.append(element("StartAfter", k(q["start-after"])))
        if truncated:
            parts.append(element("NextContinuationToken", _encode_token(resume)))
    else:
        parts.append(element("Marker", k(q.get("marker", ""))))
        if truncated:
            last = max([c["n"] for c in contents] + cps) if (contents or cps) else resume
            parts.append(element("NextMarker", k(last)))
    for e in contents:
        parts.append("<Contents>" + element("Key", k(e["n"])) + element("LastModified", _iso(e.get("lm", 0)))
                     + element("ETag", f'"{e.get("e", "")}"') + element("Size", e.get("s", 0))
                     + element("StorageClass", "STANDARD") + "</Contents>")
    for cp in cps:
        parts.append("<CommonPrefixes>" + element("Prefix", k(cp)) + "</CommonPrefixes>")
    return xml_response("ListBucketResult", parts)


# --- delete objects, multipart uploads ----------------------------------------------------------

async def _delete_objects(request: web.Request, ctx: ProxyContext, bck: Bucket) -> web.StreamResponse:
    doc = await read_xml(request)
    if _local(doc.tag) != "Delete":
        raise s3e.MalformedXML("expected a <Delete> document")
    quiet = any(_local(c.tag) == "Quiet" and (c.text or "").strip().lower() == "true" for c in doc)
    keys = [(o.findtext("{*}Key") or o.findtext("Key") or "") for o in doc if _local(o.tag) == "Object"]
    if not keys or len(keys) > 1000:
        raise s3e.MalformedXML("DeleteObjects takes 1 to 1000 keys")
    sem = asyncio.Semaphore(16)

    async def delete(key: str) -> tuple[str, str | None]:
        async with sem:
            try:
                names.check_object_name(key)
                owner = ctx.smap.owner(bck.object_uname(key))
                if owner is None:
                    raise ServiceUnavailable("no active targets")
                await ctx.http.call("DELETE", f"{owner.public_url}/v1/objects/{bck.name}/{quote(key)}",
                                    params=bucket_params(bck))
            except AisError as exc:
                if exc.status != 404:
                    return key, exc.message
            return key, None
    results = await asyncio.gather(*(delete(k) for k in keys))
    parts = []
    for key, err in results:
        if err is None and not quiet:
            parts.append(f"<Deleted>{element('Key', key)}</Deleted>")
        elif err is not None:
            parts.append(f"<Error>{element('Key', key)}{element('Code', 'InternalError')}"
                         f"{element('Message', err)}</Error>")
    return xml_response("DeleteResult", parts)


async def _list_uploads(request: web.Request, ctx: ProxyContext, bck: Bucket) -> web.StreamResponse:
    prefix = request.query.get("prefix", "")
    targets = ctx.smap.active_targets()
    results = await asyncio.gather(*(ctx.http.call_json("GET", f"{t.intra_url}/v1/s3/uploads/{bck.name}",
                                                        params={"prefix": prefix}) for t in targets))
    uploads = sorted((u for r in results for u in (r or [])), key=lambda u: (u["key"], u["upload_id"]))
    max_uploads = _max_keys(request.query.get("max-uploads"))
    key_marker = request.query.get("key-marker", "")
    uploads = [u for u in uploads if u["key"] > key_marker]
    truncated = len(uploads) > max_uploads
    uploads = uploads[:max_uploads]
    parts = [element("Bucket", bck.name), element("KeyMarker", key_marker), element("UploadIdMarker", ""),
             element("Prefix", prefix), element("MaxUploads", max_uploads),
             element("IsTruncated", "true" if truncated else "false")]
    if truncated and uploads:
        parts += [element("NextKeyMarker", uploads[-1]["key"]), element("NextUploadIdMarker", uploads[-1]["upload_id"])]
    for u in uploads:
        parts.append("<Upload>" + element("Key", u["key"]) + element("UploadId", u["upload_id"])
                     + element("Initiated", _iso(int(u.get("initiated_ns", 0))))
                     + element("StorageClass", "STANDARD") + "</Upload>")
    return xml_response("ListMultipartUploadsResult", parts)


# --- objects: reverse proxy to the owner --------------------------------------------------------

SMALL_BODY_BYTES = 256 << 10   # a request body up to this size is read whole and sent in one write


async def _body(request: web.Request) -> bytes | AsyncIterator[bytes] | None:
    """The body to forward: small ones whole (one write to the target with the headers, no
    per-chunk streaming machinery), larger ones streamed as the parser delivers them (no re-slicing)."""
    if not request.body_exists:
        return None
    size = request.content_length
    if size is not None and size <= SMALL_BODY_BYTES:
        try:
            return await request.content.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise s3e.IncompleteBody(f"the body ended after {len(exc.partial)} of {size} bytes") from exc
    return body_chunks(request)


async def object_op(request: web.Request) -> web.StreamResponse:
    """Stream the request to the owning target and its answer back (constant memory)."""
    # 1. request: bucket and key
    ctx = request.app[CTX]
    bck = _bucket(request)
    verified = authenticate(request, ctx, _OBJECT_PERMS.get(request.method, Perm.ADMIN), bck)
    if request.method == "PUT" and COPY_SOURCE in request.headers:   # CopyObject / UploadPartCopy
        _authorize_copy_source(request, ctx)
    bck = _existing(ctx, bck)
    ctx.limiter.check(bck, ctx.bmd.get(bck) or {}, request.method, len(ctx.smap.proxies))
    raw_path, _, raw_query = request.raw_path.partition("?")
    key = unquote(raw_path[1:]) if request.get(_VHOST) else _raw_key(raw_path, _mount(request))
    try:
        names.check_object_name(key)
    except AisError as exc:
        raise s3e.InvalidArgument(exc.message) from exc
    # 2. placement
    owner = ctx.smap.owner(bck.object_uname(key))
    if owner is None:
        raise ServiceUnavailable("the cluster has no active targets")
    # 3. forward: the body streams through, the answer streams back
    headers = {k: v for k, v in request.headers.items()
               if k.lower() not in _HOP_BY_HOP and not k.lower().startswith("ais-s3-")}  # never trust a client's
    headers.update(ctx.http.headers())
    headers.update(verified)
    headers[apc.HDR_SMAP_VER] = str(ctx.smap.version)   # the owner waits for this map if it lacks it
    if not bck.is_ais:
        headers[apc.HDR_S3_PROVIDER] = bck.provider
    data = await _body(request)
    if data is None:
        headers.pop("Content-Length", None)
    # targets serve the S3 object API at /s3, whichever mount the client used
    inner = f"/{bck.name}{raw_path}" if request.get(_VHOST) else raw_path[len(_mount(request)):]
    url = f"{owner.public_url}/s3{inner}" + (f"?{raw_query}" if raw_query else "")
    try:
        async with ctx.http.session.request(request.method, url, data=data, headers=headers,
                                            timeout=ctx.http.data_timeout(), allow_redirects=False,
                                            skip_auto_headers=("Content-Type", "User-Agent")) as up:
            resp = web.StreamResponse(status=up.status, reason=up.reason)
            for name, value in up.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("server", "date"):
                    resp.headers.add(name, value)
            await resp.prepare(request)
            request[STREAMING] = True
            if request.method != "HEAD" and not await relay.try_splice(request, up, ctx.relay_pool, ctx.cfg.timeouts.data_read_s):
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
            await resp.write_eof()
            return resp
    except (aiohttp.ClientError, TimeoutError) as exc:
        if request.get(STREAMING):
            raise ConnectionResetError(f"target {owner.display} failed mid-stream: {exc}") from exc
        raise ServiceUnavailable(f"target {owner.display} is unreachable: {exc}") from exc


def _raw_key(raw_path: str, mount: str) -> str:
    """The object key from the raw path (`<mount>/<bucket>/<key>`), percent-decoded once."""
    parts = raw_path[len(mount):].split("/", 2)
    return unquote(parts[2]) if len(parts) == 3 else ""


_RESERVED_AT_ROOT = {"v1", "metrics", "s3"}


def _s3_errors(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """S3 XML errors wherever the S3 API is mounted (at /s3 and at the root)."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        fn = handler
        vhost = _vhost_bucket(request, request.app[CTX].cfg.s3.virtual_host_domain)
        if vhost is not None:  # the Host names the bucket; the whole path is the key
            request[_VHOST] = vhost
            fn = bucket_op if request.path == "/" else object_op
        else:
            first = request.path.split("/", 2)[1]
            if first in _RESERVED_AT_ROOT and _mount(request) == "" and first != "s3":
                raise NotFound(f"no such route: {request.method} {request.path}")  # a native path: native error
        try:
            return await fn(request)
        except AisError as exc:
            if request.get(STREAMING):
                raise
            return render_s3_error(request, exc)
    return wrapped


async def _root(request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        raise s3e.S3MethodNotAllowed(f"{request.method} / needs a bucket")
    return await list_buckets(request)


def add_routes(app: web.Application, mount: str = "/s3") -> None:
    """Mount the S3 API at `mount` ("" = the root; register it after the native routes)."""
    r = app.router
    if mount:
        r.add_get(mount, _s3_errors(list_buckets), allow_head=False)
    else:  # "/" lists buckets, or is the bucket itself under a virtual-host Host
        r.add_get("/", _s3_errors(_root), allow_head=False)
        for method in ("PUT", "HEAD", "DELETE", "POST"):
            r.add_route(method, "/", _s3_errors(_root))
    if mount:
        r.add_get(mount + "/", _s3_errors(list_buckets), allow_head=False)
    for path in (mount + "/{bucket}", mount + "/{bucket}/"):
        for method in ("GET", "PUT", "HEAD", "DELETE", "POST"):
            r.add_route(method, path, _s3_errors(bucket_op))
    for method in ("GET", "PUT", "HEAD", "DELETE", "POST"):
        r.add_route(method, mount + "/{bucket}/{key:.+}", _s3_errors(object_op))

