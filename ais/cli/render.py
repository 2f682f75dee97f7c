"""Output of the `ais` command: aligned tables, human units, JSON, and progress bars.

Everything a command prints goes through here, so all commands look alike: upper-case
headers, columns two spaces apart, sizes in binary units (`1.50MiB`), durations as `1m5s`.
Progress bars draw on stderr, and only when stderr is a terminal: piped output stays clean.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterable, Sequence, TextIO

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: float | int | None) -> str:
    """Binary units with two decimals, as AIStore's CLI prints them: `0B`, `512B`, `1.50KiB`."""
    if n is None:
        return "-"
    value = float(n)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """`1024`, `4KiB`, `1.5MB`, `2g` -> bytes (decimal and binary prefixes both mean 1024^n)."""
    s = text.strip().lower().replace(" ", "")
    for i, unit in reversed(list(enumerate(("b", "k", "m", "g", "t", "p")))):
        for suffix in (f"{unit}ib", f"{unit}b", unit):
            if s.endswith(suffix) and s[:-len(suffix)]:
                return int(float(s[:-len(suffix)]) * 1024 ** i)
    return int(s)


def human_duration(seconds: float) -> str:
    """`850ms`, `42s`, `3m7s`, `2h5m`, `3d4h`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, no_headers: bool = False,
          right: Sequence[str] = ()) -> str:
    """Columns aligned two spaces apart; `right` names the headers of right-aligned (numeric) columns."""
    cells = [[_cell(v) for v in row] for row in rows]
    heads = [h.upper() for h in headers]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(heads)]
    flush = {i for i, h in enumerate(headers) if h in right or h.upper() in right}

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(widths[i]) if i in flush else v.ljust(widths[i])
                         for i, v in enumerate(values)).rstrip()
    out = [] if no_headers else [line(heads)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def print_json(doc: Any, out: TextIO | None = None) -> None:
    print(json.dumps(doc, indent=2, sort_keys=False, default=str), file=out or sys.stdout)


def flatten(doc: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A nested JSON document as sorted `section.key` -> value pairs (how props and config print)."""
    if isinstance(doc, dict) and doc:
        out: list[tuple[str, Any]] = []
        for k in sorted(doc):
            out += flatten(doc[k], f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(doc, (dict, list)):
        return [(prefix, json.dumps(doc))]
    return [(prefix, doc)]


class Progress:
    """A one-line progress bar with counts, bytes and rates, redrawn at most 10 times a second.

    `total` may be unknown (None): then it shows counts and rates without a bar. Disabled (draws
    nothing) unless `stream` is a terminal or `force` is set.
    """

    WIDTH = 24

    def __init__(self, what: str, total: int | None = None, *, unit: str = "objects", stream: TextIO | None = None,
                 force: bool | None = None, clock: Any = time.monotonic) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = force if force is not None else _isatty(self.stream)
        self.clock = clock
        self.count = 0
        self.bytes = 0
        self.started = clock()
        self._drawn_at = float("-inf")
        self._last_len = 0

    def update(self, count: int = 0, nbytes: int = 0, *, absolute: bool = False) -> None:
        if absolute:
            self.count, self.bytes = count, nbytes
        else:
            self.count += count
            self.bytes += nbytes
        now = self.clock()
        if now - self._drawn_at >= 0.1:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now if now is not None else self.clock()) - self.started, 1e-6)
        parts = [self.what]
        if self.total:
            done = min(self.count / self.total, 1.0)
            fill = int(done * self.WIDTH)
            parts.append(f"[{'#' * fill}{'.' * (self.WIDTH - fill)}] {self.count}/{self.total} {self.unit}"
                         f" ({done * 100:.0f}%)")
        else:
            parts.append(f"{self.count} {self.unit}")
        parts.append(f"{self.count / elapsed:.1f} {self.unit}/s")
        if self.bytes:
            parts.append(f"{human_size(self.bytes)} at {human_size(self.bytes / elapsed)}/s")
        parts.append(human_duration(elapsed))
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        self._drawn_at = now
        text = self.line(now)
        pad = max(self._last_len - len(text), 0)
        self._last_len = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
