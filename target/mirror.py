"""n-way mirroring and bit-rot repair on one target's mountpaths (bucket props `mirror`,
`checksum.validate_warm_get`; reference §1.2 `Ais-Mirror-*`, §3.2 mountpath HRW, §9).

An object has one **main copy** in `%ob` on its HRW mountpath and, in a mirrored bucket, n-1
**mirror copies** in `%cp` on the next-best HRW mountpaths (each with the same metadata xattr).
Copies live apart from `%ob` so that every walker of objects (listing, copy, rebalance, LRU, ...)
sees each object once. The main copy may briefly sit on another mountpath ("misplaced") after a
mountpath change, until a resilver or the first read moves it home.

All of an object's copy upkeep is one blocking function, `reconcile_blocking`, run under the
object's lock in its HRW mountpath's pool: after a write (copies rewritten, stale ones removed),
on a read that misses the main copy, by the `make-n-copies` and `resilver` jobs.

Writes make their copies before they are acknowledged (no `put-copies` step): an acknowledged
PUT into a mirrored bucket survives the loss of any n-1 mountpaths at once.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import xxhash

from ais.errors import AisError
from ais.names import Bucket, check_object_name
from target.context import TargetContext
from target.fs import meta as fsmeta
from target.fs.mountpaths import COPY_DIR, OBJ_DIR, WORK_DIR, Mountpaths, is_disk_error

log = logging.getLogger(__name__)


class ObjectCorrupted(AisError):
    """The stored object failed its checksum and no intact copy exists. 410: the object is gone
    (its corrupt file quarantined), and clients do not retry a 4xx for minutes as they do a 5xx."""
    status = 410
    code = "object-corrupted"


# --- bucket props ---------------------------------------------------------------------------

def copies_wanted(props: Mapping[str, Any]) -> int:
    """Copies an object of the bucket should have, main included (1 unless mirroring is on)."""
    mirror = props.get("mirror") or {}
    if not isinstance(mirror, Mapping) or not mirror.get("enabled"):
        return 1
    try:
        return max(int(mirror.get("copies", 1)), 1)
    except (TypeError, ValueError):
        return 1


def validates_reads(props: Mapping[str, Any]) -> bool:
    """`checksum.validate_warm_get`: every GET checks the stored checksum before serving."""
    cksum = props.get("checksum") or {}
    return isinstance(cksum, Mapping) and bool(cksum.get("validate_warm_get"))


# --- where an object's copies are -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Slot:
    """One mountpath's places for one object: its main copy and its mirror copy."""
    mp: str
    main: str
    copy: str
    main_root: str
    copy_root: str


def slots(mps: Mountpaths, bck: Bucket, obj: str) -> list[Slot]:
    """The object's places on every readable mountpath: available ones in HRW order (the first
    is the main copy's home), then those being detached."""
    check_object_name(obj)
    rel = mps.bucket_rel(bck)
    out = []
    for mp in (*mps.ranked(bck, obj), *mps.detaching):
        main_root, copy_root = f"{mp}/{rel}/{OBJ_DIR}", f"{mp}/{rel}/{COPY_DIR}"
        out.append(Slot(mp, f"{main_root}/{obj}", f"{copy_root}/{obj}", main_root, copy_root))
    return out


@dataclass
class Outcome:
    """What one reconcile did."""
    present: bool = False           # the main copy is at its HRW mountpath now
    bytes_written: int = 0
    actions: list[str] = field(default_factory=list)


# --- blocking file operations (run in a mountpath's pool) -----------------------------------

def _isfile(path: str) -> bool:
    try:
        return os.path.isfile(path)
    except OSError:
        return False


def _xattr(path: str) -> bytes | None:
    try:
        return os.getxattr(path, fsmeta.XATTR)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            return None
        raise


