"""Rendezvous (HRW) hashing, bit-exact with AIStore (reference §3.2).

score(node, uname) = mix64(node.id_digest XOR digest(uname)); the highest score wins.
The same scheme picks the owning target, a mountpath inside a target, and the designated
target of a listing; the election candidate is the proxy with the highest plain id_digest.
"""

from __future__ import annotations

from typing import Iterable, Sequence, TypeVar

import xxhash

from ais import apc

_MASK = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def digest(text: str) -> int:
    """XXH64 with AIStore's fixed seed."""
    return xxhash.xxh64_intdigest(text.encode("utf-8", "surrogatepass"), apc.HASH_SEED)


def mix64(seed: int) -> int:
    """The xoshiro256** seeding scramble AIStore uses to mix node and object digests."""
    z = (seed + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _C1) & _MASK
    z = ((z ^ (z >> 27)) * _C2) & _MASK
    z = ((z ^ (z >> 31)) + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _C1) & _MASK
    z = ((z ^ (z >> 27)) * _C2) & _MASK
    z = ((z ^ (z >> 31)) * 5) & _MASK
    z = ((z << 7) | (z >> 57)) & _MASK
    return (z * 9) & _MASK


T = TypeVar("T")


def choose(uname: str, candidates: Iterable[tuple[int, T]]) -> T | None:
    """Pick the candidate (id_digest, item) with the highest score for `uname`.

    Ties keep the first candidate seen, as the SDK does (strict `>`).
    """
    d = digest(uname)
    best: T | None = None
    best_score = -1
    for node_digest, item in candidates:
        score = mix64(node_digest ^ d)
        if score > best_score:
            best_score, best = score, item
    return best


def choose_mountpath(uname: str, mountpaths: Sequence[str]) -> str:
    """HRW over a target's mountpaths (score uses the digest of the cleaned path string)."""
    chosen = choose(uname, ((digest(mp), mp) for mp in mountpaths))
    if chosen is None:
        raise LookupError("no mountpaths")
    return chosen
