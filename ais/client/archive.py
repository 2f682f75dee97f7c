"""Reading archives the cluster sends: batch-get output as it streams in (TAR, TAR.GZ; ZIP
buffered), and whole shards already in memory (WebDataset-style TAR, TAR.GZ, ZIP).

Only regular files are yielded, in archive order; PAX and GNU long names are honoured.
Malformed input raises `DecodeError` (the one place tarfile/zipfile/zlib errors enter).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from typing import AsyncIterator, Iterator

from ais.client.errors import DecodeError

_BLOCK = 512
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


class _Reader:
    """Exact-size reads over an async iterator of chunks (a read offset into one buffer, which
    is compacted only when more than half of it has been consumed: no copy per read)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    async def read_exact(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n and not self._eof:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._eof = True
                break
            if self._pos and self._pos >= len(self._buf) // 2:
                del self._buf[:self._pos]
                self._pos = 0
            self._buf += chunk
        have = len(self._buf) - self._pos
        if have < n:
            if not have and n:
                return b""
            raise DecodeError(f"archive truncated: wanted {n} bytes, got {have}")
        out = bytes(self._buf[self._pos:self._pos + n])
        self._pos += n
        return out


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


async def iter_tar(chunks: AsyncIterator[bytes], gzip: bool = False) -> AsyncIterator[tuple[str, bytes]]:
    """(member name, content) for each regular file of a TAR stream, as it arrives."""
    r = _Reader(_gunzip(chunks) if gzip else chunks)
    long_name: str | None = None
    while True:
        header = await r.read_exact(_BLOCK)
        if not header or header == bytes(_BLOCK):
            return
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise DecodeError(f"bad TAR header: {exc}") from exc
        padded = (info.size + _BLOCK - 1) // _BLOCK * _BLOCK
        data = await r.read_exact(padded) if padded else b""
        content = data[:info.size]
        if info.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
            long_name = _pax_path(content) or long_name
            continue
        if info.type == tarfile.GNUTYPE_LONGNAME:
            long_name = content.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        name, long_name = long_name or info.name, None
        if info.type in _FILE_TYPES:
            yield name, content


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