def _copy_data(src_fd: int, dst_fd: int, size: int) -> None:
    left = size
    offset = 0
    while left > 0:
        try:
            n = os.copy_file_range(src_fd, dst_fd, left, offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            os.lseek(dst_fd, 0, os.SEEK_SET)
            os.ftruncate(dst_fd, 0)
            pos = 0
            while chunk := os.pread(src_fd, 1 << 20, pos):
                os.write(dst_fd, chunk)
                pos += len(chunk)
            return
        if n == 0:
            return
        left -= n
        offset += n


def copy_blocking(src: str, work: str, final: str, fsync: bool) -> int:
    """Copy an object file with its metadata and times to `final` (through the work file
    `work`, renamed into place). Returns its size."""
    fd = os.open(src, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        meta = _xattr(src)
        out = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _copy_data(fd, out, st.st_size)
            if fsync:
                os.fsync(out)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    try:
        if meta is not None:
            os.setxattr(work, fsmeta.XATTR, meta)
        os.utime(work, ns=(st.st_atime_ns, st.st_mtime_ns))
        fsmeta.ensure_parent(final)
        os.rename(work, final)
    except BaseException:
        fsmeta.unlink_quiet(work)
        raise
    return st.st_size


def move_blocking(src: str, work: str, final: str, fsync: bool) -> int:
    """Move an object file: a rename on the same filesystem, else copy then remove."""
    fsmeta.ensure_parent(final)
    try:
        size = os.stat(src).st_size
        os.rename(src, final)
        return size
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    size = copy_blocking(src, work, final, fsync)
    fsmeta.unlink_quiet(src)
    return size


def checksum_of(path: str) -> tuple[fsmeta.ObjectMeta, str] | None:
    """The stored metadata and the checksum computed now over the content (of the stored
    type; the stored value itself when the type cannot be computed here). None if absent."""
    opened = fsmeta.open_object(path)
    if opened is None:
        return None
    f, meta = opened
    with f:
        if meta.cksum_type in ("xxhash", "xxhash2", "xxhash64"):
            h: Any = xxhash.xxh64()
        elif meta.cksum_type == "md5":
            h = hashlib.md5(usedforsecurity=False)
        else:
            return meta, meta.cksum_value
        while chunk := f.read(1 << 20):
            h.update(chunk)
        return meta, h.hexdigest()


def intact(path: str) -> bool | None:
    """Whether the object file's content matches its stored checksum (None: no such file)."""
    r = checksum_of(path)
    if r is None:
        return None
    meta, computed = r
    return not meta.cksum_value or computed == meta.cksum_value


def quarantine_blocking(path: str, mp: str) -> str:
    """Move a corrupt object file out of the namespace into the mountpath's work directory
    (emptied at start-up). Returns where it went."""
    dest = f"{mp}/{WORK_DIR}/corrupt.{os.urandom(6).hex()}.{os.path.basename(path)[:100]}"
    try:
        os.rename(path, dest)
    except OSError:
        fsmeta.unlink_quiet(path)
        return "(removed)"
    return dest


def _remove(path: str, root: str) -> bool:
    return fsmeta.remove_object(path, root)


def reconcile_blocking(places: list[Slot], available: int, wanted: int, owner_here: bool, fsync: bool,
                       work_path: Callable[[str, str], str]) -> Outcome:
    """Blocking: put the main copy on its HRW mountpath and mirror copies on the next
    `wanted - 1` available mountpaths, and remove copies anywhere else (the caller holds the
    object's lock). `available`: how many of `places` are available mountpaths."""
    out = Outcome()
    home = places[0]
    wanted = max(1, min(wanted, available))
    # 1. the main copy at home: moved from where a mountpath change left it, else restored
    #    from an intact mirror copy; copies of an object this target no longer owns go
    if not _isfile(home.main):
        misplaced = [s for s in places[1:] if _isfile(s.main)]
        if misplaced:
            src = max(misplaced, key=lambda s: os.stat(s.main).st_mtime_ns)
            out.bytes_written += move_blocking(src.main, work_path(home.mp, "mv."), home.main, fsync)
            out.actions.append(f"moved main {src.mp} -> {home.mp}")
        else:
            restored = False
            for s in [s for s in places if _isfile(s.copy)]:
                if not owner_here:
                    _remove(s.copy, s.copy_root)
                    out.actions.append(f"removed orphan copy on {s.mp}")
                elif not intact(s.copy):
                    quarantine_blocking(s.copy, s.mp)
                    out.actions.append(f"quarantined a corrupt copy on {s.mp}")
                elif not restored:
                    out.bytes_written += copy_blocking(s.copy, work_path(home.mp, "cp."), home.main, fsync)
                    out.actions.append(f"restored main on {home.mp} from the copy on {s.mp}")
                    restored = True
            if not restored:
                return out
    out.present = True
    # 2. one main copy: the home one is the newest (every write goes home)
    for s in places[1:]:
        if _isfile(s.main):
            _remove(s.main, s.main_root)
            out.actions.append(f"removed an older main on {s.mp}")
    # 3. mirror copies on the next wanted-1 mountpaths, identical to the main; none elsewhere
    main_md = _xattr(home.main)
    for i, s in enumerate(places):
        if 1 <= i < wanted:
            if not _isfile(s.copy) or _xattr(s.copy) != main_md:
                out.bytes_written += copy_blocking(home.main, work_path(s.mp, "cp."), s.copy, fsync)
                out.actions.append(f"copy on {s.mp}")
        elif _isfile(s.copy):
            _remove(s.copy, s.copy_root)
            out.actions.append(f"removed copy on {s.mp}")
    return out


def remove_all_blocking(places: list[Slot]) -> bool:
    """Blocking: remove the object's files (main copies and mirror copies) from every place but
    the home main (its caller removes that). True if any was there."""
    removed = False
    for i, s in enumerate(places):
        if i > 0:
            removed = _remove(s.main, s.main_root) or removed
        removed = _remove(s.copy, s.copy_root) or removed
    return removed


def copies_blocking(places: list[Slot]) -> list[str]:
    """Mountpaths that hold the object: its main copy first, then its mirror copies."""
    mains = [s.mp for s in places if _isfile(s.main)]
    return mains[:1] + [s.mp for s in places if _isfile(s.copy) and s.mp not in mains[:1]]


def count_copies(mps: Mountpaths, mp: str, main: str) -> int:
    """Blocking: copies of the object whose main copy is the file `main` on `mp`, main included."""
    suffix = main[len(mp):].replace(f"/{OBJ_DIR}/", f"/{COPY_DIR}/", 1)
    return 1 + sum(_isfile(m + suffix) for m in mps.readable if m != mp)


# --- async entry points (the hooks of the object handlers and the jobs) ---------------------

def _upkeep(ctx: TargetContext, bck: Bucket) -> bool:
    """Whether objects of the bucket may have copies, or misplaced main copies, to look after."""
    mps = ctx.mountpaths
    return mps.resilvering or bool(mps.detaching) or mps.bucket_rel(bck) in mps.mirrored


async def reconcile(ctx: TargetContext, bck: Bucket, obj: str, wanted: int, locked: bool = False) -> Outcome:
    """Main copy home, mirror copies in place (see `reconcile_blocking`), under the object's lock
    unless the caller holds it (`locked`)."""
    mps = ctx.mountpaths
    places = slots(mps, bck, obj)
    if wanted > 1:
        mps.mirrored.add(mps.bucket_rel(bck))
    owner = ctx.store.smap.owner(bck.object_uname(obj)) if ctx.store.smap is not None else None
    owner_here = owner is None or owner.id == ctx.me.id
    args = (places, len(mps.paths), wanted, owner_here, ctx.cfg.target.fsync, mps.work_path)
    if locked:
        out = await mps.run(places[0].mp, reconcile_blocking, *args)
    else:
        async with ctx.object_lock(bck.object_uname(obj)):
            out = await mps.run(places[0].mp, reconcile_blocking, *args)
    if out.actions:   # a write's own copies are routine; everything else is worth a line
        level = logging.DEBUG if locked and all(a.startswith("copy on") for a in out.actions) else logging.INFO
        log.log(level, "%s: %s", bck.object_cname(obj), "; ".join(out.actions))
    return out


async def after_write(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> None:
    """A new main copy was just published (the caller holds the object's lock): rewrite its
    mirror copies and remove stale ones (an overwrite replaces every copy)."""
    wanted = copies_wanted(props)
    if wanted > 1 or _upkeep(ctx, bck):
        await reconcile(ctx, bck, obj, wanted, locked=True)


async def remove_copies(ctx: TargetContext, bck: Bucket, obj: str) -> bool:
    """The main copy was just removed (the caller holds the object's lock): remove its mirror
    copies and any misplaced main copy too. True if there was any."""
    mps = ctx.mountpaths
    if not _upkeep(ctx, bck):
        return False
    places = slots(mps, bck, obj)
    return await mps.run(places[0].mp, remove_all_blocking, places)


async def restore(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> bool:
    """A read missed the main copy: bring it home from another mountpath (misplaced after a
    mountpath change, or a mirror copy). True if the main copy is there now."""
    if not _upkeep(ctx, bck):
        return False
    return (await reconcile(ctx, bck, obj, copies_wanted(props))).present


async def copy_headers(ctx: TargetContext, bck: Bucket, obj: str) -> dict[str, str]:
    """`Ais-Mirror-Copies` and `Ais-Mirror-Paths` as they are on disk now."""
    from ais import apc
    mps = ctx.mountpaths
    places = slots(mps, bck, obj)
    if len(places) == 1 or not _upkeep(ctx, bck):   # never mirrored here: the main copy only, no disk look
        return {apc.HDR_MIRROR_COPIES: "1", apc.HDR_MIRROR_PATHS: places[0].mp}
    where = await mps.run(places[0].mp, copies_blocking, places)
    return {apc.HDR_MIRROR_COPIES: str(max(len(where), 1)), apc.HDR_MIRROR_PATHS: ",".join(where)}


async def verify_main(ctx: TargetContext, bck: Bucket, obj: str, props: Mapping[str, Any]) -> None:
    """`validate_warm_get`: check the main copy against its stored checksum before it is served.

    A corrupt main copy is replaced from an intact mirror copy. With none, it is quarantined:
    a cached object of a remote bucket is then fetched again (the caller's miss path), an
    `ais://` object is ObjectCorrupted.
    """
    mps = ctx.mountpaths
    mp, path = mps.object_path(bck, obj)
    checked = await mps.run(mp, checksum_of, path)
    if checked is None or not checked[0].cksum_value or checked[1] == checked[0].cksum_value:
        return
    cname = bck.object_cname(obj)
    async with ctx.object_lock(bck.object_uname(obj)):
        checked = await mps.run(mp, checksum_of, path)   # again, under the lock: not an overwrite in flight
        if checked is None or checked[1] == checked[0].cksum_value:
            return
        meta, computed = checked
        log.error("%s is corrupt on %s: stored %s checksum %s, computed %s", cname, mp, meta.cksum_type,
                  meta.cksum_value, computed)
        where = await mps.run(mp, quarantine_blocking, path, mp)
        repaired = await reconcile(ctx, bck, obj, copies_wanted(props), locked=True)
    if repaired.present:
        log.warning("%s: repaired the main copy on %s from a mirror copy (corrupt one in %s)", cname, mp, where)
        return
    if not bck.is_ais:
        log.warning("%s: no intact copy here; fetching it again from the backend", cname)
        return
    raise ObjectCorrupted(f"{cname} is corrupted: its stored {meta.cksum_type} checksum is {meta.cksum_value}, "
                          f"its content has {computed}, and no intact copy exists (the corrupt file was "
                          f"quarantined on {mp})")


async def readable_copy(ctx: TargetContext, bck: Bucket, obj: str, failed_mp: str, exc: OSError) -> tuple[str, str]:
    """The main copy on `failed_mp` is unreadable (a failing disk, which may have been disabled
    by this very error): (mountpath, path) of a mirror copy elsewhere, or the error again."""
    mps = ctx.mountpaths
    for s in slots(mps, bck, obj):
        if s.mp == failed_mp:
            continue
        try:
            if await mps.run(s.mp, _isfile, s.copy):
                log.warning("%s: main copy unreadable (%s); serving the copy on %s", bck.object_cname(obj), exc, s.mp)
                return s.mp, s.copy
        except OSError:
            continue
    raise exc


def disk_error(exc: BaseException) -> bool:
    return is_disk_error(exc)
