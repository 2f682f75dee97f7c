"""Reading archives the cluster sends: batch-get output as it streams in (TAR, TAR.GZ; ZIP
buffered), and whole shards already in memory (WebDataset-style TAR, TAR.GZ, ZIP).

Only regular files are yielded, in archive order; PAX and GNU long names are honoured.
Malformed input raises `DecodeError` (the one place tarfile/zipfile/zlib errors enter).
"""

from __future__ import annotations

import collections
import io
import tarfile
import zipfile
import zlib
from typing import AsyncIterator, Iterator

from ais.client.errors import DecodeError

_BLOCK = 512
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


async def _gunzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        async for chunk in chunks:
            out = d.decompress(chunk)
            if out:
                yield out
        tail = d.flush()
    except zlib.error as exc:
        raise DecodeError(f"bad gzip stream: {exc}") from exc
    if tail:
        yield tail


def _pax_path(data: bytes) -> str | None:
    """The `path` record of a PAX extended header (`LEN key=value\\n` records)."""
    pos = 0
    path = None
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise DecodeError(f"bad PAX header record at {pos}") from exc
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        if key == b"path":
            path = value.decode("utf-8", "surrogateescape")
        pos += length
    return path


_ZERO_BLOCK = bytes(_BLOCK)
_POSIX_MAGIC = b"ustar\x0000"
_REG = (b"0", b"\0")


def _byte_sum(data: bytes) -> int:
    """sum(data) for up to 256 bytes: Adler-32's first half is 1 + the byte sum mod 65521, and 256
    bytes sum to at most 65280 (a C loop instead of a Python one over ints)."""
    return (zlib.adler32(data) & 0xFFFF) - 1


def _checksum(block: bytes) -> int:
    """The unsigned ustar header checksum: the bytes summed with the checksum field as spaces."""
    return 256 + _byte_sum(block[:148]) + _byte_sum(block[156:412]) + _byte_sum(block[412:])


def _header(block: bytes) -> tuple[str, int, bytes]:
    """(name, size, type) of a TAR header block. A POSIX ustar header of a regular file with its
    numbers as tarfile and Go write them (11 octal digits and a NUL; the checksum 6 digits, NUL,
    space) and no name prefix, which is what batch-get emits, is read directly, several times
    faster than tarfile; anything else goes through `tarfile.TarInfo.frombuf`, which also
    judges it."""
    if (block[257:265] == _POSIX_MAGIC and block[156:157] in _REG and not block[345]
            and not block[135] and not block[154]):
        try:
            size, chksum = int(block[124:135], 8), int(block[148:154], 8)
        except ValueError:
            size = chksum = -1
        if size >= 0 and chksum == _checksum(block):
            end = block.find(b"\0", 0, 100)
            name = block[:end if end >= 0 else 100].decode("utf-8", "surrogateescape")
            if not name.endswith("/"):   # a V7 directory is a regular file with a trailing slash
                return name, size, tarfile.REGTYPE
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise DecodeError(f"bad TAR header: {exc}") from exc
    return info.name, info.size, info.type


class TarParser:
    """Incremental TAR reader: `feed()` pieces of a stream as they arrive; each call returns the
    regular files (name, content) it completed, in archive order.

    Each content is copied once, out of the piece(s) that hold it (no copy at all when a piece
    is exactly one content). Nothing after the end-of-archive marker is read.
    """

    def __init__(self) -> None:
        self.done = False                  # the end-of-archive marker was seen
        self._buf = b""                    # the piece being read ...
        self._off = 0                      # ... and how much of it was consumed
        self._queue: collections.deque[bytes] = collections.deque()
        self._have = 0                     # unread bytes in _buf and _queue
        self._member: tuple[str, int, bytes] | None = None   # header read, content next
        self._long_name: str | None = None

    def _take(self, n: int) -> bytes:
        buf, off = self._buf, self._off
        if len(buf) - off >= n:
            self._off = off + n
            self._have -= n
            return buf if off == 0 and n == len(buf) else buf[off:off + n]
        parts: list[bytes | memoryview] = [memoryview(buf)[off:]]
        left = n - (len(buf) - off)
        while True:
            buf = self._queue.popleft()
            if len(buf) >= left:
                break
            parts.append(buf)
            left -= len(buf)
        parts.append(memoryview(buf)[:left])
        self._buf, self._off = buf, left
        self._have -= n
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        self._have -= n
        while n:
            room = len(self._buf) - self._off
            if room >= n:
                self._off += n
                return
            n -= room
            self._buf, self._off = self._queue.popleft(), 0

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        if self.done or not data:
            return out
        if self._off >= len(self._buf) and not self._queue:
            self._buf, self._off = data, 0
        else:
            self._queue.append(data)
        self._have += len(data)
        while True:
            member = self._member
            if member is None:
                if self._have < _BLOCK:
                    return out
                block = self._take(_BLOCK)
                if block == _ZERO_BLOCK:
                    self.done = True
                    return out
                member = self._member = _header(block)
            name, size, typ = member
            padded = (size + _BLOCK - 1) // _BLOCK * _BLOCK
            if self._have < padded:
                return out
            content = self._take(size) if size else b""
            if padded > size:
                self._skip(padded - size)
            self._member = None
            if typ in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
                self._long_name = _pax_path(content) or self._long_name
            elif typ == tarfile.GNUTYPE_LONGNAME:
                self._long_name = content.rstrip(b"\0").decode("utf-8", "surrogateescape")
            else:
                name, self._long_name = self._long_name or name, None
                if typ in _FILE_TYPES:
                    out.append((name, content))

    def close(self) -> None:
        """The stream ended: anything but a clean end (marker, or nothing at all) is truncation."""
        if self.done or (self._member is None and self._have == 0):
            return
        raise DecodeError(f"archive truncated: {self._have} bytes of an incomplete member")


async def iter_tar_lists(chunks: AsyncIterator[bytes], gzip: bool = False) -> AsyncIterator[list[tuple[str, bytes]]]:
    """The regular files of a TAR stream as it arrives, a list of (member name, content) per
    piece received (one await per piece, not per member)."""
    parser = TarParser()
    async for chunk in _gunzip(chunks) if gzip else chunks:
        members = parser.feed(chunk)
        if members:
            yield members
        if parser.done:
            return
    parser.close()


async def iter_tar(chunks: AsyncIterator[bytes], gzip: bool = False) -> AsyncIterator[tuple[str, bytes]]:
    """(member name, content) for each regular file of a TAR stream, as it arrives."""
    async for members in iter_tar_lists(chunks, gzip):
        for member in members:
            yield member


def iter_archive_bytes(data: bytes, name: str = "") -> Iterator[tuple[str, bytes]]:
    """(member name, content) for each regular file of an archive held in memory.

    The format comes from the name's extension, else from magic bytes (gzip, zip, tar).
    """
    low = name.lower()
    try:
        if low.endswith(".zip") or data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for zi in zf.infolist():
                    if not zi.is_dir():
                        yield zi.filename, zf.read(zi)
            return
        gz = low.endswith((".tgz", ".tar.gz")) or data[:2] == b"\x1f\x8b"
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz" if gz else "r:") as tf:
            for member in tf:
                if member.isfile():
                    f = tf.extractfile(member)
                    yield member.name, f.read() if f is not None else b""
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DecodeError(f"cannot read archive {name!r}: {exc}") from exc
