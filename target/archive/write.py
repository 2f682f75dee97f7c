"""Streaming archive writers: .tar, .tgz / .tar.gz, .tar.zst and .zip, one member at a time.

Members have a known size up front (batch-get entries and shard members do), so a tar header
is written before the data and nothing is buffered. The writer is sync and CPU-only: it turns
member names and bytes into the archive's bytes, which the caller sends or writes. Callers
that compress large chunks run `data()` in a thread.

Compression favours throughput (gzip level 1, zstd level 3): the output feeds training loaders,
where the cluster's CPU is the scarce resource. Zip members are stored (no compression) with
data descriptors, Zip64 when needed, as stock `zipfile` writes to an unseekable stream.
"""

from __future__ import annotations

import tarfile
import time
import zipfile
import zlib
from typing import Any, Iterable, overload

import zstandard

from ais.moss import CONTENT_TYPES, normalize_mime

_BLOCK = tarfile.BLOCKSIZE
GZIP_LEVEL = 1
ZSTD_LEVEL = 3


class _Sink:
    """What `zipfile` writes into: collected and drained by the writer after each call."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, b: Any) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


_USTAR_MAX = 8 ** 11            # size and mtime fit 11 octal digits
_USTAR_MODE_IDS = b"0000644\x000000000\x000000000\x00"
_USTAR_MIDDLE = b"0" + b"\0" * 100 + tarfile.POSIX_MAGIC + b"\0" * (32 + 32 + 8 + 8 + 155 + 12)
_USTAR_CONST_SUM = sum(_USTAR_MODE_IDS) + sum(_USTAR_MIDDLE) + 8 * 0x20   # the checksum field counts as spaces
_NULS = b"\0" * 100


def _fits_ustar(name: str, size: int, mtime: int) -> bool:
    return len(name) <= 100 and name.isascii() and 0 <= size < _USTAR_MAX and 0 <= mtime < _USTAR_MAX


def _tar_header(name: str, size: int, mtime: int) -> bytes:
    header = ustar_header(name, size, mtime)
    if header is None:   # a long or non-ASCII name, or a huge size: tarfile adds a PAX header
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime, ti.mode = size, mtime, 0o644
        header = ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header


def tar_length(members: Iterable[tuple[str, int, float]]) -> int:
    """The exact length of the plain .tar that `ArchiveWriter` makes of members (name, size,
    mtime_s): known before the first byte, so a batch can go out with a Content-Length."""
    total = 2 * _BLOCK
    now = int(time.time())
    for name, size, mtime_s in members:
        mtime = int(mtime_s) if mtime_s else now
        head = _BLOCK if _fits_ustar(name, size, mtime) else len(_tar_header(name, size, mtime))
        total += head + size + (-size % _BLOCK)
    return total


def ustar_header(name: str, size: int, mtime: int) -> bytes | None:
    """The 512-byte header tarfile writes (PAX format, mode 0644, uid/gid 0) for a regular file
    whose name is ASCII and at most 100 bytes and whose size and mtime fit the ustar fields;
    None otherwise. Built directly: tarfile's general path costs ~25 us a member, which shows in
    batches of thousands of small entries."""
    if not _fits_ustar(name, size, mtime):
        return None
    raw = name.encode()
    nums = b"%011o\0%011o\0" % (size, mtime)
    chksum = sum(raw) + sum(nums) + _USTAR_CONST_SUM   # NUL padding adds nothing
    return b"".join((raw, _NULS[len(raw):], _USTAR_MODE_IDS, nums, b"%06o\0 " % chksum, _USTAR_MIDDLE))


class ArchiveWriter:
    """One archive, member after member: `begin`, `data`..., `end`, then `finish`.

    Every method returns the archive bytes to emit now (possibly b"").
    """

    def __init__(self, mime: str) -> None:
        self.mime = normalize_mime(mime)
        self.content_type = CONTENT_TYPES[self.mime]
        self._left = -1            # bytes still due for the open member; -1 = none open
        self._size = 0
        self._gz: Any = None
        self._zst: Any = None
        self._zip: zipfile.ZipFile | None = None
        self._zip_member: Any = None
        self._sink = _Sink()
        if self.mime in (".tgz", ".tar.gz"):
            self._gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)   # 31: gzip container
        elif self.mime == ".tar.zst":
            self._zst = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
        elif self.mime == ".zip":
            self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)  # type: ignore[call-overload]

    # --- members ---------------------------------------------------------------------------

    def begin(self, name: str, size: int, mtime_s: float = 0.0) -> bytes:
        if self._left >= 0:
            raise RuntimeError("archive member still open")
        if size < 0:
            raise ValueError(f"negative member size {size}")
        self._left, self._size = size, size
        mtime = mtime_s or time.time()
        if self._zip is not None:
            zi = zipfile.ZipInfo(name, date_time=time.gmtime(max(mtime, 315532800))[:6])
            zi.file_size = size
            zi.compress_type = zipfile.ZIP_STORED
            zi.external_attr = 0o644 << 16
            self._zip_member = self._zip.open(zi, "w", force_zip64=size >= zipfile.ZIP64_LIMIT)
            return self._sink.drain()
        return self._compress(_tar_header(name, size, int(mtime)))

    @overload
    def data(self, chunk: bytes) -> bytes: ...

    @overload
    def data(self, chunk: memoryview) -> bytes | memoryview: ...

    def data(self, chunk: bytes | memoryview) -> bytes | memoryview:
        """The member's next bytes as archive bytes (a plain tar passes them through, a view
        included, uncopied)."""
        if len(chunk) > self._left:
            raise ValueError(f"member data exceeds its declared size of {self._size} bytes")
        self._left -= len(chunk)
        if self._zip_member is not None:
            self._zip_member.write(chunk)
            return self._sink.drain()
        return self._compress(chunk)

    def end(self) -> bytes:
        if self._left != 0:
            raise ValueError(f"member ended {self._left} bytes short of its declared size of {self._size}")
        self._left = -1
        if self._zip_member is not None:
            self._zip_member.close()
            self._zip_member = None
            return self._sink.drain()
        pad = -self._size % _BLOCK
        return self._compress(b"\0" * pad) if pad else b""

    def member(self, name: str, payload: bytes, mtime_s: float = 0.0) -> bytes:
        """A whole small member in one call."""
        return self.begin(name, len(payload), mtime_s) + self.data(payload) + self.end()

    def finish(self) -> bytes:
        if self._left >= 0:
            raise RuntimeError("archive member still open")
        if self._zip is not None:
            self._zip.close()
            return self._sink.drain()
        out = self._compress(b"\0" * (2 * _BLOCK))
        if self._gz is not None:
            out += self._gz.flush()
        elif self._zst is not None:
            out += self._zst.flush()
        return out

    @overload
    def _compress(self, raw: bytes) -> bytes: ...

    @overload
    def _compress(self, raw: memoryview) -> bytes | memoryview: ...

    def _compress(self, raw: bytes | memoryview) -> bytes | memoryview:
        if self._gz is not None:
            return self._gz.compress(raw)  # type: ignore[no-any-return]
        if self._zst is not None:
            return self._zst.compress(raw)  # type: ignore[no-any-return]
        return raw


__all__ = ["ArchiveWriter", "CONTENT_TYPES", "GZIP_LEVEL", "ZSTD_LEVEL", "normalize_mime", "tar_length"]
