"""Fake shares corrected for the classifier's measured error.

Counting the followers a classifier flags ("classify and count") is biased whenever it errs:
with sensitivity Se and specificity Sp the expected flagged share is
p_obs = Se·p + (1 − Sp)·(1 − p), so a 99%-specific model still reports 1% fakes in an all-human
audience. Two corrections:

* **adjusted classify-and-count** (Rogan & Gladen 1978; Forman 2006):
  p = (p_obs + Sp − 1) / (Se + Sp − 1), clamped to [0, 1]. Its interval is a parametric bootstrap
  that carries both the sampling error of p_obs (Jeffreys Beta posterior, with the
  finite-population correction for a uniform sample) and the uncertainty of Se and Sp (Jeffreys
  Beta posteriors from the cross-validation counts in the model card). The default.
* **probabilistic classify-and-count** (Bella et al. 2010): the mean calibrated probability, with a
  bootstrap interval. Unbiased only when the audited audience looks like the training data; it is
  shown beside the default for comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from ..schema import SampleDesign
from .intervals import confidence_label, fpc_factor

DRAWS = 4000
SEED = 20150214
ACC_METHOD = "adjusted classify-and-count (Rogan–Gladen), parametric bootstrap {level} interval incl. model error"
PCC_METHOD = "probabilistic classify-and-count (mean calibrated probability), bootstrap {level} interval"


@dataclass(frozen=True)
class Estimate:
    """A corrected share with its interval and the method that produced it."""

    share: float
    low: float
    high: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rogan_gladen(p_observed: float | np.ndarray, sensitivity: float | np.ndarray, specificity: float | np.ndarray) -> float | np.ndarray:
    """(p_obs + Sp − 1) / (Se + Sp − 1), clamped to [0, 1].

    Raises ValueError when Se + Sp ≤ 1 (a classifier no better than chance cannot be corrected).
    """
    denom = np.asarray(sensitivity, dtype=np.float64) + np.asarray(specificity, dtype=np.float64) - 1.0
    if np.any(denom <= 0):
        raise ValueError("sensitivity + specificity must exceed 1 to correct a share")
    p = (np.asarray(p_observed, dtype=np.float64) + np.asarray(specificity, dtype=np.float64) - 1.0) / denom
    out = np.clip(p, 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def _interval(draws: np.ndarray, point: float, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    # the point estimate always lies inside its own interval
    return float(min(low, point)), float(max(high, point))


def _observed_draws(flagged: int, n: int, rng: np.random.Generator, draws: int, population: int | None) -> np.ndarray:
    """Draws of the flagged share: Jeffreys Beta, its variance shrunk by the finite-population factor."""
    factor = fpc_factor(n, population) if population else 1.0
    if factor == 0.0:  # every follower was read: no sampling error
        return np.full(draws, flagged / n)
    n_eff = n / factor
    x_eff = flagged / n * n_eff
    return rng.beta(x_eff + 0.5, n_eff - x_eff + 0.5, size=draws)


def adjusted_count(
    flagged: int,
    n: int,
    *,
    tp: int,
    fn: int,
    tn: int,
    fp: int,
    confidence: float = 0.95,
    population: int | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
) -> Estimate:
    """Adjusted classify-and-count of the fake share from ``flagged`` of ``n`` followers.

    ``tp, fn, tn, fp`` are the model's cross-validated counts (Se = tp/(tp+fn), Sp = tn/(tn+fp)).
    ``population`` is N when the n followers are a uniform sample of N.
    """
    if n <= 0:
        raise ValueError("no followers to estimate from")
    if not 0 <= flagged <= n:
        raise ValueError(f"flagged ({flagged}) must be between 0 and n ({n})")
    se, sp = tp / (tp + fn), tn / (tn + fp)
    point = rogan_gladen(flagged / n, se, sp)
    rng = np.random.default_rng(seed)
    p_obs = _observed_draws(flagged, n, rng, draws, population)
    se_d = rng.beta(tp + 0.5, fn + 0.5, size=draws)
    sp_d = rng.beta(tn + 0.5, fp + 0.5, size=draws)
    denom = se_d + sp_d - 1.0
    ok = denom > 0.05  # draws where the model would be near chance carry no information
    est = np.clip((p_obs[ok] + sp_d[ok] - 1.0) / denom[ok], 0.0, 1.0)
    low, high = _interval(est, point, confidence)
    return Estimate(point, low, high, ACC_METHOD.format(level=confidence_label(confidence)))


PROB_BINS = 2000
BOOT_GROUPS = 250  # the bootstrap's groups of bins (probabilistic_count_from_histogram)


def probability_histogram(probabilities: np.ndarray | pl.Series, bins: int = PROB_BINS) -> tuple[np.ndarray, float]:
    """``(counts per 1/bins-wide bin, sum of probabilities)``: all the bootstrap needs, addable per batch."""
    p = np.asarray(probabilities, dtype=np.float64)
    p = p[~np.isnan(p)]
    idx = np.minimum((np.clip(p, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
    return np.bincount(idx, minlength=bins).astype(np.int64), float(p.sum())


def probabilistic_count_from_histogram(
    counts: np.ndarray, total: float, *, confidence: float = 0.95, draws: int = 2000, seed: int = SEED
) -> Estimate:
    """Mean calibrated probability with a bootstrap interval, from ``probability_histogram`` output.

    The bootstrap resamples followers: a multinomial over groups of probability bins (so millions
    of followers cost no more than a thousand), shifted by the binning error so the draws centre on
    the exact mean.
    """
    n = int(counts.sum())
    if n == 0:
        raise ValueError("no probabilities to estimate from")
    bins = counts.size
    point = total / n
    centres = (np.arange(bins) + 0.5) / bins
    binned_mean = float(counts @ centres) / n
    # The bins are merged into at most BOOT_GROUPS groups, each at its followers' mean: the
    # multinomial costs a draw per group and replicate (all 2000 bins are filled on a large
    # audience: 0.3 CPU-s, against 0.03), and what the merge leaves out, the variance within a
    # group 1/250 wide, is at most 1.3e-6 beside the probabilities' usual 0.01-0.2 (the interval's
    # ends move by less than their own Monte Carlo noise).
    group = np.arange(bins) * min(BOOT_GROUPS, bins) // bins
    group_counts = np.bincount(group, weights=counts).astype(np.int64)
    group_sums = np.bincount(group, weights=counts * centres)
    values = np.divide(group_sums, group_counts, out=np.zeros(group_counts.size), where=group_counts > 0)
    rng = np.random.default_rng(seed)
    # Empty groups are left out (but the last, which takes the remainder): NumPy draws nothing for
    # a zero probability, so the draws are the same, for fewer groups.
    kept = np.flatnonzero(group_counts[:-1]).tolist() + [group_counts.size - 1]
    boot = rng.multinomial(n, group_counts[kept] / n, size=draws) @ values[kept] / n
    boot = np.clip(boot + (point - binned_mean), 0.0, 1.0)
    low, high = _interval(boot, point, confidence)
    return Estimate(point, low, high, PCC_METHOD.format(level=confidence_label(confidence)))


def probabilistic_count(
    probabilities: np.ndarray | pl.Series, *, confidence: float = 0.95, draws: int = 2000, seed: int = SEED
) -> Estimate:
    """Probabilistic classify-and-count: mean calibrated probability, bootstrap interval."""
    counts, total = probability_histogram(probabilities)
    return probabilistic_count_from_histogram(counts, total, confidence=confidence, draws=draws, seed=seed)


def corrected_shares(
    labels: pl.DataFrame,
    error_counts: dict[str, int],
    *,
    confidence: float = 0.95,
    design: SampleDesign | None = None,
    seed: int = SEED,
) -> dict[str, dict[str, Any]]:
    """The ``corrected`` section of a report, from model labels (``label``, ``probability``)."""
    counts = {k: int(v) for k, v in labels["label"].value_counts().iter_rows()}
    hist = None
    if "probability" in labels.columns and labels["probability"].null_count() < labels.height:
        hist = probability_histogram(labels["probability"].drop_nulls().to_numpy())
    return corrected_from_counts(counts, error_counts, confidence=confidence, design=design, probabilities=hist, seed=seed)


def corrected_from_counts(
    counts: dict[str, int],
    error_counts: dict[str, int],
    *,
    confidence: float = 0.95,
    design: SampleDesign | None = None,
    probabilities: tuple[np.ndarray, float] | None = None,
    seed: int = SEED,
    fake: tuple[Estimate, str, np.ndarray] | None = None,
) -> dict[str, dict[str, Any]]:
    """``corrected`` from label counts (and optionally a ``probability_histogram``), for streamed audits.

    ``fake`` is the adjusted classify-and-count (the headline) with the probabilistic estimate
    beside it — or, when given, ``fake = (estimate, estimator name, draws)`` from another method
    (``estimate/audience.py``); ``inactive`` and ``real`` share the remainder in the ratio observed
    among the followers the model did not flag (the inactivity rule has no measured error to correct).
    """
    n = sum(int(v) for v in counts.values())
    flagged = int(counts.get("fake", 0))
    population = design.fpc_population if design is not None else None
    errs = {k: int(error_counts[k]) for k in ("tp", "fn", "tn", "fp")}
    rng = np.random.default_rng(seed + 1)
    if fake is None:
        acc = adjusted_count(flagged, n, **errs, confidence=confidence, population=population, seed=seed)
        out: dict[str, dict[str, Any]] = {"fake": {**acc.to_dict(), "estimator": "adjusted"}}
        fake_draws = _acc_draws(flagged, n, errs, population, rng)
    else:
        acc, name, fake_draws = fake
        out = {"fake": {**acc.to_dict(), "estimator": name}}
    if probabilities is not None and probabilities[0].sum() > 0:
        pcc = probabilistic_count_from_histogram(*probabilities, confidence=confidence, seed=seed)
        out["fake"]["probabilistic"] = {**pcc.to_dict(), "estimator": "probabilistic"}
    inactive, real = int(counts.get("inactive", 0)), int(counts.get("real", 0))
    rest = inactive + real
    ratio = rng.beta(inactive + 0.5, real + 0.5, size=fake_draws.size) if rest else np.zeros(fake_draws.size)
    point_ratio = inactive / rest if rest else 0.0
    method = (
        "the rest after the corrected fake share, split in the observed inactive:real ratio; "
        f"bootstrap {confidence_label(confidence)} interval"
    )
    for label, share_draws, point in (
        ("inactive", (1.0 - fake_draws) * ratio, (1.0 - acc.share) * point_ratio),
        ("real", (1.0 - fake_draws) * (1.0 - ratio), (1.0 - acc.share) * (1.0 - point_ratio)),
    ):
        low, high = _interval(share_draws, point, confidence)
        out[label] = {"share": point, "low": low, "high": high, "method": method, "estimator": "remainder"}
    return out


def _acc_draws(flagged: int, n: int, counts: dict[str, int], population: int | None, rng: np.random.Generator) -> np.ndarray:
    p_obs = _observed_draws(flagged, n, rng, DRAWS, population)
    se = rng.beta(counts["tp"] + 0.5, counts["fn"] + 0.5, size=DRAWS)
    sp = rng.beta(counts["tn"] + 0.5, counts["fp"] + 0.5, size=DRAWS)
    denom = se + sp - 1.0
    ok = denom > 0.05
    return np.clip((p_obs[ok] + sp[ok] - 1.0) / denom[ok], 0.0, 1.0)
