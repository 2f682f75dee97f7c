"""Image -> local command: how the local runtime runs an ETL that names a container image.

A mapping entry is `IMAGE=COMMAND`. An image without a tag matches every tag of that image
(`aistorage/runtime_python` matches `aistorage/runtime_python:3.11`). In the command,
`python` (first word) is the node's own interpreter, and `{port}` (or the value after
`--port`) becomes the transformer's port, `{host}` (or the value after `--host`) its host.
Configured entries come before the built-in ones, so they can replace them.
"""

from __future__ import annotations

import shlex
import sys
from typing import Iterable, Sequence

# The runtime image of `Etl.init_class` and the built-in transformers of this package.
BUILTIN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aistorage/runtime_python", ("python", "-m", "etl.bootstrap")),
    ("aistorage/transformer_md5", ("python", "-m", "etl.transformers.md5")),
    ("aistorage/transformer_echo", ("python", "-m", "etl.transformers.echo")),
    ("aistorage/transformer_zstd", ("python", "-m", "etl.transformers.zstd")),
    ("aistorage/transformer_image", ("python", "-m", "etl.transformers.image")),
    ("aistorage/transformer_tokenize", ("python", "-m", "etl.transformers.tokenize")),
)


class UnknownImage(ValueError):
    """An image with no local command: the message says how to configure one."""


def parse_entries(entries: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for entry in entries:
        image, sep, command = entry.partition("=")
        if not sep or not image.strip() or not command.strip():
            raise ValueError(f"invalid etl.images entry {entry!r}: expected IMAGE=COMMAND")
        out.append((image.strip(), tuple(shlex.split(command))))
    return out


def _matches(pattern: str, image: str) -> bool:
    if pattern == image:
        return True
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return ":" not in pattern.rsplit("/", 1)[-1] and pattern == repo


def command_for(image: str, command: Sequence[str], configured: Iterable[str]) -> list[str]:
    """The argv that runs `image` locally: the init message's own command when it has one (as
    a container's command replaces its image's), else the mapped command."""
    for pattern, argv in [*parse_entries(configured), *BUILTIN]:
        if _matches(pattern, image):
            return list(command) if command else list(argv)
    raise UnknownImage(f"image {image!r} has no local command: the local ETL runtime runs processes, not "
                       f"containers; map it with the config setting etl.images, e.g. "
                       f"\"{image}=python -m my_transformer --port {{port}}\" (AIS_ETL_IMAGES)")


def substitute(argv: Sequence[str], host: str, port: int, python: str = sys.executable) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i == 0 and arg in ("python", "python3"):
            arg = python
        elif i > 0 and argv[i - 1] == "--port":
            arg = str(port)
        elif i > 0 and argv[i - 1] == "--host":
            arg = host
        out.append(arg.replace("{port}", str(port)).replace("{host}", host))
    return out
