"""Which archive format a shard is: by `archmime`, else by the name's extension, else by magic.

Formats are named by their canonical extension: ".tar", ".tgz" (also written ".tar.gz"),
".tar.zst" and ".zip" (reference §8).
"""

from __future__ import annotations

from ais.errors import BadRequest

TAR, TGZ, TZST, ZIP = ".tar", ".tgz", ".tar.zst", ".zip"
FORMATS = (TAR, TGZ, TZST, ZIP)

# the extensions (and archmime spellings) of each format; the longest suffix wins
_BY_EXT = {".tar": TAR, ".tgz": TGZ, ".tar.gz": TGZ, ".tar.zst": TZST, ".tzst": TZST, ".zip": ZIP}
_BY_MIME = {**_BY_EXT, "tar": TAR, "tgz": TGZ, "tar.gz": TGZ, "tar.zst": TZST, "zst": TZST, "zip": ZIP,
            "application/x-tar": TAR, "application/tar": TAR, "application/gzip": TGZ,
            "application/x-gzip": TGZ, "application/x-compressed-tar": TGZ, "application/zstd": TZST,
            "application/zip": ZIP, "application/x-zip-compressed": ZIP}

MAGIC_BYTES = 264   # enough for the tar magic at offset 257

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")   # a member, or the end record of an empty zip
_TAR_MAGIC_AT = 257


def by_mime(archmime: str) -> str:
    """The format an `archmime` names; BadRequest for anything else."""
    fmt = _BY_MIME.get(archmime.strip().lower())
    if fmt is None:
        raise BadRequest(f"invalid archmime {archmime!r}: expected one of .tar, .tgz, .tar.gz, .tar.zst, .zip")
    return fmt


def by_name(name: str) -> str:
    """The format a name's extension says, or "" (e.g. `a/b.tar.gz` -> .tgz, `a.b/c` -> "")."""
    base = name.rsplit("/", 1)[-1].lower()
    best = ""
    for ext, fmt in _BY_EXT.items():
        if base.endswith(ext) and len(base) > len(ext) and len(ext) > len(best):
            best = ext
    return _BY_EXT[best] if best else ""


def by_magic(head: bytes) -> str:
    """The format the first bytes of a file show, or ""."""
    if head.startswith(_GZIP_MAGIC):
        return TGZ
    if head.startswith(_ZSTD_MAGIC):
        return TZST
    if head.startswith(_ZIP_MAGICS):
        return ZIP
    if head[_TAR_MAGIC_AT:_TAR_MAGIC_AT + 5] == b"ustar":
        return TAR
    return ""


def detect(name: str, head: bytes, archmime: str = "") -> str:
    """The shard's format: `archmime` wins, then the extension, then the magic; "" if none."""
    if archmime:
        return by_mime(archmime)
    return by_name(name) or by_magic(head)


def is_archive_name(name: str) -> bool:
    """Does the name say it is an archive (what listing with the arch-dir flag expands)?"""
    return by_name(name) != ""
