"""Reading shards (blocking; run in a mountpath's pool): the member table of each format, and
reads of one member's bytes.

A member's `offset` is where its data starts: in the file for .tar (and for .zip members
stored uncompressed), so a read is a `pread` or `sendfile` of a byte range; in the
decompressed stream for .tgz and .tar.zst, which are read forward from the start.
Compressed .zip members go through `zipfile` (offset -1).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, cast

import zstandard

from ais.errors import BadRequest
from target.archive.formats import TAR, TGZ, TZST, ZIP

BLOCK = tarfile.BLOCKSIZE
_SKIP_CHUNK = 1 << 20
_ZIP_LOCAL = struct.Struct("<4s22xHH")   # signature, ..., name length, extra length
_ZIP_LOCAL_SIG = b"PK\x03\x04"


class ArchiveError(BadRequest):
    """The shard is not an archive of the format it claims, or it is damaged."""

    code = "bad-archive"


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    size: int
    offset: int          # see the module docstring; -1 when not addressable
    mtime: float = 0.0


@dataclass(slots=True)
class Index:
    """The regular-file members of one shard, in archive order, one per name (the last one
    wins, as when extracting). `end` is where a .tar's end-of-archive blocks start (where an
    append writes); -1 for other formats."""

    fmt: str
    members: list[Member]
    end: int = -1
    _by_name: dict[str, Member] | None = field(default=None, repr=False)

    def find(self, name: str) -> Member | None:
        if self._by_name is None:
            self._by_name = {m.name: m for m in self.members}
        return self._by_name.get(name)


def _unique(members: list[Member]) -> list[Member]:
    last = {m.name: i for i, m in enumerate(members)}
    return [m for i, m in enumerate(members) if last[m.name] == i]


# --- member tables ------------------------------------------------------------------------------

def build(f: BinaryIO, fmt: str, what: str) -> Index:
    """The member table of the open shard `f` (`what` names it in errors)."""
    try:
        if fmt == TAR:
            return _build_tar(f, what)
        if fmt in (TGZ, TZST):
            return _build_stream(f, fmt)
        if fmt == ZIP:
            return _build_zip(f)
    except ArchiveError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, zstandard.ZstdError, zlib.error, EOFError, gzip.BadGzipFile,
            ValueError, UnicodeError, struct.error) as exc:
        raise ArchiveError(f"{what} is not a valid {fmt} archive: {exc}") from None
    raise ArchiveError(f"{what}: unsupported archive format {fmt!r}")


def _build_tar(f: BinaryIO, what: str) -> Index:
    fd = f.fileno()
    size = os.fstat(fd).st_size
    f.seek(0)
    tf = tarfile.open(fileobj=f, mode="r:")   # noqa: SIM115 - does not own f
    members = [Member(ti.name, ti.size, ti.offset_data, float(ti.mtime))
               for ti in tf if ti.isreg() and not ti.issparse()]
    end = tf.offset
    # tarfile stops quietly at a damaged header or a cut-off file: tell those from the end
    for m in members:
        if m.offset + m.size > size:
            raise ArchiveError(f"{what} is not a valid .tar archive: {m.name!r} is cut off")
    if end < size:
        tail = os.pread(fd, BLOCK, end)
        if len(tail) < BLOCK or any(tail):
            raise ArchiveError(f"{what} is not a valid .tar archive: damaged or cut off at offset {end}")
    return Index(TAR, _unique(members), end=min(end, size))


def _build_stream(f: BinaryIO, fmt: str) -> Index:
    stream = open_stream(f, fmt)
    try:
        tf = tarfile.open(fileobj=stream, mode="r|")   # noqa: SIM115 - does not own the stream
        members = [Member(ti.name, ti.size, ti.offset_data, float(ti.mtime))
                   for ti in tf if ti.isreg() and not ti.issparse()]
        # read through to the end: a cut-off stream fails here rather than on some later read
        while stream.read(_SKIP_CHUNK):
            pass
    finally:
        stream.close()
    return Index(fmt, _unique(members))


def _build_zip(f: BinaryIO) -> Index:
    f.seek(0)
    members = []
    with zipfile.ZipFile(f) as zf:
        for zi in zf.infolist():
            if zi.is_dir():
                continue
            offset = -1
            if zi.compress_type == zipfile.ZIP_STORED and not zi.flag_bits & 0x1:
                sig, name_len, extra_len = _ZIP_LOCAL.unpack(os.pread(f.fileno(), _ZIP_LOCAL.size, zi.header_offset))
                if sig != _ZIP_LOCAL_SIG:
                    raise zipfile.BadZipFile(f"bad local header of {zi.filename!r}")
                offset = zi.header_offset + _ZIP_LOCAL.size + name_len + extra_len
            mtime = _zip_mtime(zi)
            members.append(Member(zi.filename, zi.file_size, offset, mtime))
    return Index(ZIP, _unique(members))


def _zip_mtime(zi: zipfile.ZipInfo) -> float:
    import calendar
    try:
        return float(calendar.timegm((*zi.date_time, 0, 0, 0)))
    except (ValueError, OverflowError):
        return 0.0


def open_stream(f: BinaryIO, fmt: str) -> BinaryIO:
    """The decompressed stream of a .tgz or .tar.zst, from its start (does not own `f`)."""
    f.seek(0)
    if fmt == TGZ:
        return cast(BinaryIO, gzip.GzipFile(fileobj=f, mode="rb"))
    return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True, closefd=False))


# --- reading members ----------------------------------------------------------------------------

class ShardReader:
    """Reads of members of one open shard; used by one thread at a time. Owns `f`."""

    def __init__(self, f: BinaryIO, index: Index, what: str) -> None:
        self.f, self.index, self.what = f, index, what
        self._stream: BinaryIO | None = None
        self._pos = 0                                   # position in the decompressed stream
        self._zip: zipfile.ZipFile | None = None
        self._zmember: tuple[str, BinaryIO] | None = None

    def raw_offset(self, m: Member) -> int | None:
        """Where the member's bytes lie in the file as they are (for sendfile), if they do."""
        if self.index.fmt == TAR or (self.index.fmt == ZIP and m.offset >= 0):
            return m.offset
        return None

    def read(self, m: Member, offset: int, n: int) -> bytes:
        """`n` bytes of the member from `offset` (fewer only at the member's end)."""
        n = max(0, min(n, m.size - offset))
        if n == 0:
            return b""
        try:
            raw = self.raw_offset(m)
            if raw is not None:
                data = _pread_full(self.f.fileno(), n, raw + offset)
            elif self.index.fmt == ZIP:
                data = self._read_zip(m, offset, n)
            else:
                data = self._read_stream(m.offset + offset, n)
        except ArchiveError:
            raise
        except (zipfile.BadZipFile, zstandard.ZstdError, zlib.error, EOFError, gzip.BadGzipFile, RuntimeError,
                ValueError) as exc:
            raise ArchiveError(f"{self.what}: cannot read {m.name!r}: {exc}") from None
        if len(data) != n:
            raise ArchiveError(f"{self.what}: {m.name!r} is cut off ({offset + len(data)} of {m.size} bytes)")
        return data

    def iter(self, m: Member, offset: int = 0, count: int = -1, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The member's bytes in chunks (for blocking callers: appends and rewrites)."""
        end = m.size if count < 0 else min(m.size, offset + count)
        while offset < end:
            data = self.read(m, offset, min(chunk, end - offset))
            offset += len(data)
            yield data

    def _read_zip(self, m: Member, offset: int, n: int) -> bytes:
        if self._zip is None:
            self.f.seek(0)
            self._zip = zipfile.ZipFile(self.f)
        if self._zmember is None or self._zmember[0] != m.name:
            if self._zmember is not None:
                self._zmember[1].close()
            self._zmember = (m.name, cast(BinaryIO, self._zip.open(m.name)))
        zf = self._zmember[1]
        if zf.tell() != offset:
            zf.seek(offset)
        return _read_full(zf, n)

    def _read_stream(self, pos: int, n: int) -> bytes:
        if self._stream is None or pos < self._pos:
            if self._stream is not None:
                self._stream.close()
            self._stream = open_stream(self.f, self.index.fmt)
            self._pos = 0
        while self._pos < pos:
            skipped = self._stream.read(min(_SKIP_CHUNK, pos - self._pos))
            if not skipped:
                return b""
            self._pos += len(skipped)
        data = _read_full(self._stream, n)
        self._pos += len(data)
        return data

    def close(self) -> None:
        if self._zmember is not None:
            self._zmember[1].close()
        if self._zip is not None:
            self._zip.close()
        if self._stream is not None:
            self._stream.close()
        self.f.close()


def _read_full(f: BinaryIO | io.BufferedIOBase, n: int) -> bytes:
    parts = []
    while n > 0:
        data = f.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _pread_full(fd: int, n: int, offset: int) -> bytes:
    parts = []
    while n > 0:
        data = os.pread(fd, n, offset)
        if not data:
            break
        parts.append(data)
        n -= len(data)
        offset += len(data)
    return b"".join(parts)
