"""A push-style, constant-memory decoder for `Content-Encoding: aws-chunked` bodies.

The three framings, picked by `x-amz-content-sha256`:

    STREAMING-AWS4-HMAC-SHA256-PAYLOAD          <hex>;chunk-signature=<sig>\\r\\n<data>\\r\\n ...
                                                0;chunk-signature=<sig>\\r\\n\\r\\n
    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  signed chunks as above, then after the 0 chunk:
                                                x-amz-checksum-<alg>:<b64>\\r\\n
                                                x-amz-trailer-signature:<sig>\\r\\n\\r\\n
    STREAMING-UNSIGNED-PAYLOAD-TRAILER          <hex>\\r\\n<data>\\r\\n ... 0\\r\\n
                                                x-amz-checksum-<alg>:<b64>\\r\\n\\r\\n

Input may be split anywhere. Payload bytes pass straight through; only a chunk header or
trailer line is buffered, and never beyond `max_line_bytes`. A chunk's bytes are returned
before its signature (which follows them) can be checked, so the caller must not commit the
object until `finish()` returns: any error from `feed()` or `finish()` means discard it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from enum import Enum

from ais.s3 import sigv4
from ais.s3.checksums import Checksum, algorithm_from_header, verify_checksum
from ais.s3.errors import (
    IncompleteBody,
    InvalidArgument,
    InvalidChunkSizeError,
    InvalidRequest,
    SignatureDoesNotMatch,
)

MAX_LINE_BYTES = 4096
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_TRAILER_SIGNATURE = "x-amz-trailer-signature"


class _State(Enum):
    HEADER = "chunk header"
    DATA = "chunk data"
    DATA_END = "CRLF after chunk data"
    TRAILER = "trailers"
    DONE = "done"


class ChunkedDecoder:
    """Decode one aws-chunked body: `feed()` each piece as it arrives, then `finish()`.

    With `signing_key` (and the request's `seed_signature`, `amz_date` and `scope`), every
    chunk signature and the trailer signature are verified; without it the signed framings
    are decoded but their signatures are not checked.
    """

    def __init__(self, mode: str, *, seed_signature: str | None = None,
                 signing_key: bytes | None = None, amz_date: str = "", scope: str = "",
                 declared_trailer: str | None = None, decoded_length: int | None = None,
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if mode not in sigv4.STREAMING_MODES:
            raise InvalidArgument(f"x-amz-content-sha256 {mode!r} is not an aws-chunked mode.")
        self.mode = mode
        self.trailers: dict[str, str] = {}
        self.decoded_bytes = 0         # payload bytes announced by the chunk headers read so far
        self._signed = mode != sigv4.STREAMING_UNSIGNED_TRAILER
        self._has_trailer = mode != sigv4.STREAMING_PAYLOAD
        self._key = signing_key if self._signed else None
        if self._key is not None and not seed_signature:
            raise ValueError("verifying chunk signatures needs the request's seed signature")
        self._previous_signature = (seed_signature or "").lower()
        self._amz_date, self._scope = amz_date, scope
        self._decoded_length = decoded_length
        self._max_line = max_line_bytes
        self._checksums = self._declared_checksums(declared_trailer)
        self._state = _State.HEADER
        self._line = bytearray()
        self._remaining = 0            # bytes left in the current chunk's data
        self._crlf_seen = 0            # bytes of the CRLF after chunk data seen so far
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()
        self._trailer_lines: list[bytes] = []
        self._trailer_signature: str | None = None

    def _declared_checksums(self, declared: str | None) -> dict[str, Checksum]:
        names = [n.strip().lower() for n in (declared or "").split(",") if n.strip()]
        if names and not self._has_trailer:
            raise InvalidRequest(f"x-amz-trailer needs a *-TRAILER x-amz-content-sha256, not {self.mode}.")
        checksums = {}
        for name in names:
            algorithm = algorithm_from_header(name)
            if algorithm is None:
                raise InvalidRequest(f"Unsupported trailer {name!r}; only x-amz-checksum-* may trail.")
            checksums[name] = Checksum(algorithm)
        return checksums

    @property
    def done(self) -> bool:
        """The final chunk and its trailers have been read."""
        return self._state is _State.DONE

    # Feeding ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Consume the next piece of the encoded body; return the payload bytes it completed."""
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state is _State.DATA:
                pos = self._take_data(data, pos, out)
            elif state is _State.HEADER or state is _State.TRAILER:
                line, pos = self._take_line(data, pos)
                if line is not None:
                    self._on_line(line)
            elif state is _State.DATA_END:
                pos = self._take_crlf(data, pos)
            else:
                raise InvalidRequest("Unexpected data after the final aws-chunked chunk.")
        return out[0] if len(out) == 1 else b"".join(out)

    def _take_data(self, data: bytes, pos: int, out: list[bytes]) -> int:
        count = min(self._remaining, len(data) - pos)
        piece = data if count == len(data) else data[pos:pos + count]
        if self._key is not None:
            self._chunk_hash.update(piece)
        for checksum in self._checksums.values():
            checksum.update(piece)
        out.append(piece)
        self._remaining -= count
        if not self._remaining:
            self._state = _State.DATA_END
        return pos + count

    def _take_crlf(self, data: bytes, pos: int) -> int:
        if data[pos] != b"\r\n"[self._crlf_seen]:
            raise InvalidChunkSizeError("Chunk data is longer than its declared size (no CRLF after it).")
        self._crlf_seen += 1
        if self._crlf_seen == 2:
            self._crlf_seen = 0
            self._end_chunk(self._chunk_hash.hexdigest() if self._key is not None else "")
            self._state = _State.HEADER
        return pos + 1

    def _take_line(self, data: bytes, pos: int) -> tuple[bytes | None, int]:
        """The next CRLF-terminated line (without CRLF), or None when it is still partial."""
        budget = self._max_line - len(self._line)
        newline = data.find(b"\n", pos, pos + budget)
        if newline < 0:
            if len(data) - pos >= budget:
                raise InvalidChunkSizeError(f"An aws-chunked {self._state.value} line exceeds "
                                            f"{self._max_line} bytes.")
            self._line += data[pos:]
            return None, len(data)
        line = bytes(self._line) + data[pos:newline + 1]
        self._line.clear()
        if not line.endswith(b"\r\n"):
            raise InvalidChunkSizeError(f"An aws-chunked {self._state.value} line must end in CRLF.")
        return line[:-2], newline + 1

    def _on_line(self, line: bytes) -> None:
        if self._state is _State.HEADER:
            self._on_chunk_header(line)
        elif line:
            self._on_trailer_line(line)
        else:
            self._end_trailers()

    # Chunks -------------------------------------------------------------------------------

    def _on_chunk_header(self, line: bytes) -> None:
        size_text, _, extensions = line.partition(b";")
        if not _HEX_SIZE.fullmatch(size_text):
            raise InvalidChunkSizeError(f"Invalid aws-chunked chunk size {size_text[:32]!r}.")
        size = int(size_text, 16)
        if self._decoded_length is not None and self.decoded_bytes + size > self._decoded_length:
            raise InvalidRequest("The aws-chunked body is longer than x-amz-decoded-content-length "
                                 f"({self._decoded_length}).")
        self._chunk_signature = self._parse_chunk_signature(extensions) if self._signed else ""
        self.decoded_bytes += size
        if size == 0:
            self._end_chunk(sigv4.EMPTY_SHA256)
            self._state = _State.TRAILER
            return
        self._remaining = size
        self._chunk_hash = hashlib.sha256()
        self._state = _State.DATA

    def _parse_chunk_signature(self, extensions: bytes) -> str:
        for extension in extensions.split(b";"):
            name, _, value = extension.decode("latin-1").partition("=")
            if name.strip() == "chunk-signature":
                signature = value.strip().lower()
                if _SIGNATURE.fullmatch(signature):
                    return signature
        raise SignatureDoesNotMatch("An aws-chunked chunk is missing a valid chunk-signature.")

    def _end_chunk(self, data_sha256_hex: str) -> None:
        """Check the finished chunk's signature against the chain; advance the chain."""
        if self._key is not None:
            expected = sigv4.chunk_signature(self._key, self._amz_date, self._scope,
                                             self._previous_signature, data_sha256_hex)
            if not hmac.compare_digest(expected, self._chunk_signature):
                raise SignatureDoesNotMatch("The chunk-signature of an aws-chunked chunk does not "
                                            "match.")
        self._previous_signature = self._chunk_signature

    # Trailers -----------------------------------------------------------------------------

    def _on_trailer_line(self, line: bytes) -> None:
        if not self._has_trailer:
            raise InvalidChunkSizeError(f"{self.mode} bodies end with an empty line after the 0 chunk.")
        name_bytes, colon, value_bytes = line.partition(b":")
        name, value = name_bytes.decode("latin-1").strip().lower(), value_bytes.decode("latin-1").strip()
        if not colon or not name:
            raise InvalidRequest("Malformed aws-chunked trailer line.")
        if name in self.trailers or (name == _TRAILER_SIGNATURE and self._trailer_signature):
            raise InvalidRequest(f"Trailer {name!r} is repeated.")
        if name == _TRAILER_SIGNATURE and self._signed:
            self._trailer_signature = value.lower()
            return
        if name not in self._checksums:
            raise InvalidRequest(f"Trailer {name!r} was not declared in x-amz-trailer.")
        self.trailers[name] = value
        self._trailer_lines.append(line)

    def _end_trailers(self) -> None:
        """All trailers are in: check their signature, presence and checksums."""
        self._state = _State.DONE
        if self._key is not None and self._has_trailer:
            self._check_trailer_signature()
        for name, checksum in self._checksums.items():
            value = self.trailers.get(name)
            if value is None:
                raise InvalidRequest(f"The declared trailer {name} was not sent.")
            verify_checksum(checksum.algorithm, value, checksum.digest())

    def _check_trailer_signature(self) -> None:
        if self._trailer_signature is None or not _SIGNATURE.fullmatch(self._trailer_signature):
            raise SignatureDoesNotMatch("The aws-chunked body is missing a valid x-amz-trailer-signature.")
        canonical = b"".join(line + b"\n" for line in self._trailer_lines)
        expected = sigv4.trailer_signature(self._key or b"", self._amz_date, self._scope,
                                           self._previous_signature,
                                           hashlib.sha256(canonical).hexdigest())
        if not hmac.compare_digest(expected, self._trailer_signature):
            raise SignatureDoesNotMatch("The x-amz-trailer-signature does not match.")

    # The end ------------------------------------------------------------------------------

    def finish(self) -> None:
        """The body has ended: it must have been complete and consistent."""
        if self._state is _State.TRAILER and not self._line:
            self._end_trailers()  # some clients omit the CRLF that closes the trailers
        if self._state is not _State.DONE:
            raise IncompleteBody(f"The aws-chunked body ended inside {self._state.value}.")
        if self._decoded_length is not None and self.decoded_bytes != self._decoded_length:
            raise IncompleteBody(f"The aws-chunked body decoded to {self.decoded_bytes} bytes, not "
                                 f"x-amz-decoded-content-length {self._decoded_length}.")


def decoder_for_request(auth: sigv4.SigV4Auth, headers: Mapping[str, str],
                        secret_key: str | None) -> ChunkedDecoder:
    """The decoder for a request whose `x-amz-content-sha256` is a STREAMING-* mode, wired
    from its parsed auth and headers; with `secret_key`, signatures are verified."""
    lowered = {name.lower(): value for name, value in headers.items()}
    key = None
    if secret_key is not None:
        key = sigv4.signing_key(secret_key, auth.date, auth.region, auth.service)
    return ChunkedDecoder(
        auth.payload_hash, seed_signature=auth.signature, signing_key=key, amz_date=auth.amz_date,
        scope=auth.scope, declared_trailer=lowered.get("x-amz-trailer"),
        decoded_length=decoded_length(lowered.get("x-amz-decoded-content-length")))


def decoded_length(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:   # an int64, and int() has a digit limit
        raise InvalidArgument(f"Invalid x-amz-decoded-content-length {value!r}.")
    return int(text)
