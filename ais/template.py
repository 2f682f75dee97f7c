"""Multi-object selections (reference §1.4 "listrange"): a list of names, a bash-style brace
template (`shard-{0000..0999}.tar`, `{a..b..step}`, several ranges multiply), or a bare prefix.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ais.errors import BadMessage, BadRequest
from ais.names import check_object_name

# ASCII digits, at most 18 (an int64, as AIStore's Go parser has): `\d` would also take other
# scripts' digits, and a range of 10**20 names has no len()
_RANGE = re.compile(r"\{([0-9]{1,18})\.\.([0-9]{1,18})(?:\.\.([0-9]{1,18}))?\}")
MAX_TEMPLATE_NAMES = 10_000_000


def expand(template: str) -> Iterator[str]:
    """The names a brace template stands for, in order. Zero padding follows the range's start."""
    parts: list[str] = []
    ranges: list[range] = []
    widths: list[int] = []
    pos = 0
    for m in _RANGE.finditer(template):
        parts.append(template[pos:m.start()])
        start, end, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if step <= 0 or end < start:
            raise BadRequest(f"invalid range {m.group(0)!r} in template {template!r}: need start <= end, step > 0")
        ranges.append(range(start, end + 1, step))
        widths.append(len(m.group(1)) if m.group(1).startswith("0") else 0)
        pos = m.end()
    tail = template[pos:]
    if "{" in tail or any("{" in p or "}" in p for p in parts):
        raise BadRequest(f"invalid template {template!r}: expected ranges like {{0000..0999}} or {{0..100..10}}")
    total = 1
    for r in ranges:
        total *= len(r)
    if total > MAX_TEMPLATE_NAMES:
        raise BadRequest(f"template {template!r} names {total} objects, more than {MAX_TEMPLATE_NAMES}")
    for combo in itertools.product(*ranges):
        yield "".join(p + str(n).zfill(w) for p, n, w in zip(parts, combo, widths)) + tail


def is_template(text: str) -> bool:
    return bool(_RANGE.search(text))


@dataclass(frozen=True, slots=True)
class Selection:
    """What a multi-object request names: exact names, a brace template, or a prefix."""

    names: tuple[str, ...] = ()
    template: str = ""
    prefix: str = ""
    everything: bool = False   # no names, no template: the whole bucket

    def listed(self) -> Iterator[str] | None:
        """The names, when the selection spells them out (names or template); None for a prefix."""
        if self.names:
            return iter(self.names)
        if self.template:
            return expand(self.template)
        return None

    def to_wire(self) -> dict[str, Any]:
        if self.names:
            return {"objnames": list(self.names)}
        return {"template": self.template or self.prefix}


def parse_selection(value: Mapping[str, Any]) -> Selection:
    """From a message's `objnames` or `template` (a template without ranges is a prefix).

    Every listed name, and the first name a template expands to, must be a valid object name
    (InvalidName otherwise): a range only adds digits, so the first name has the segments of
    all of them (the layout checks each name again before it becomes a path).
    """
    names = value.get("objnames")
    template = value.get("template")
    if names:
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise BadMessage("'objnames' must be a list of object names")
        for name in names:
            check_object_name(name)
        return Selection(names=tuple(names))
    if template is not None and not isinstance(template, str):
        raise BadMessage("'template' must be a string")
    if template:
        if is_template(template):
            first = next(expand(template), None)   # validate now: a bad template is the caller's 400
            if first is not None:
                check_object_name(first)
            return Selection(template=template)
        return Selection(prefix=template)
    return Selection(everything=True)
