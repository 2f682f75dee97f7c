"""Object metadata stored in one extended attribute (msgpack), and the blocking file operations
that read or write an object together with it in a single executor hop.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import msgpack

from ais.errors import Conflict, InsufficientStorage

XATTR = "user.ais.lom"
META_VERSION = 1


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    size: int
    cksum_type: str = "xxhash"
    cksum_value: str = ""
    version: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    bid: int = 0
    md5: str = ""                      # hex MD5 of the content when known (S3 PUTs): the S3 ETag
    etag: str = ""                     # an explicit ETag (multipart `md5-of-md5s-N`), wins over md5
    s3_checksums: dict[str, str] = field(default_factory=dict)  # x-amz-checksum-<alg> -> base64
    mtime_ns: int = 0
    atime_ns: int = 0  # from the filesystem; not stored in the xattr

    def pack(self) -> bytes:
        doc: dict[str, Any] = {"v": META_VERSION, "s": self.size, "ct": self.cksum_type, "cv": self.cksum_value,
                               "ver": self.version, "md": self.custom, "bid": self.bid}
        if self.md5:
            doc["md5"] = self.md5
        if self.etag:
            doc["etag"] = self.etag
        if self.s3_checksums:
            doc["s3ck"] = self.s3_checksums
        packed: bytes = msgpack.packb(doc)
        return packed

    @classmethod
    def unpack(cls, data: bytes, st: os.stat_result) -> "ObjectMeta":
        d: dict[str, Any] = msgpack.unpackb(data)
        return cls(size=st.st_size, cksum_type=d.get("ct", "none"), cksum_value=d.get("cv", ""),
                   version=d.get("ver", ""), custom=dict(d.get("md") or {}), bid=int(d.get("bid", 0)),
                   md5=d.get("md5", ""), etag=d.get("etag", ""), s3_checksums=dict(d.get("s3ck") or {}),
                   mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns)

    def with_custom(self, custom: dict[str, str]) -> "ObjectMeta":
        return replace(self, custom=custom)


def read_meta_fd(fd: int, st: os.stat_result) -> ObjectMeta:
    try:
        return ObjectMeta.unpack(os.getxattr(fd, XATTR), st)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            # A file without metadata (e.g. copied in by hand): serve it with what stat knows.
            return ObjectMeta(size=st.st_size, cksum_type="none", mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns)
        raise


def open_object(path: str) -> tuple[BinaryIO, ObjectMeta] | None:
    """Open, fstat and read metadata in one hop. None when the object does not exist."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - the caller owns and closes it
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        st = os.fstat(f.fileno())
        return f, read_meta_fd(f.fileno(), st)
    except BaseException:
        f.close()
        raise


def _open_fd(path: str) -> tuple[int, os.stat_result] | None:
    """A raw descriptor and its stat (no file object: this runs once per object of a batch or a
    small GET, where building a buffered reader costs more than the read); None when no regular
    file is there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def stat_object(path: str) -> ObjectMeta | None:
    opened = _open_fd(path)
    if opened is None:
        return None
    fd, st = opened
    try:
        return read_meta_fd(fd, st)
    finally:
        os.close(fd)


def read_fd(fd: int, count: int, offset: int) -> bytes:
    """`count` bytes at `offset` (fewer only at end of file)."""
    data = os.pread(fd, count, offset)
    if len(data) == count or not data:
        return data
    parts = [data]
    got = len(data)
    while got < count:
        more = os.pread(fd, count - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_small(path: str, limit: int) -> tuple[ObjectMeta, bytes | None] | None:
    """Open + metadata + (if the object is at most `limit` bytes) its content, in one hop."""
    opened = _open_fd(path)
    if opened is None:
        return None
    fd, st = opened
    try:
        meta = read_meta_fd(fd, st)
        return meta, (read_fd(fd, st.st_size, 0) if st.st_size <= limit else None)
    finally:
        os.close(fd)


def set_meta(path: str, meta: ObjectMeta) -> ObjectMeta:
    """Replace the metadata of an existing object (custom metadata PATCH)."""
    try:
        os.setxattr(path, XATTR, meta.pack())
    except FileNotFoundError:
        raise
    st = os.stat(path)
    return replace(meta, mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns)


def next_version(path: str) -> str:
    try:
        old = ObjectMeta.unpack(os.getxattr(path, XATTR), os.stat(path))
        return str(int(old.version or "0") + 1)
    except (OSError, ValueError):
        return "1"


def ensure_parent(path: str) -> None:
    """Create the object's directory; a file standing where a directory must go is a conflict."""
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise Conflict(f"cannot store {path!r}: a parent path segment is an existing object") from exc
    except OSError as exc:
        raise translate_os_error(exc, path) from exc


def commit(work: str, final: str, meta: ObjectMeta, fsync: bool, versioning: bool) -> ObjectMeta:
    """Blocking: set metadata on the fully written work file and rename it into place.

    The caller holds the object's lock, so the version read here is not raced.
    """
    if versioning:
        meta = replace(meta, version=next_version(final))
    os.setxattr(work, XATTR, meta.pack())
    ensure_parent(final)
    try:
        os.rename(work, final)
    except IsADirectoryError as exc:
        raise Conflict("cannot store the object: its name is an existing virtual directory") from exc
    if fsync:
        dfd = os.open(os.path.dirname(final), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    st = os.stat(final)
    return replace(meta, mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns)


def remove_object(path: str, bucket_dir: str) -> bool:
    """Delete an object and prune the directories it leaves empty (up to the bucket)."""
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return False
    parent = os.path.dirname(path)
    while parent.startswith(bucket_dir) and parent != bucket_dir:
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)
    return True


def finish_work(f: BinaryIO, fsync: bool) -> None:
    """Blocking: fsync (when configured) and close a fully written work file."""
    try:
        if fsync:
            os.fsync(f.fileno())
    finally:
        f.close()


def unlink_quiet(path: str) -> None:
    """Blocking: remove a work file that may already be gone."""
    try:
        os.unlink(path)
    except OSError:
        pass


def translate_os_error(exc: OSError, what: str) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(f"out of space writing {what}")
    if exc.errno == errno.ENAMETOOLONG:
        return Conflict(f"name too long for the filesystem: {what}")
    return exc
