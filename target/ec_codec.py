"""Reed-Solomon slices of one object, in memory, with zfec (a C implementation).

An object of `size` bytes is padded with zeros to `d * n` bytes and cut into `d` data slices of
`n = ceil(size / d)` bytes; zfec computes `p` parity slices of the same length. Slices are
numbered 1..d+p (AIStore's slice IDs; 0 means the whole object): 1..d are data, the rest parity.
Any `d` of them give the object back. Blocking and CPU-bound: run it in a pool.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import zfec


def slice_size(size: int, data_slices: int) -> int:
    return max(1, -(-size // data_slices))


def encode(data: bytes, data_slices: int, parity_slices: int) -> list[bytes]:
    """The d + p slices of `data`, slice 1 first."""
    n = slice_size(len(data), data_slices)
    padded = memoryview(data.ljust(n * data_slices, b"\0"))
    blocks = tuple(padded[i * n:(i + 1) * n] for i in range(data_slices))
    out: Sequence[bytes | memoryview] = zfec.Encoder(data_slices, data_slices + parity_slices).encode(blocks)
    return [bytes(b) for b in out]


def decode(slices: Mapping[int, bytes], data_slices: int, parity_slices: int, size: int) -> bytes:
    """The object from any `d` of its slices (by slice number 1..d+p); data slices preferred."""
    total = data_slices + parity_slices
    usable = sorted(i for i in slices if 1 <= i <= total)
    if len(usable) < data_slices:
        raise ValueError(f"{len(usable)} slices cannot rebuild an object of {data_slices} data slices")
    chosen = usable[:data_slices]
    n = slice_size(size, data_slices)
    if any(len(slices[i]) != n for i in chosen):
        raise ValueError(f"slices of an object of {size} bytes must be {n} bytes long")
    blocks = zfec.Decoder(data_slices, total).decode(tuple(slices[i] for i in chosen), tuple(i - 1 for i in chosen))
    return b"".join(blocks)[:size]
