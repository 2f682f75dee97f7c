"""Adding a file to a shard, into a work file the caller publishes (blocking; run in a pool).

A .tar gets a true append: its bytes up to the end-of-archive blocks are kept as they are,
followed by the new member and new end blocks. Other formats are rewritten: every member
is copied into a new archive of the same format, then the new one. Either way the result
is a new file, written and fsynced beside the shard and renamed over it by the caller under
the object's lock, so a reader never sees a half-appended shard. A member with the same
name as the new one is dropped from a rewrite; a .tar keeps it (the later one wins).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import BinaryIO

import xxhash

from target.archive.formats import TAR
from target.archive.read import Index, Member, ShardReader
from target.archive.write import ArchiveWriter

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Appended:
    size: int
    xxhash: str
    index: Index | None    # the new shard's index when known without a scan (.tar)


class HashedFile:
    """The work file being written, hashed on the way."""

    def __init__(self, path: str) -> None:
        self.f: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in finish()
        self.hasher = xxhash.xxh64()
        self.size = 0

    def write(self, data: bytes) -> None:
        if data:
            self.f.write(data)
            self.hasher.update(data)
            self.size += len(data)

    def finish(self, fsync: bool) -> None:
        try:
            self.f.flush()
            if fsync:
                os.fsync(self.f.fileno())
        finally:
            self.f.close()


def _copy_member_body(out: HashedFile, writer: ArchiveWriter, body: str, size: int) -> None:
    with open(body, "rb") as src:
        left = size
        while left > 0:
            chunk = src.read(min(_CHUNK, left))
            if not chunk:
                raise ValueError(f"file to append ended after {size - left} of {size} bytes")
            out.write(writer.data(chunk))
            left -= len(chunk)


def append_tar(reader: ShardReader, work: str, name: str, body: str, size: int, fsync: bool,
               mtime_s: float = 0.0) -> Appended:
    """The shard of `reader` (a .tar) plus member `name` with the content of file `body`."""
    index = reader.index
    assert index.fmt == TAR and index.end >= 0
    out = HashedFile(work)
    try:
        fd, pos = reader.f.fileno(), 0
        while pos < index.end:
            chunk = os.pread(fd, min(_CHUNK, index.end - pos), pos)
            if not chunk:
                raise ValueError("shard shrank while being appended to")
            out.write(chunk)
            pos += len(chunk)
        writer = ArchiveWriter(TAR)
        mtime = mtime_s or time.time()
        out.write(writer.begin(name, size, mtime))
        data_offset = out.size
        _copy_member_body(out, writer, body, size)
        out.write(writer.end())
        end = out.size
        out.write(writer.finish())
        out.finish(fsync)
    except BaseException:
        out.f.close()
        raise
    members = [m for m in index.members if m.name != name] + [Member(name, size, data_offset, float(int(mtime)))]
    return Appended(out.size, out.hasher.hexdigest(), Index(TAR, members, end=end))


def rewrite(reader: ShardReader | None, mime: str, work: str, name: str, body: str, size: int, fsync: bool,
            mtime_s: float = 0.0) -> Appended:
    """A new archive of format `mime`: the members of `reader`'s shard (if any), then `name`."""
    writer = ArchiveWriter(mime)
    out = HashedFile(work)
    try:
        if reader is not None:
            for m in reader.index.members:
                if m.name == name:
                    continue
                out.write(writer.begin(m.name, m.size, m.mtime))
                for chunk in reader.iter(m):
                    out.write(writer.data(chunk))
                out.write(writer.end())
        out.write(writer.begin(name, size, mtime_s or time.time()))
        _copy_member_body(out, writer, body, size)
        out.write(writer.end())
        out.write(writer.finish())
        out.finish(fsync)
    except BaseException:
        out.f.close()
        raise
    return Appended(out.size, out.hasher.hexdigest(), None)
