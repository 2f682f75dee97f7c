"""Mountpaths of one target: the on-disk layout, per-mountpath I/O pools, start-up checks, and
the runtime set of mountpaths (attach, detach, enable, disable).

Layout per mountpath (reference §4):
    <mp>/@<provider>/[@<uuid>#<ns>/]<bucket>/%ob/<object name>   objects (the main copy)
    <mp>/@<provider>/[@<uuid>#<ns>/]<bucket>/%cp/<object name>   mirror copies (target/mirror.py)
    <mp>/%wk/<random>                                            work files (removed at start-up)
    <mp>/%mp/<upload id>/                                         multipart uploads in progress

States (wire: `MountpathList`, `GET /v1/daemon?what=mountpaths`):
- available: placement (HRW over these), walks and reads;
- waiting_dd: being detached: out of placement, still read until a resilver has moved its data off;
- disabled: neither placed on nor read (its data are invisible until it is enabled again).

Every state change happens on the event loop and replaces the tuples, so a coroutine that took
`paths` keeps a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

from ais import hrw
from ais.errors import AisError, BadRequest, Conflict, NotFound
from ais.names import Bucket, check_object_name

T = TypeVar("T")
log = logging.getLogger(__name__)

NODE_ID_XATTR = "user.ais.daemon_id"
OBJ_DIR = "%ob"
COPY_DIR = "%cp"
WORK_DIR = "%wk"
MPU_DIR = "%mp"

# errors that say the disk (not the request) is failing: counted against the mountpath
DISK_ERRNOS = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.EROFS, errno.EUCLEAN, errno.EBADMSG})
IO_ERROR_WINDOW_S = 60.0


class MountpathError(AisError):
    status = 500
    code = "mountpath"


def is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def _inject_eio(mp: str) -> None:
    raise OSError(errno.EIO, f"injected I/O error (test hook target.fault_eio_mountpath) on {mp}")


def prepare_mountpath(mp: str, node_id: str) -> None:
    """Blocking: create the layout, claim the mountpath for this node, and remove stale work files."""
    os.makedirs(mp, exist_ok=True)
    try:
        owner = os.getxattr(mp, NODE_ID_XATTR).decode()
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP):
            raise
        owner = ""
    if owner and owner != node_id:
        raise MountpathError(f"mountpath {mp} belongs to node {owner}, not {node_id}")
    if not owner:
        try:
            os.setxattr(mp, NODE_ID_XATTR, node_id.encode())
        except OSError as exc:
            if exc.errno != errno.ENOTSUP:
                raise
    shutil.rmtree(os.path.join(mp, WORK_DIR), ignore_errors=True)
    os.makedirs(os.path.join(mp, WORK_DIR), exist_ok=True)
    os.makedirs(os.path.join(mp, MPU_DIR), exist_ok=True)


class Mountpaths:
    def __init__(self, paths: Iterable[str], workers_per_mountpath: int, slow: tuple[int, float] = (-1, 0.0)) -> None:
        self.paths: tuple[str, ...] = tuple(self.clean(p) for p in paths)   # available
        if not self.paths:
            raise MountpathError("a target needs at least one mountpath (target.mountpaths)")
        self.detaching: tuple[str, ...] = ()   # waiting_dd
        self.disabled: tuple[str, ...] = ()
        # test hook (target.slow_mountpath): this mountpath's I/O waits slow_s per operation
        self.slow_path = self.paths[slow[0]] if 0 <= slow[0] < len(self.paths) and slow[1] > 0 else ""
        self._slow_s = slow[1] / 1000
        # test hook (target.fault_eio_mountpath): every I/O of the mountpath this returns fails with EIO
        self.faulty: Callable[[], str] = lambda: ""
        # disk errors: `io_errors_to_disable` within IO_ERROR_WINDOW_S call `on_failing(mp)` once
        self.io_errors_to_disable: Callable[[], int] = lambda: 5
        self.on_failing: Callable[[str], None] | None = None
        self._errors: dict[str, list[float]] = {}
        self._workers = workers_per_mountpath
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._flush_pools: dict[str, ThreadPoolExecutor] = {}
        for mp in self.paths:
            self._add_pools(mp)
        # bucket directories (`bucket_rel`) that have, or had, mirror copies: others skip copy upkeep
        self.mirrored: set[str] = set()
        # a mountpath change has not been resilvered yet: a main copy may be on another mountpath
        self.resilvering = False

    @staticmethod
    def clean(path: str) -> str:
        if not isinstance(path, str) or not path.strip():
            raise BadRequest("a mountpath must be a non-empty path")
        return os.path.abspath(path).rstrip("/") or "/"

    def _add_pools(self, mp: str) -> None:
        if mp in self._pools:
            return
        i = len(self._pools)
        self._pools[mp] = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=f"io{i}")
        # fsyncs of background writes (cold GETs already served) wait for the disk here, so they
        # never hold the threads that foreground reads and writes need
        self._flush_pools[mp] = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"flush{i}")

    # --- start-up (blocking; called once before serving) -------------------------------
    def init(self, node_id: str) -> None:
        """Create the layout, claim each mountpath for this node, and remove stale work files."""
        for mp in self.paths:
            prepare_mountpath(mp, node_id)
        self.mirrored = self._scan_mirrored(self.paths)

    def _scan_mirrored(self, mps: Iterable[str]) -> set[str]:
        """Blocking: bucket directories with a copies directory on any of `mps`."""
        found: set[str] = set()
        for mp in mps:
            for rel in self._buckets_on(mp):
                if os.path.isdir(f"{mp}/{rel}/{COPY_DIR}"):
                    found.add(rel)
        return found

    def close(self) -> None:
        for pool in (*self._pools.values(), *self._flush_pools.values()):
            pool.shutdown(wait=True, cancel_futures=True)

    # --- runtime changes (on the loop; the caller does the blocking preparation first) ---
    @property
    def readable(self) -> tuple[str, ...]:
        """Mountpaths whose data are read: available first, then those being detached."""
        return self.paths + self.detaching

    @property
    def known(self) -> tuple[str, ...]:
        return self.paths + self.detaching + self.disabled

    def state_of(self, mp: str) -> str:
        if mp in self.paths:
            return "available"
        if mp in self.detaching:
            return "waiting_dd"
        if mp in self.disabled:
            return "disabled"
        return ""

    def to_wire(self) -> dict[str, list[str]]:
        """AIStore's MountpathList."""
        return {"available": list(self.paths), "waiting_dd": list(self.detaching), "disabled": list(self.disabled)}

    def attach(self, mp: str) -> None:
        """Add a prepared mountpath (`prepare_mountpath` done) to placement."""
        state = self.state_of(mp)
        if state == "available":
            raise Conflict(f"mountpath {mp} is already attached")
        if state == "disabled":
            raise Conflict(f"mountpath {mp} is attached but disabled: enable it instead")
        self._add_pools(mp)
        self.detaching = tuple(m for m in self.detaching if m != mp)   # a detach called off
        self.paths = self.paths + (mp,)
        self._errors.pop(mp, None)
        self.mirrored |= self._scan_mirrored([mp])

    def enable(self, mp: str) -> None:
        state = self.state_of(mp)
        if state == "available":
            raise Conflict(f"mountpath {mp} is already enabled")
        if state != "disabled":
            raise NotFound(f"mountpath {mp} is not attached (attach it instead)")
        self.disabled = tuple(m for m in self.disabled if m != mp)
        self.paths = self.paths + (mp,)
        self._errors.pop(mp, None)

    def _leave_placement(self, mp: str, what: str) -> None:
        if mp in self.paths and len(self.paths) == 1:
            raise BadRequest(f"cannot {what} mountpath {mp}: it is the target's last available mountpath")
        self.paths = tuple(m for m in self.paths if m != mp)

    def disable(self, mp: str) -> None:
        state = self.state_of(mp)
        if state == "disabled":
            raise Conflict(f"mountpath {mp} is already disabled")
        if not state:
            raise NotFound(f"mountpath {mp} is not attached")
        self._leave_placement(mp, "disable")
        self.detaching = tuple(m for m in self.detaching if m != mp)
        self.disabled = self.disabled + (mp,)

    def detach(self, mp: str, force: bool = False) -> None:
        """Out of placement; its data stay readable (waiting_dd) until `finish_detach` after a
        resilver moved them off; with `force`, gone at once (its data are not moved)."""
        state = self.state_of(mp)
        if not state:
            raise NotFound(f"mountpath {mp} is not attached")
        if state == "waiting_dd" and not force:
            raise Conflict(f"mountpath {mp} is already being detached")
        self._leave_placement(mp, "detach")
        self.disabled = tuple(m for m in self.disabled if m != mp)
        self.detaching = tuple(m for m in self.detaching if m != mp)
        if not force:
            self.detaching = self.detaching + (mp,)

    def finish_detach(self, mps: Iterable[str]) -> list[str]:
        """Detachments whose data a resilver has moved off: gone now. Returns those removed."""
        done = [m for m in mps if m in self.detaching]
        self.detaching = tuple(m for m in self.detaching if m not in done)
        return done

    # --- layout -------------------------------------------------------------------------
    @staticmethod
    def bucket_rel(bck: Bucket) -> str:
        ns = "" if bck.namespace.is_global else bck.namespace.uname + "/"
        return f"@{bck.provider}/{ns}{bck.name}"

    def bucket_dir(self, mp: str, bck: Bucket) -> str:
        return f"{mp}/{self.bucket_rel(bck)}/{OBJ_DIR}"

    def copy_dir(self, mp: str, bck: Bucket) -> str:
        return f"{mp}/{self.bucket_rel(bck)}/{COPY_DIR}"

    def mountpath_of(self, bck: Bucket, obj: str) -> str:
        return hrw.choose_mountpath(bck.object_uname(obj), self.paths)

    def ranked(self, bck: Bucket, obj: str) -> list[str]:
        """Available mountpaths by descending HRW score: the main copy's first, then the
        mountpaths of its mirror copies (ties keep configuration order, as `mountpath_of`)."""
        d = hrw.digest(bck.object_uname(obj))
        scored = [(-hrw.mix64(hrw.digest(mp) ^ d), i, mp) for i, mp in enumerate(self.paths)]
        return [mp for _, _, mp in sorted(scored)]

    def object_path(self, bck: Bucket, obj: str) -> tuple[str, str]:
        """(mountpath, full path) of an object. The one place a name becomes a path, so the one
        place that guarantees it stays inside the bucket's directory: names also come from job
        messages (`objnames`, templates, `prepend`), archive manifests and backends' listings,
        not only from validated request paths. A name that could escape is InvalidName (400)."""
        check_object_name(obj)
        mp = self.mountpath_of(bck, obj)
        return mp, f"{self.bucket_dir(mp, bck)}/{obj}"

    def work_path(self, mp: str, tag: str = "") -> str:
        return f"{mp}/{WORK_DIR}/{tag}{os.urandom(8).hex()}.{os.getpid()}"

    def mpu_dir(self, mp: str, upload_id: str) -> str:
        return f"{mp}/{MPU_DIR}/{upload_id}"

    # --- executors ----------------------------------------------------------------------
    async def run(self, mp: str, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking file operation in the mountpath's pool; disk errors count against it."""
        loop = asyncio.get_running_loop()
        if self.faulty() == mp:
            fn, args = _inject_eio, (mp,)   # type: ignore[assignment]
        try:
            if mp == self.slow_path:
                return await loop.run_in_executor(self._pools[mp], self._slowly, fn, *args)
            return await loop.run_in_executor(self._pools[mp], fn, *args)
        except OSError as exc:
            if exc.errno in DISK_ERRNOS:
                self.io_error(mp, exc)
            raise

    def io_error(self, mp: str, exc: OSError) -> None:
        """Count a disk error of `mp`; at the threshold, report the mountpath as failing (once)."""
        if mp not in self.paths:
            return
        now = time.monotonic()
        recent = [t for t in self._errors.get(mp, []) if now - t < IO_ERROR_WINDOW_S] + [now]
        self._errors[mp] = recent
        limit = self.io_errors_to_disable()
        log.warning("disk error %d/%d on mountpath %s: %s", len(recent), limit, mp, exc)
        if len(recent) >= limit and self.on_failing is not None:
            self.on_failing(mp)

    def _slowly(self, fn: Callable[..., T], *args: Any) -> T:
        time.sleep(self._slow_s)
        return fn(*args)

    async def run_flush(self, mp: str, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking fsync-bound operation of background work in the mountpath's flush pool."""
        return await asyncio.get_running_loop().run_in_executor(self._flush_pools[mp], fn, *args)

    def pool(self, mp: str) -> ThreadPoolExecutor:
        return self._pools[mp]

    # --- bucket-wide (blocking) ---------------------------------------------------------
    @staticmethod
    def _buckets_on(mp: str) -> set[str]:
        found: set[str] = set()
        try:
            providers = [e for e in os.scandir(mp) if e.is_dir() and e.name.startswith("@")]
        except FileNotFoundError:
            return found
        for prov in providers:
            for e in os.scandir(prov.path):
                if not e.is_dir():
                    continue
                if e.name.startswith("@"):  # namespace directory
                    found.update(f"{prov.name}/{e.name}/{b.name}" for b in os.scandir(e.path) if b.is_dir())
                else:
                    found.add(f"{prov.name}/{e.name}")
        return found

    def local_buckets(self) -> set[str]:
        """Bucket directories present on disk, as `@provider/[ns/]name` relative paths."""
        found: set[str] = set()
        for mp in self.readable:
            found |= self._buckets_on(mp)
        return found

    def remove_bucket_rel(self, rel: str) -> None:
        for mp in self.known:
            target = os.path.join(mp, rel)
            if os.path.isdir(target):
                # rename first so the removal is atomic from a reader's point of view
                trash = self.work_path(mp, "trash.")
                try:
                    os.rename(target, trash)
                except OSError:
                    trash = target
                shutil.rmtree(trash, ignore_errors=True)
