"""md5: the object's MD5 as 32 hex characters."""

from __future__ import annotations

import hashlib

from etl.server import Transformer, main


class Md5(Transformer):
    """Answers the hex MD5 of each object."""

    mime = "text/plain"

    def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
        return hashlib.md5(data).hexdigest().encode()


if __name__ == "__main__":
    main(Md5)
