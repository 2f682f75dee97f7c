"""Selecting members by `archregx` and `archmode` (regexp, prefix, suffix, substr, wdskey)."""

from __future__ import annotations

import re
from typing import Callable

from ais.errors import BadRequest

MODES = ("regexp", "prefix", "suffix", "substr", "wdskey")


def wds_keys(name: str) -> tuple[str, str]:
    """The WebDataset keys of a member name: without its last extension (AIStore's reading) and
    without all of them (WebDataset's: the basename up to its first dot), directories kept."""
    name = name.lstrip("/")
    head, sep, base = name.rpartition("/")
    prefix = head + sep
    last = base.rfind(".")
    first = base.find(".")
    without_last = prefix + (base[:last] if last > 0 else base)
    without_all = prefix + (base[:first] if first > 0 else base)
    return without_last, without_all


def matcher(pattern: str, mode: str) -> Callable[[str], bool]:
    """A predicate over member names; BadRequest for an unknown mode or a bad regular expression."""
    mode = (mode or "regexp").strip().lower()
    if mode == "regexp":
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise BadRequest(f"invalid archregx {pattern!r}: {exc}") from None
        return lambda name: rx.search(name) is not None
    if mode == "prefix":
        return lambda name: name.startswith(pattern)
    if mode == "suffix":
        return lambda name: name.endswith(pattern)
    if mode == "substr":
        return lambda name: pattern in name
    if mode == "wdskey":
        key = pattern.lstrip("/")
        return lambda name: key in wds_keys(name)
    raise BadRequest(f"invalid archmode {mode!r}: expected one of {', '.join(MODES)}")
