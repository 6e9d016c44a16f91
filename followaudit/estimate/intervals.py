"""Shares with confidence intervals, and the sample size a precision needs.

The Wilson score interval (Wilson 1927) is used for every share: unlike the normal ("Wald")
interval it stays inside [0, 1] and keeps its coverage for shares near 0 or 1 and for small n
(Brown, Cai & DasGupta 2001). Two designs:

* full follower list: the followers are treated as one draw of the account's audience-building
  process (a superpopulation view), so the interval is the plain Wilson interval;
* uniform random sample of n out of N followers: the Wilson interval with a finite-population
  correction — z² is scaled by f = (N − n)/(N − 1), the variance factor of sampling without
  replacement — so the interval shrinks to the point as n approaches N.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import polars as pl

from ..schema import LABELS, SampleDesign


@dataclass(frozen=True)
class Share:
    """One label's share of the audited followers, with its interval and how it was computed."""

    label: str
    share: float
    low: float
    high: float
    count: int
    n: int
    method: str

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def z_value(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    # stdlib rather than scipy.stats: importing scipy costs ~1.5 s at every CLI start
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def fpc_factor(n: int, population: int | None) -> float:
    """Variance factor of sampling n without replacement from ``population`` (1 = no correction)."""
    if not population or population <= 1 or n >= population:
        return 0.0 if population and n >= population else 1.0
    return (population - n) / (population - 1)


def wilson(count: int, n: int, confidence: float = 0.95, population: int | None = None) -> tuple[float, float]:
    """Wilson score interval for ``count`` successes in ``n``, optionally finite-population corrected."""
    if n <= 0:
        return (0.0, 1.0)
    p = count / n
    z2 = z_value(confidence) ** 2 * fpc_factor(n, population)
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = math.sqrt(max(z2 * (p * (1 - p) / n + z2 / (4 * n * n)), 0.0)) / denom
    # Guard rounding so the point estimate is always inside its own interval.
    return (max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p)))


def confidence_label(confidence: float) -> str:
    """0.95 -> '95%', 0.975 -> '97.5%': the level as the methods name it."""
    return f"{confidence:.0%}" if round(confidence * 100, 6).is_integer() else f"{confidence:.1%}"


def interval_method(confidence: float, design: SampleDesign | None = None) -> str:
    level = confidence_label(confidence)
    if design is not None and design.fpc_population:
        return (
            f"Wilson score {level} interval with finite-population correction "
            f"({design.n:,} sampled uniformly of {design.population:,})"
        )
    return f"Wilson score {level} interval"


def estimate_shares(
    labels: pl.Series | pl.DataFrame,
    confidence: float = 0.95,
    design: SampleDesign | None = None,
) -> dict[str, Share]:
    """Share of each label (fake, inactive, real) with its Wilson interval.

    ``labels`` is a Series of label strings or a frame with a ``label`` column.
    """
    series = labels["label"] if isinstance(labels, pl.DataFrame) else labels
    counts = dict(series.value_counts().iter_rows())
    return shares_from_counts({k: int(counts.get(k, 0)) for k in LABELS}, confidence, design)


def shares_from_counts(
    counts: dict[str, int], confidence: float = 0.95, design: SampleDesign | None = None
) -> dict[str, Share]:
    """Shares from label counts (used by streaming and distributed scoring, which only add counts)."""
    n = sum(counts.values())
    population = design.fpc_population if design is not None else None
    method = interval_method(confidence, design)
    out: dict[str, Share] = {}
    for label in LABELS:
        c = int(counts.get(label, 0))
        low, high = wilson(c, n, confidence, population)
        out[label] = Share(label, c / n if n else 0.0, low, high, c, n, method)
    return out
