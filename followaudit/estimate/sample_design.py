"""Sample design: how many followers a precision needs, and which ones (uniform over the full list).

The one copy used by follower and likers collection, the reviewed sample, and the tests.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .intervals import z_value


def sample_size(precision: float, population: int | None = None, confidence: float = 0.95) -> int:
    """Smallest uniform sample whose interval half-width is at most ``precision`` for any share.

    Worst case p = 0.5: n0 = z² · 0.25 / H²; with a known population M the finite-population
    correction gives n = n0 / (1 + (n0 − 1) / M). Rounded up; never more than M.
    """
    if not 0 < precision < 0.5:
        raise InputError(f"--precision {precision} is out of range", "give a half-width between 0 and 0.5, e.g. 0.02")
    if not 0 < confidence < 1:
        raise InputError(f"confidence {confidence} is out of range", "use e.g. 0.95")
    z = z_value(confidence)
    n0 = z * z * 0.25 / (precision * precision)
    if population is None:
        return math.ceil(n0)
    if population <= 0:
        return 0
    n = n0 / (1 + (n0 - 1) / population)
    return min(population, math.ceil(n - 1e-9))


def draw_sample(population: int, n: int, seed: int) -> list[int]:
    """Positions (0..M-1) of a seeded simple random sample without replacement, sorted."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(population, size=n, replace=False))


def check_sampling(sample: int | None, precision: float | None) -> None:
    """``--sample`` and ``--precision`` are exclusive and must be usable (followers and likers alike)."""
    if sample is not None and precision is not None:
        raise InputError("--sample and --precision both given", "use one: a fixed size, or the precision you need")
    if sample is not None and sample < 1:
        raise InputError(f"--sample {sample} must be at least 1")
    if precision is not None:
        sample_size(precision)
