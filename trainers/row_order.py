"""The shuffled order of a source's rows in one epoch, in constant memory: a seeded bijection of `[0, n)`.

A materialised permutation costs 8 bytes per row per process: at 350B tokens of 1,024-token rows one source
holds 340M rows, 2.7 GB of int64 for every process and epoch. `RowOrder(n, seed)` computes `order[i]` on
demand instead: a balanced Feistel network over the smallest even number of bits that covers `n` is a
bijection of `[0, 2^bits)`, and cycle-walking (applying it again while the result is `>= n`) restricts it to
a bijection of `[0, n)` (the domain is under `4n`, so fewer than 4 walks on average). Its state is the round
keys: the same few hundred bytes for 10 rows or 10^12 (`python -m bench.bench_data` measures it), and a
position `i` is looked up without touching the ones before it, which is what exact resume and skipping
other processes' rows need.

The rounds mix with SplitMix64's finaliser (a well-tested 64-bit mixer); 6 rounds. Rows are not visited in
a cryptographically random order, which training does not need; what it needs, and the tests check, is that
every row comes exactly once per epoch and that orders of different seeds and epochs are unrelated.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["RowOrder"]

ROUNDS = 6
MASK64 = (1 << 64) - 1


def _mix(value: int) -> int:
    """SplitMix64's finaliser: a bijective 64-bit mixer with full avalanche."""
    value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    value = (value ^ (value >> 27)) * 0x94D049BB133111EB & MASK64
    return value ^ (value >> 31)


def _mix_array(values: np.ndarray) -> np.ndarray:
    """`_mix` over a uint64 array (numpy's uint64 arithmetic wraps modulo 2^64, as the mask does)."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


class RowOrder:
    """`order[i]` for `i` in `[0, size)`: a bijection of `[0, size)` drawn from `seed` (a sequence of
    integers, e.g. `(seed, epoch, name hash)`), or the identity when `shuffle` is False."""

    def __init__(self, size: int, seed: tuple[int, ...] | int, *, shuffle: bool = True):
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size, self.shuffle = size, shuffle
        half = max(1, (max(size - 1, 1).bit_length() + 1) // 2)
        self._half_bits, self._half_mask = half, (1 << half) - 1
        entropy = list(seed) if isinstance(seed, (tuple, list)) else [seed]
        self._keys = [int(k) for k in np.random.SeedSequence(entropy).generate_state(ROUNDS, dtype=np.uint64)]

    def __len__(self) -> int:
        return self.size

    def _permute(self, value: int) -> int:
        left, right = value >> self._half_bits, value & self._half_mask
        for key in self._keys:
            left, right = right, left ^ (_mix(right ^ key) & self._half_mask)
        return (left << self._half_bits) | right

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"row {index} is not in [0, {self.size})")
        if not self.shuffle:
            return index
        value = self._permute(index)
        while value >= self.size:  # cycle-walking: stays a bijection of [0, size)
            value = self._permute(value)
        return value

    def take(self, start: int, stop: int) -> np.ndarray:
        """`order[start:stop]` as an int64 array, computed vectorised (for whole-epoch passes and draws)."""
        indices = np.arange(start, min(stop, self.size), dtype=np.uint64)
        if not self.shuffle:
            return indices.astype(np.int64)
        values = self._permute_array(indices)
        walking = values >= self.size
        while walking.any():
            values[walking] = self._permute_array(values[walking])
            walking = values >= self.size
        return values.astype(np.int64)

    def _permute_array(self, values: np.ndarray) -> np.ndarray:
        bits, mask = np.uint64(self._half_bits), np.uint64(self._half_mask)
        left, right = values >> bits, values & mask
        for key in self._keys:
            left, right = right, left ^ (_mix_array(right ^ np.uint64(key)) & mask)
        return (left << bits) | right

    def __iter__(self) -> Iterator[int]:
        for start in range(0, self.size, 1 << 16):
            yield from self.take(start, start + (1 << 16)).tolist()
