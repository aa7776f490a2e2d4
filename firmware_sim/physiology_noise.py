"""Counter-based randomness: every random number is a pure function of (seed, keys).

A simulated reading must not depend on which window of time a caller asks for, nor on how
many readings were drawn before it, so there is no generator state to advance: each draw
hashes its own coordinates. The same (seed, keys) always gives the same number.
"""

from __future__ import annotations

import math
import zlib
from functools import lru_cache
from statistics import NormalDist

_MASK64 = (1 << 64) - 1
_STANDARD_NORMAL = NormalDist()

Key = int | str


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@lru_cache(maxsize=1024)
def _string_key(key: str) -> int:
    # crc32 rather than hash(): str hashes are salted per process, which would break replay.
    return zlib.crc32(key.encode()) | (len(key) << 32)


def _hash(seed: int, keys: tuple[Key, ...]) -> int:
    h = _splitmix64(seed & _MASK64)
    for key in keys:
        k = _string_key(key) if isinstance(key, str) else key & _MASK64
        h = _splitmix64(h ^ k)
    return h


def uniform(seed: int, *keys: Key) -> float:
    """A number in the open interval (0, 1)."""
    return ((_hash(seed, keys) >> 11) + 0.5) / float(1 << 53)


def normal(seed: int, *keys: Key, limit: float = 3.0) -> float:
    """A standard normal deviate truncated to ±``limit``.

    Truncation keeps every simulated error inside a stated envelope, so tests can promise that
    a stable patient never crosses an alert threshold by a freak draw.
    """
    return max(-limit, min(limit, _STANDARD_NORMAL.inv_cdf(uniform(seed, *keys))))


def smoothstep(x: float) -> float:
    return x * x * (3.0 - 2.0 * x)


@lru_cache(maxsize=65536)
def _knot(seed: int, stream: str, index: int) -> float:
    return normal(seed, "knot", stream, index)


def value_noise(seed: int, stream: str, seconds: float, spacing_seconds: float) -> float:
    """Smooth noise of unit scale: normal knots every ``spacing_seconds``, eased in between.

    Physiological variability is autocorrelated (a pulse that is high now is still high a
    minute later), which white noise per reading would not capture.
    """
    position = seconds / spacing_seconds
    index = math.floor(position)
    weight = smoothstep(position - index)
    before = _knot(seed, stream, index)
    after = _knot(seed, stream, index + 1)
    return before + (after - before) * weight
