"""S3 object checksums: `x-amz-checksum-<alg>` hashers, Content-MD5 and multipart ETags.

S3 sends every flexible checksum as base64 of the big-endian digest (CRC32 "AAAAAA==" style),
so hashers here produce raw digests and `b64digest()` gives the wire form. CRC32C comes from
`google-crc32c` (C); CRC64NVME is pure Python (about 10 MB/s), correct but slow enough that
a caller hashing large bodies with it should do so off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import google_crc32c

from ais.s3.errors import BadDigest, InvalidDigest, InvalidPart, InvalidRequest

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
HEADER_PREFIX = "x-amz-checksum-"
_DIGEST_BYTES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
# Headers that share the prefix but carry no checksum value.
_NOT_VALUES = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes, /) -> None:
        self._crc = int(google_crc32c.extend(self._crc, bytes(data)))

    def digest(self) -> bytes:
        return self._crc.to_bytes(4, "big")


def _crc64_tables() -> list[list[int]]:
    """Slicing-by-8 tables for CRC-64/NVME (reflected polynomial 0x9A6C9329AC4BC9B5)."""
    base = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x9A6C9329AC4BC9B5 if crc & 1 else crc >> 1
        base.append(crc)
    tables = [base]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ base[prev[i] & 0xFF] for i in range(256)])
    return tables


_CRC64_TABLES = _crc64_tables()
_MASK64 = (1 << 64) - 1


class _Crc64Nvme:
    def __init__(self) -> None:
        self._crc = _MASK64  # the register holds the pre-inverted value between updates

    def update(self, data: bytes, /) -> None:
        t0, t1, t2, t3, t4, t5, t6, t7 = _CRC64_TABLES
        crc, view, whole = self._crc, memoryview(data), len(data) // 8 * 8
        for i in range(0, whole, 8):
            x = crc ^ int.from_bytes(view[i:i + 8], "little")
            crc = (t7[x & 0xFF] ^ t6[(x >> 8) & 0xFF] ^ t5[(x >> 16) & 0xFF] ^ t4[(x >> 24) & 0xFF]
                   ^ t3[(x >> 32) & 0xFF] ^ t2[(x >> 40) & 0xFF] ^ t1[(x >> 48) & 0xFF] ^ t0[x >> 56])
        for byte in view[whole:]:
            crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._crc = crc

    def digest(self) -> bytes:
        return (self._crc ^ _MASK64).to_bytes(8, "big")


def _new_hasher(algorithm: str) -> _Hasher:
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm == "CRC32C":
        return _Crc32c()
    if algorithm == "CRC64NVME":
        return _Crc64Nvme()
    return hashlib.new(algorithm.lower())


def normalize_algorithm(name: str) -> str:
    """`crc32c` → `CRC32C`; anything S3 does not define is InvalidRequest."""
    upper = name.strip().upper()
    if upper not in _DIGEST_BYTES:
        raise InvalidRequest(f"Value for x-amz-checksum-algorithm header is invalid: {name!r}.")
    return upper


def header_name(algorithm: str) -> str:
    """The header (or trailer) carrying this algorithm's value: `x-amz-checksum-crc32`."""
    return HEADER_PREFIX + normalize_algorithm(algorithm).lower()


def algorithm_from_header(name: str) -> str | None:
    """`x-amz-checksum-crc32` → `CRC32`; None for any other header, including the
    `x-amz-checksum-algorithm`/`-type`/`-mode` headers that carry no value."""
    lower = name.strip().lower()
    if not lower.startswith(HEADER_PREFIX) or lower in _NOT_VALUES:
        return None
    return normalize_algorithm(lower[len(HEADER_PREFIX):])


class Checksum:
    """An incremental S3 checksum; `b64digest()` is the `x-amz-checksum-<alg>` value."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = normalize_algorithm(algorithm)
        self.header = HEADER_PREFIX + self.algorithm.lower()
        self._hasher = _new_hasher(self.algorithm)

    def update(self, data: bytes) -> None:
        self._hasher.update(data)

    def digest(self) -> bytes:
        return self._hasher.digest()

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def checksum_b64(algorithm: str, data: bytes) -> str:
    """One-shot `x-amz-checksum-<alg>` value of `data`."""
    checksum = Checksum(algorithm)
    checksum.update(data)
    return checksum.b64digest()


def decode_checksum(algorithm: str, value: str) -> bytes:
    """The raw digest in a client-sent checksum; malformed → InvalidRequest, as S3 does."""
    algorithm = normalize_algorithm(algorithm)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _DIGEST_BYTES[algorithm]:
        raise InvalidRequest(f"Value for {header_name(algorithm)} header is invalid.")
    return raw


def verify_checksum(algorithm: str, expected_b64: str, actual: bytes) -> None:
    """Compare a client's checksum with the digest we computed; mismatch → BadDigest."""
    if decode_checksum(algorithm, expected_b64) != actual:
        raise BadDigest(f"The {normalize_algorithm(algorithm)} you specified did not match the "
                        "calculated checksum.")


def composite_checksum(algorithm: str, part_values: Sequence[str]) -> str:
    """A multipart object's COMPOSITE checksum: `b64(alg(concat(part digests)))-N`."""
    checksum = Checksum(algorithm)
    for value in part_values:
        checksum.update(decode_checksum(algorithm, value))
    return f"{checksum.b64digest()}-{len(part_values)}"


# MD5 --------------------------------------------------------------------------------------

def content_md5_digest(header_value: str) -> bytes:
    """The 16 bytes a `Content-MD5` header declares; not base64 of 16 bytes → InvalidDigest."""
    try:
        raw = base64.b64decode(header_value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDigest() from exc
    if len(raw) != 16:
        raise InvalidDigest()
    return raw


def check_content_md5(header_value: str, actual_md5: bytes) -> None:
    """Compare `Content-MD5` with the MD5 of what was received; mismatch → BadDigest."""
    if content_md5_digest(header_value) != actual_md5:
        raise BadDigest()


def md5_etag(md5_digest: bytes) -> str:
    """A single-part object's ETag (unquoted): the hex MD5 of its content."""
    return md5_digest.hex()


def multipart_etag(part_md5s: Iterable[bytes]) -> str:
    """A multipart object's ETag (unquoted): `md5(concat(binary part MD5s))-N`."""
    combined, count = hashlib.md5(usedforsecurity=False), 0
    for digest in part_md5s:
        combined.update(digest)
        count += 1
    return f"{combined.hexdigest()}-{count}"


def part_md5_from_etag(etag: str) -> bytes:
    """The binary MD5 in a part's ETag as a client echoes it (quoted or not) in
    CompleteMultipartUpload; anything else cannot name a part we stored → InvalidPart."""
    text = etag.strip().strip('"')
    if len(text) != 32:
        raise InvalidPart(f"Invalid part ETag {etag!r}.")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidPart(f"Invalid part ETag {etag!r}.") from exc
