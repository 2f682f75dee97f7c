"""Per-mountpath space quota (`space.capacity_bytes`): usage counts our own files.

The space monitor measures each mountpath's usage (a walk) and every byte written since is added
to it, so a write that would go past the quota answers 507 before it lands: a PUT with a known
length before its body is read, a chunked one at the first batch that does not fit (its work file
is then removed). A write that fails gives its bytes back; deletes count at the next measurement,
so between measurements the quota errs on the safe side.
"""

from __future__ import annotations

from ais.errors import InsufficientStorage


class SpaceQuota:
    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def measured(self, mp: str, used: int) -> None:
        self.used[mp] = used

    def charge(self, mp: str, n_bytes: int, capacity: int) -> int:
        """Count `n_bytes` about to be written to `mp`; 507 when they do not fit. Returns the
        bytes charged (0 without a quota), to give back with `refund` if the write fails."""
        if capacity <= 0 or n_bytes <= 0:
            return 0
        used = self.used.get(mp, 0)
        if used + n_bytes > capacity:
            raise InsufficientStorage(f"not enough space for {n_bytes} bytes: {max(capacity - used, 0)} bytes free "
                                      f"of the mountpath's {capacity}-byte quota (space.capacity_bytes)")
        self.used[mp] = used + n_bytes
        return n_bytes

    def refund(self, mp: str, n_bytes: int) -> None:
        if n_bytes:
            self.used[mp] = max(self.used.get(mp, 0) - n_bytes, 0)
