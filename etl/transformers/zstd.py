"""zstd: compress or decompress with Zstandard.

The mode is `etl_args` (`compress`, `decompress`, or `compress:<level>`), else the environment's
`ZSTD_MODE` (default `compress`) and `ZSTD_LEVEL` (default 3).
"""

from __future__ import annotations

import os

import zstandard

from etl.server import TransformError, Transformer, main


class Zstd(Transformer):
    """Compresses (or decompresses) each object with Zstandard."""

    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.mode = os.environ.get("ZSTD_MODE", "compress")
        self.level = int(os.environ.get("ZSTD_LEVEL", "3"))

    def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
        mode, _, level = (etl_args or self.mode).partition(":")
        if mode == "compress":
            return zstandard.ZstdCompressor(level=int(level or self.level)).compress(data)
        if mode == "decompress":
            try:
                return zstandard.ZstdDecompressor().decompressobj().decompress(data)
            except zstandard.ZstdError as exc:
                raise TransformError(f"not zstd data: {exc}") from exc
        raise TransformError(f"unknown mode {mode!r}: expected compress[:level] or decompress")


if __name__ == "__main__":
    main(Zstd)
