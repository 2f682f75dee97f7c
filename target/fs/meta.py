"""Object metadata stored in one extended attribute (msgpack), and the blocking file operations
that read or write an object together with it in a single executor hop.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Sequence

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


NOT_CACHED = "not cached"


def read_small_cached(path: str, limit: int) -> tuple[ObjectMeta, bytearray] | str | None:
    """`read_small` for the event loop (the target's fast lane): metadata and the content of an
    object of at most `limit` bytes, read with RWF_NOWAIT, so that it never waits on the disk.
    `NOT_CACHED` when the content is not all in the page cache; None when there is no such
    small object (or on any error: the caller's regular path deals with it)."""
    try:
        opened = _open_fd(path)
    except OSError:
        return None
    if opened is None:
        return None
    fd, st = opened
    try:
        if st.st_size > limit:
            return None
        meta = read_meta_fd(fd, st)
        buf = bytearray(st.st_size)
        if st.st_size:
            try:
                n = os.preadv(fd, [buf], 0, os.RWF_NOWAIT)
            except BlockingIOError:
                return NOT_CACHED
            if n != st.st_size:
                return NOT_CACHED
        return meta, buf
    except OSError:
        return None
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
    """The version a new write of the object at `path` gets: the stored one plus 1 ("1" for a new
    object or one without metadata). Reads the xattr only (no stat: the hot path of every PUT)."""
    try:
        doc = msgpack.unpackb(os.getxattr(path, XATTR))
        return str(int(doc.get("ver") or "0") + 1)
    except (OSError, ValueError, AttributeError, TypeError):
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
    publish(work, final, fsync)
    st = os.stat(final)
    return replace(meta, mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns)


def store(work: str, final: str, chunks: Sequence[bytes], meta: ObjectMeta, fsync: bool, versioning: bool) -> ObjectMeta:
    """Blocking, under the object's lock: a whole object written and published in one go.

    The same steps as a streamed write plus `commit` (work file, data, metadata, fsync, rename,
    fsync of the directory), in one executor hop for a body already in memory. The metadata is
    set before the fsync, so one fsync covers both. On failure no work file is left.
    """
    if versioning:
        meta = replace(meta, version=next_version(final))
    fd = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        write_all(fd, chunks)
        os.setxattr(fd, XATTR, meta.pack())
        if fsync:
            os.fsync(fd)
        st = os.fstat(fd)   # rename keeps mtime and atime
    except BaseException:
        os.close(fd)
        unlink_quiet(work)
        raise
    os.close(fd)
    try:
        publish(work, final, fsync)
    except BaseException:
        unlink_quiet(work)
        raise
    return replace(meta, mtime_ns=st.st_mtime_ns, atime_ns=st.st_atime_ns)


def publish(work: str, final: str, fsync: bool) -> None:
    """Blocking: rename a finished work file into place (creating the object's directory only
    when the rename says it is missing), then fsync that directory."""
    try:
        try:
            os.rename(work, final)
        except (FileNotFoundError, NotADirectoryError):
            ensure_parent(final)   # a missing directory, or a Conflict with an object in the way
            os.rename(work, final)
    except IsADirectoryError as exc:
        raise Conflict("cannot store the object: its name is an existing virtual directory") from exc
    if fsync:
        fsync_dir(os.path.dirname(final))


def fsync_dir(path: str) -> None:
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


_MAX_IOVECS = 256  # well under IOV_MAX (1024): a batch of more pieces is joined first


def write_all(fd: int, chunks: Sequence[bytes]) -> None:
    """Blocking: write `chunks` with writev, finishing partial writes."""
    if len(chunks) > _MAX_IOVECS:
        chunks = [b"".join(chunks)]
    views = [memoryview(c) for c in chunks if c]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


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
