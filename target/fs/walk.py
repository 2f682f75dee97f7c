"""Sorted, resumable walks of a bucket's objects on one mountpath (blocking; run in a pool).

Entries come out in lexicographic order of their full object names: a directory sorts as
`name/`, so a depth-first walk over each directory's sorted entries yields names in exactly
the order a flat sort would. Directories entirely before the start point, or outside the
prefix, are skipped without being read, so a page costs O(page), not O(bucket).
"""

from __future__ import annotations

import os
from typing import Iterator


def walk_sorted(root: str, prefix: str = "", after: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield (object name, DirEntry) under `root` with name > after and name starting with prefix."""
    yield from _walk(root, "", prefix, after)


def _walk(path: str, base: str, prefix: str, after: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    try:
        with os.scandir(path) as it:
            raw = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return
    keyed = []
    for e in raw:
        is_dir = e.is_dir(follow_symlinks=False)
        name = base + e.name
        keyed.append((name + "/" if is_dir else name, is_dir, name, e))
    keyed.sort(key=lambda k: k[0])
    for key, is_dir, name, e in keyed:
        if is_dir:
            if not (prefix.startswith(key) or key.startswith(prefix)):
                continue
            if key < after and not after.startswith(key):
                continue  # every name below sorts before `after`
            yield from _walk(e.path, key, prefix, after)
        elif name > after and name.startswith(prefix):
            yield name, e
