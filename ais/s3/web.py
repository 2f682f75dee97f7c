"""aiohttp glue shared by the S3 front end on proxies and targets: the error renderer and
small XML helpers."""

from __future__ import annotations

from typing import Iterable
from xml.sax.saxutils import escape

from aiohttp import web

from ais.errors import AisError
from ais.log import request_id
from ais.s3.errors import s3_error_from

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_TYPE = "application/xml"


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
