"""aiohttp glue shared by the S3 front end on proxies and targets: the error renderer, the one
parser of request XML bodies and of `x-amz-copy-source`, and small XML helpers."""

from __future__ import annotations

from typing import Iterable
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.parsers import expat
from xml.sax.saxutils import escape

from aiohttp import web

from ais import names
from ais.errors import AisError, InvalidName, PayloadTooLarge
from ais.log import request_id
from ais.names import Bucket
from ais.s3.errors import InvalidArgument, MalformedXML, s3_error_from
from ais.web import read_body

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_TYPE = "application/xml"
COPY_SOURCE = "x-amz-copy-source"
MAX_XML_BYTES = 1 << 20   # DeleteObjects of 1,000 keys of 1 KiB; CompleteMultipartUpload of 10,000 parts


def render_s3_error(request: web.Request, err: AisError) -> web.StreamResponse:
    """S3 XML error body (none for HEAD), with the request ID S3 clients log."""
    s3err = s3_error_from(err)
    rid = request_id.get()
    headers = {**s3err.headers, "x-amz-request-id": rid}
    if request.method == "HEAD":
        return web.Response(status=s3err.status, headers=headers)
    body = s3err.to_xml(rid, resource=request.path)
    headers["Content-Type"] = XML_TYPE
    return web.Response(status=s3err.status, body=body, headers=headers)


def text(value: object) -> str:
    return escape(str(value))


def element(name: str, value: object) -> str:
    return f"<{name}>{text(value)}</{name}>"


def document(root: str, parts: Iterable[str]) -> bytes:
    """`<root xmlns=S3>parts...</root>` with the XML declaration."""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">' + "".join(parts) + f"</{root}>"
    return body.encode("utf-8")


def xml_response(root: str, parts: Iterable[str], status: int = 200) -> web.Response:
    return web.Response(status=status, body=document(root, parts),
                        headers={"Content-Type": XML_TYPE, "x-amz-request-id": request_id.get()})


# --- request bodies -------------------------------------------------------------------------------

async def read_xml(request: web.Request) -> ElementTree.Element:
    """A request's XML body (DeleteObjects, CompleteMultipartUpload), bounded and parsed by `parse_xml`."""
    try:
        body = await read_body(request, MAX_XML_BYTES)
    except PayloadTooLarge as exc:
        raise MalformedXML(exc.message) from exc
    return parse_xml(body)


class _Forbidden(Exception):
    """Raised from an expat handler to stop at a DTD; becomes MalformedXML."""


def _forbid(*_: object) -> int:
    raise _Forbidden("XML documents with a DOCTYPE, entities or external references are not accepted")


def parse_xml(body: bytes) -> ElementTree.Element:
    """An S3 request document as an element tree (tags as `{namespace}name`), or MalformedXML.

    Any DOCTYPE is refused inside the parser itself, whatever the document's encoding (a byte
    search for `<!DOCTYPE` misses a UTF-16 document), so no entity is ever declared or expanded
    (no billion laughs) and nothing external is ever fetched: time and memory stay linear in
    the body, which callers bound.
    """
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = lambda tag, attrs: builder.start(_qname(tag), {_qname(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(_qname(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
        return builder.close()
    except _Forbidden as exc:
        raise MalformedXML(str(exc)) from None
    except expat.ExpatError as exc:
        raise MalformedXML(f"The XML you provided was not well-formed: {exc}") from None


def _qname(name: str) -> str:
    """expat's `namespace}local` as ElementTree's `{namespace}local`."""
    return "{" + name if "}" in name else name


def parse_copy_source(value: str) -> tuple[Bucket, str]:
    """`x-amz-copy-source`: `[/]bucket/key[?versionId=...]`, URL-encoded; the version is ignored."""
    path = unquote(value.split("?", 1)[0]).lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                              details={"ArgumentName": COPY_SOURCE, "ArgumentValue": value})
    try:
        return names.make_bucket(bucket), names.check_object_name(key)
    except InvalidName as exc:
        raise InvalidArgument(exc.message, details={"ArgumentName": COPY_SOURCE}) from exc
