"""HTTP dates (RFC 1123, `Mon, 23 Nov 2026 07:05:26 GMT`), formatted without email.utils'
overhead: `Last-Modified` on every object answer, `Date` in the fast lanes."""

from __future__ import annotations

import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(ns: int) -> str:
    """The RFC 1123 date of `ns` nanoseconds since the epoch."""
    t = time.gmtime(ns // 1_000_000_000)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
