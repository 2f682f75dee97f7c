"""Mountpaths of one target: the on-disk layout, per-mountpath I/O pools, and start-up checks.

Layout per mountpath (reference §4):
    <mp>/@<provider>/[@<uuid>#<ns>/]<bucket>/%ob/<object name>   objects
    <mp>/%wk/<random>                                            work files (removed at start-up)
    <mp>/%mp/<upload id>/                                         multipart uploads in progress
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, TypeVar

from ais import hrw
from ais.errors import AisError
from ais.names import Bucket, check_object_name

T = TypeVar("T")

NODE_ID_XATTR = "user.ais.daemon_id"
OBJ_DIR = "%ob"
WORK_DIR = "%wk"
MPU_DIR = "%mp"


class MountpathError(AisError):
    status = 500
    code = "mountpath"


class Mountpaths:
    def __init__(self, paths: Iterable[str], workers_per_mountpath: int, slow: tuple[int, float] = (-1, 0.0)) -> None:
        self.paths: tuple[str, ...] = tuple(os.path.abspath(p).rstrip("/") for p in paths)
        if not self.paths:
            raise MountpathError("a target needs at least one mountpath (target.mountpaths)")
        # test hook (target.slow_mountpath): this mountpath's I/O waits slow_s per operation
        self.slow_path = self.paths[slow[0]] if 0 <= slow[0] < len(self.paths) and slow[1] > 0 else ""
        self._slow_s = slow[1] / 1000
        self._pools = {mp: ThreadPoolExecutor(max_workers=workers_per_mountpath, thread_name_prefix=f"io{i}")
                       for i, mp in enumerate(self.paths)}
        # fsyncs of background writes (cold GETs already served) wait for the disk here, so they
        # never hold the threads that foreground reads and writes need
        self._flush_pools = {mp: ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"flush{i}")
                             for i, mp in enumerate(self.paths)}

    # --- start-up (blocking; called once before serving) -------------------------------
    def init(self, node_id: str) -> None:
        """Create the layout, claim each mountpath for this node, and remove stale work files."""
        for mp in self.paths:
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

    def close(self) -> None:
        for pool in (*self._pools.values(), *self._flush_pools.values()):
            pool.shutdown(wait=True, cancel_futures=True)

    # --- layout -------------------------------------------------------------------------
    @staticmethod
    def bucket_rel(bck: Bucket) -> str:
        ns = "" if bck.namespace.is_global else bck.namespace.uname + "/"
        return f"@{bck.provider}/{ns}{bck.name}"

    def bucket_dir(self, mp: str, bck: Bucket) -> str:
        return f"{mp}/{self.bucket_rel(bck)}/{OBJ_DIR}"

    def mountpath_of(self, bck: Bucket, obj: str) -> str:
        return hrw.choose_mountpath(bck.object_uname(obj), self.paths)

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
        """Run a blocking file operation in the mountpath's pool."""
        if mp == self.slow_path:
            return await asyncio.get_running_loop().run_in_executor(self._pools[mp], self._slowly, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pools[mp], fn, *args)

    def _slowly(self, fn: Callable[..., T], *args: Any) -> T:
        time.sleep(self._slow_s)
        return fn(*args)

    async def run_flush(self, mp: str, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking fsync-bound operation of background work in the mountpath's flush pool."""
        return await asyncio.get_running_loop().run_in_executor(self._flush_pools[mp], fn, *args)

    def pool(self, mp: str) -> ThreadPoolExecutor:
        return self._pools[mp]

    # --- bucket-wide (blocking) ---------------------------------------------------------
    def local_buckets(self) -> set[str]:
        """Bucket directories present on disk, as `@provider/[ns/]name` relative paths."""
        found: set[str] = set()
        for mp in self.paths:
            try:
                providers = [e for e in os.scandir(mp) if e.is_dir() and e.name.startswith("@")]
            except FileNotFoundError:
                continue
            for prov in providers:
                for e in os.scandir(prov.path):
                    if not e.is_dir():
                        continue
                    if e.name.startswith("@"):  # namespace directory
                        found.update(f"{prov.name}/{e.name}/{b.name}" for b in os.scandir(e.path) if b.is_dir())
                    else:
                        found.add(f"{prov.name}/{e.name}")
        return found

    def remove_bucket_rel(self, rel: str) -> None:
        for mp in self.paths:
            target = os.path.join(mp, rel)
            if os.path.isdir(target):
                # rename first so the removal is atomic from a reader's point of view
                trash = self.work_path(mp, "trash.")
                try:
                    os.rename(target, trash)
                except OSError:
                    trash = target
                shutil.rmtree(trash, ignore_errors=True)
