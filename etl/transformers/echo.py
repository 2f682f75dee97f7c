"""echo: the object unchanged (a baseline for the transform path's own cost)."""

from __future__ import annotations

from etl.server import Transformer, main


class Echo(Transformer):
    """Answers each object as it is."""

    def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
        return data


if __name__ == "__main__":
    main(Echo)
