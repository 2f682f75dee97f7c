"""S3 error codes as `AisError` subclasses, and the XML body S3 clients parse.

    AisError
    └── S3Error (500 InternalError)
        ├── 400  AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
        │        ExpiredToken, InvalidArgument, InvalidRequest, InvalidBucketName,
        │        MalformedXML, InvalidDigest, BadDigest, XAmzContentSHA256Mismatch,
        │        IncompleteBody, InvalidChunkSizeError, EntityTooLarge, EntityTooSmall,
        │        InvalidPart, InvalidPartOrder
        ├── 403  AccessDenied (RequestExpired), SignatureDoesNotMatch, InvalidAccessKeyId,
        │        RequestTimeTooSkewed
        ├── 404  NoSuchBucket, NoSuchKey, NoSuchUpload
        ├── 405  S3MethodNotAllowed ("MethodNotAllowed")
        ├── 409  BucketAlreadyOwnedByYou, BucketAlreadyExists, BucketNotEmpty, OperationAborted
        ├── 411  MissingContentLength
        ├── 412  PreconditionFailed
        ├── 416  InvalidRange
        ├── 501  S3NotImplemented ("NotImplemented")
        └── 503  SlowDown, ServiceUnavailable

Each class carries the wire code in `s3_code` (also copied to `code`) and the message AWS
sends by default, so a handler can `raise NoSuchKey(resource="/b/k")` and be done. Native
errors raised below the S3 front end are translated once, by `s3_error_from`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from ais import errors as ais_errors
from ais.errors import AisError

_BY_CODE: dict[str, type[S3Error]] = {}


class S3Error(AisError):
    """An error with an S3 wire code; `details` become extra elements of the XML body."""

    status = 500
    code = "InternalError"
    s3_code: ClassVar[str] = "InternalError"
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = cls.s3_code
        _BY_CODE.setdefault(cls.s3_code, cls)

    def __init__(self, message: str = "", *, resource: str = "",
                 details: Mapping[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.default_message, headers=headers)
        self.resource = resource
        self.details = dict(details or {})

    def to_xml(self, request_id: str, resource: str = "") -> bytes:
        """The S3 error body; `resource` overrides the one given at raise time."""
        return s3_error_xml(self.s3_code, self.message, resource or self.resource, request_id,
                            extra=self.details)


def error_class(s3_code: str) -> type[S3Error]:
    """The class for a wire code (e.g. to re-raise an S3 backend's error); unknown: S3Error."""
    return _BY_CODE.get(s3_code, S3Error)


# 400 ---------------------------------------------------------------------------------------

class AuthorizationHeaderMalformed(S3Error):
    status = 400
    s3_code = "AuthorizationHeaderMalformed"
    default_message = "The authorization header is malformed."


class AuthorizationQueryParametersError(S3Error):
    status = 400
    s3_code = "AuthorizationQueryParametersError"
    default_message = "The presigned URL's authorization query parameters are malformed."


class ExpiredToken(S3Error):
    status = 400
    s3_code = "ExpiredToken"
    default_message = "The provided token has expired."


class InvalidArgument(S3Error):
    status = 400
    s3_code = "InvalidArgument"
    default_message = "Invalid Argument"


class InvalidRequest(S3Error):
    status = 400
    s3_code = "InvalidRequest"
    default_message = "Invalid Request"


class InvalidBucketName(S3Error):
    status = 400
    s3_code = "InvalidBucketName"
    default_message = "The specified bucket is not valid."


class MalformedXML(S3Error):
    status = 400
    s3_code = "MalformedXML"
    default_message = ("The XML you provided was not well-formed or did not validate against "
                       "our published schema.")


class InvalidDigest(S3Error):
    status = 400
    s3_code = "InvalidDigest"
    default_message = "The Content-MD5 you specified is not valid."


class BadDigest(S3Error):
    status = 400
    s3_code = "BadDigest"
    default_message = "The Content-MD5 you specified did not match what we received."


class XAmzContentSHA256Mismatch(S3Error):
    status = 400
    s3_code = "XAmzContentSHA256Mismatch"
    default_message = "The provided 'x-amz-content-sha256' header does not match what was computed."


class IncompleteBody(S3Error):
    status = 400
    s3_code = "IncompleteBody"
    default_message = "You did not provide the number of bytes specified by the Content-Length HTTP header."


class InvalidChunkSizeError(S3Error):
    status = 400
    s3_code = "InvalidChunkSizeError"
    default_message = "The chunk framing of the aws-chunked body is invalid."


class EntityTooLarge(S3Error):
    status = 400
    s3_code = "EntityTooLarge"
    default_message = "Your proposed upload exceeds the maximum allowed object size."


class EntityTooSmall(S3Error):
    status = 400
    s3_code = "EntityTooSmall"
    default_message = "Your proposed upload is smaller than the minimum allowed object size."


class InvalidPart(S3Error):
    status = 400
    s3_code = "InvalidPart"
    default_message = ("One or more of the specified parts could not be found. The part may not "
                       "have been uploaded, or the specified entity tag may not match the part's "
                       "entity tag.")


class InvalidPartOrder(S3Error):
    status = 400
    s3_code = "InvalidPartOrder"
    default_message = ("The list of parts was not in ascending order. Parts must be ordered by "
                       "part number.")


# 403 ---------------------------------------------------------------------------------------

class AccessDenied(S3Error):
    status = 403
    s3_code = "AccessDenied"
    default_message = "Access Denied"


class Unauthenticated(AccessDenied):
    """No credentials while authentication is on: AccessDenied, with 401 as for native requests."""

    status = 401


class RequestExpired(AccessDenied):
    """A presigned URL used after `X-Amz-Date + X-Amz-Expires` (AWS sends AccessDenied)."""

    default_message = "Request has expired"


class SignatureDoesNotMatch(S3Error):
    status = 403
    s3_code = "SignatureDoesNotMatch"
    default_message = ("The request signature we calculated does not match the signature you "
                       "provided. Check your key and signing method.")


class InvalidAccessKeyId(S3Error):
    status = 403
    s3_code = "InvalidAccessKeyId"
    default_message = "The AWS Access Key Id you provided does not exist in our records."


class RequestTimeTooSkewed(S3Error):
    status = 403
    s3_code = "RequestTimeTooSkewed"
    default_message = "The difference between the request time and the current time is too large."


# 404 ---------------------------------------------------------------------------------------

class NoSuchBucket(S3Error):
    status = 404
    s3_code = "NoSuchBucket"
    default_message = "The specified bucket does not exist"


class NoSuchKey(S3Error):
    status = 404
    s3_code = "NoSuchKey"
    default_message = "The specified key does not exist."


class NoSuchUpload(S3Error):
    status = 404
    s3_code = "NoSuchUpload"
    default_message = ("The specified upload does not exist. The upload ID may be invalid, or the "
                       "upload may have been aborted or completed.")


# 405-416 -----------------------------------------------------------------------------------

class S3MethodNotAllowed(S3Error):
    status = 405
    s3_code = "MethodNotAllowed"
    default_message = "The specified method is not allowed against this resource."


class BucketAlreadyOwnedByYou(S3Error):
    status = 409
    s3_code = "BucketAlreadyOwnedByYou"
    default_message = ("Your previous request to create the named bucket succeeded and you "
                       "already own it.")


class BucketAlreadyExists(S3Error):
    status = 409
    s3_code = "BucketAlreadyExists"
    default_message = "The requested bucket name is not available."


class BucketNotEmpty(S3Error):
    status = 409
    s3_code = "BucketNotEmpty"
    default_message = "The bucket you tried to delete is not empty"


class OperationAborted(S3Error):
    status = 409
    s3_code = "OperationAborted"
    default_message = ("A conflicting conditional operation is currently in progress against "
                       "this resource. Try again.")


class MissingContentLength(S3Error):
    status = 411
    s3_code = "MissingContentLength"
    default_message = "You must provide the Content-Length HTTP header."


class PreconditionFailed(S3Error):
    status = 412
    s3_code = "PreconditionFailed"
    default_message = "At least one of the pre-conditions you specified did not hold"


class InvalidRange(S3Error):
    status = 416
    s3_code = "InvalidRange"
    default_message = "The requested range is not satisfiable"


# 5xx ---------------------------------------------------------------------------------------

class S3NotImplemented(S3Error):
    status = 501
    s3_code = "NotImplemented"
    default_message = "A header you provided implies functionality that is not implemented."


class SlowDown(S3Error):
    status = 503
    s3_code = "SlowDown"
    default_message = "Please reduce your request rate."


class ServiceUnavailable(S3Error):
    status = 503
    s3_code = "ServiceUnavailable"
    default_message = "Service is unable to handle request."


# Native error → S3 error; first match wins, so subclasses come before their bases.
_FROM_NATIVE: tuple[tuple[type[AisError], type[S3Error]], ...] = (
    (ais_errors.BucketNotFound, NoSuchBucket),
    (ais_errors.ObjectNotFound, NoSuchKey),
    (ais_errors.NotFound, NoSuchKey),
    (ais_errors.BucketExists, BucketAlreadyOwnedByYou),
    (ais_errors.InvalidName, InvalidArgument),
    (ais_errors.BadRequest, InvalidRequest),
    (ais_errors.Forbidden, AccessDenied),
    (ais_errors.MethodNotAllowed, S3MethodNotAllowed),
    (ais_errors.Conflict, OperationAborted),
    (ais_errors.Locked, OperationAborted),
    (ais_errors.PayloadTooLarge, EntityTooLarge),
    (ais_errors.RangeNotSatisfiable, InvalidRange),
    (ais_errors.TooManyRequests, SlowDown),
    (ais_errors.NotImplementedErr, S3NotImplemented),
    (ais_errors.ServiceUnavailable, ServiceUnavailable),
    (ais_errors.InsufficientStorage, ServiceUnavailable),
)


def s3_error_from(err: AisError) -> S3Error:
    """`err` as an S3 error: itself if it already is one, else the closest S3 code."""
    if isinstance(err, S3Error):
        return err
    for native, s3 in _FROM_NATIVE:
        if isinstance(err, native):
            return s3(err.message, headers=err.headers)
    return S3Error(err.message, headers=err.headers)


# XML 1.0 forbids these code points even escaped; an object name may still contain them. Lone
# surrogates stand for header bytes that were not UTF-8 (aiohttp decodes with `surrogateescape`)
# and cannot be encoded at all: an echoed header must not turn an error into a crash.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    return escape(_XML_INVALID.sub("\ufffd", value))


def s3_error_xml(code: str, message: str, resource: str, request_id: str,
                 extra: Mapping[str, str] | None = None) -> bytes:
    """The standard S3 `<Error>` document; `extra` adds elements such as `<Key>`."""
    parts = [f"<Code>{_text(code)}</Code>", f"<Message>{_text(message)}</Message>"]
    parts += [f"<{name}>{_text(value)}</{name}>" for name, value in (extra or {}).items()]
    parts += [f"<Resource>{_text(resource)}</Resource>", f"<RequestId>{_text(request_id)}</RequestId>"]
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    return body.encode("utf-8")
