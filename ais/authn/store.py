"""AuthN's persistent state: one JSON document per collection (users, roles, clusters, revoked
tokens) in the config directory.

Every write goes temp file -> fsync -> rename -> fsync of the directory, so a crash leaves the
old document or the new one, never half of either; start-up removes temp files a crash left.
All file I/O runs in a worker thread, one hop per save.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, Mapping

log = logging.getLogger(__name__)

COLLECTIONS = ("users", "roles", "clusters", "revoked")
_TMP_SUFFIX = ".tmp"


class StoreError(Exception):
    """The state cannot be read (a damaged document) or written."""


class Store:
    def __init__(self, conf_dir: str) -> None:
        self.conf_dir = conf_dir

    def path(self, collection: str) -> str:
        return os.path.join(self.conf_dir, f"{collection}.json")

    def load(self) -> dict[str, Any]:
        """Every collection as stored ({} when never written). Blocking: call at start-up only."""
        os.makedirs(self.conf_dir, mode=0o700, exist_ok=True)
        for name in os.listdir(self.conf_dir):
            if name.endswith(_TMP_SUFFIX):
                log.info("removing %s left by an interrupted write", name)
                os.unlink(os.path.join(self.conf_dir, name))
        docs: dict[str, Any] = {}
        for collection in COLLECTIONS:
            path = self.path(collection)
            try:
                with open(path, "rb") as f:
                    doc = json.load(f)
            except FileNotFoundError:
                doc = {}
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read {path}: {exc}") from exc
            if not isinstance(doc, dict):
                raise StoreError(f"{path}: expected a JSON object")
            docs[collection] = doc
        return docs

    async def save(self, docs: Mapping[str, Any]) -> None:
        """Replace the given collections, each atomically (one worker-thread hop)."""
        blobs = {c: json.dumps(doc, indent=1, sort_keys=True).encode() for c, doc in docs.items()}
        await asyncio.to_thread(self._write_all, blobs)

    def save_blocking(self, docs: Mapping[str, Any]) -> None:
        """`save` for start-up, before the event loop serves anything."""
        self._write_all({c: json.dumps(doc, indent=1, sort_keys=True).encode() for c, doc in docs.items()})

    def _write_all(self, blobs: Mapping[str, bytes]) -> None:
        for collection, data in blobs.items():
            write_atomic(self.path(collection), data)


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """temp file -> fsync -> rename -> fsync the directory."""
    directory = os.path.dirname(path) or "."
    tmp = f"{path}.{os.getpid()}{_TMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StoreError(f"cannot write {path}: {exc}") from exc
