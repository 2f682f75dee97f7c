"""tokenize: text to tokens, for language-model data preparation.

Splits UTF-8 text into lower-cased words and punctuation marks. `etl_args` (or the environment's
`TOKENIZE_MODE`) picks the output: `words` (default) - a JSON list of tokens; `ids[:V]` - a JSON
list of token ids, each a stable hash of the token into a vocabulary of V (default 50000).
"""

from __future__ import annotations

import json
import os
import re
import zlib

from etl.server import TransformError, Transformer, main

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


class Tokenize(Transformer):
    """Turns each text object into a JSON list of tokens or token ids."""

    blocking = True
    mime = "application/json"

    def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TransformError(f"not UTF-8 text: {exc}") from exc
        mode, _, vocab = (etl_args or os.environ.get("TOKENIZE_MODE", "words")).partition(":")
        toks = tokens(text)
        if mode == "words":
            return json.dumps(toks, ensure_ascii=False).encode()
        if mode == "ids":
            size = int(vocab) if vocab.isdigit() and int(vocab) > 0 else 50000
            return json.dumps([zlib.crc32(t.encode()) % size for t in toks]).encode()
        raise TransformError(f"unknown mode {mode!r}: expected words or ids[:vocab]")


if __name__ == "__main__":
    main(Tokenize)
