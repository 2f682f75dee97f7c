"""Persistent per-shard indexes: the member table of a shard, kept in a sidecar file so that
reading one member of a .tar is a seek, not a scan (blocking; run in a mountpath's pool).

Sidecars live next to the bucket's objects, `<mp>/@<provider>/<bucket>/%ix/<xxh64 of the
name>`, and carry the shard's name and a key: size, mtime (ns) and checksum of the shard
they describe. A shard that changed (rewritten, appended to, replaced) no longer matches its
key, so its stale sidecar is ignored and rebuilt. A sidecar is a cache: failing to write
one only costs a rebuild; it is written to a temporary file and renamed, never fsynced (a
damaged one is rebuilt). Removing a bucket removes its sidecars with it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Any, BinaryIO

import msgpack
import xxhash

from ais import apc
from target.archive.read import Index, Member, build
from target.fs.mountpaths import OBJ_DIR

log = logging.getLogger(__name__)

INDEX_DIR = "%ix"
VERSION = 1
_CACHE_ENTRIES = 64

Key = tuple[int, int, str]

_cache: OrderedDict[str, tuple[str, Key, Index]] = OrderedDict()   # sidecar path -> (object, key, index)
_cache_lock = threading.Lock()


def sidecar_path(bucket_dir: str, obj: str) -> str:
    """The sidecar of object `obj` whose bucket directory (`.../%ob`) is `bucket_dir`."""
    assert bucket_dir.endswith("/" + OBJ_DIR), bucket_dir
    digest = xxhash.xxh64(obj.encode("utf-8", "surrogatepass"), seed=apc.HASH_SEED).hexdigest()
    return f"{bucket_dir[:-len(OBJ_DIR)]}{INDEX_DIR}/{digest}"


def key_of(st: os.stat_result, cksum: str) -> Key:
    return st.st_size, st.st_mtime_ns, cksum


def load(path: str, obj: str, key: Key) -> Index | None:
    """The sidecar's index if it describes this version of `obj`; None otherwise."""
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == obj and hit[1] == key:
            _cache.move_to_end(path)
            return hit[2]
    try:
        with open(path, "rb") as f:
            doc: dict[str, Any] = msgpack.unpackb(f.read())
        if doc.get("v") != VERSION or doc.get("obj") != obj or tuple(doc.get("key") or ()) != key:
            return None
        index = Index(str(doc["fmt"]), [Member(str(n), int(s), int(o), float(t)) for n, s, o, t in doc["m"]],
                      end=int(doc.get("end", -1)))
    except (OSError, ValueError, TypeError, KeyError, msgpack.UnpackException):
        return None
    _remember(path, obj, key, index)
    return index


def save(path: str, obj: str, key: Key, index: Index) -> None:
    """Write the sidecar (failures are logged: the index is rebuilt next time)."""
    doc = {"v": VERSION, "obj": obj, "key": list(key), "fmt": index.fmt, "end": index.end,
           "m": [[m.name, m.size, m.offset, m.mtime] for m in index.members]}
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(msgpack.packb(doc))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot write shard index %s of %s: %s", path, obj, exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    _remember(path, obj, key, index)


def get(f: BinaryIO, fmt: str, cksum: str, bucket_dir: str, obj: str, what: str) -> Index:
    """The index of the open shard `f` (object `obj`): from its sidecar, else built and saved."""
    key = key_of(os.fstat(f.fileno()), cksum)
    path = sidecar_path(bucket_dir, obj)
    index = load(path, obj, key)
    if index is not None and index.fmt == fmt:
        return index
    index = build(f, fmt, what)
    save(path, obj, key, index)
    return index


def drop(bucket_dir: str, obj: str) -> None:
    """Remove the sidecar of `obj`, if any."""
    path = sidecar_path(bucket_dir, obj)
    with _cache_lock:
        _cache.pop(path, None)
    try:
        os.unlink(path)
    except OSError:
        pass


def _remember(path: str, obj: str, key: Key, index: Index) -> None:
    with _cache_lock:
        _cache[path] = (obj, key, index)
        _cache.move_to_end(path)
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
