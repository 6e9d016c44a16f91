"""Coverage harness for the reviewed-sample estimate: a biased model on a known audience, many seeds.

Each run draws an audience of ``population`` followers with known labels, a model that is biased on
it (by default it calls 25% of non-fake followers fake: specificity 0.75), a uniform or stratified
review sample of ``n``, and checks whether each share's interval covers the audience's true share.
Used by the test (few seeds) and ``benchmarks/review_coverage.py`` (the README table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..schema import LABELS
from .ppi import ShareEstimate
from .reviewed import share_estimates

TRUTH_SHARES = (0.2, 0.25, 0.55)  # fake, inactive, real


@dataclass(frozen=True)
class Coverage:
    n: int
    design: str
    runs: int
    coverage: dict[str, float]
    width: dict[str, float]
    model_only_error: float  # mean |model's raw fake share − truth|: how biased the model is


def biased_audience(rng: np.random.Generator, population: int, sensitivity: float = 0.85, specificity: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """True labels and the model's labels: fakes found with ``sensitivity``, others called fake with
    probability 1 − ``specificity``; otherwise inactive and real are swapped 15% of the time."""
    truth = rng.choice(np.array(LABELS), size=population, p=TRUTH_SHARES)
    u = rng.random(population)
    is_fake = truth == "fake"
    called_fake = np.where(is_fake, u < sensitivity, u < 1 - specificity)
    swapped = np.where(truth == "inactive", "real", "inactive")
    other = np.where(is_fake, rng.choice(np.array(["inactive", "real"]), size=population), np.where(rng.random(population) < 0.15, swapped, truth))
    predicted = np.where(called_fake, "fake", other)
    return truth, predicted


def draw_review(rng: np.random.Generator, predicted: np.ndarray, n: int, design: str) -> np.ndarray:
    """Positions of a uniform or proportionally stratified (at least 2 per stratum) sample."""
    if design == "uniform":
        return rng.choice(predicted.size, size=n, replace=False)
    picks = []
    sizes = {h: int((predicted == h).sum()) for h in LABELS}
    alloc = {h: max(2, round(n * s / predicted.size)) if s else 0 for h, s in sizes.items()}
    for h in LABELS:
        members = np.flatnonzero(predicted == h)
        picks.append(rng.choice(members, size=min(alloc[h], members.size), replace=False))
    return np.concatenate(picks)


def estimate_once(truth: np.ndarray, predicted: np.ndarray, picks: np.ndarray, design: str, confidence: float = 0.95) -> dict[str, ShareEstimate]:
    counts = {h: int((predicted == h).sum()) for h in LABELS}
    reviewed = pl.DataFrame({"label": truth[picks], "predicted": predicted[picks], "stratum": predicted[picks]})
    spec = {"kind": design, "strata": counts} if design == "stratified" else {"kind": "uniform"}
    return share_estimates(reviewed, counts, spec, confidence=confidence)


def coverage(n: int, runs: int, *, design: str = "uniform", population: int = 20_000, seed: int = 0, confidence: float = 0.95) -> Coverage:
    """Share of ``runs`` seeded audiences whose interval covers the true share, per label, and mean widths."""
    hits = {h: 0 for h in LABELS}
    widths = {h: 0.0 for h in LABELS}
    bias = 0.0
    for run in range(runs):
        rng = np.random.default_rng([seed, n, run])
        truth, predicted = biased_audience(rng, population)
        picks = draw_review(rng, predicted, n, design)
        est = estimate_once(truth, predicted, picks, design, confidence)
        for h in LABELS:
            true_share = float((truth == h).mean())
            hits[h] += est[h].low <= true_share <= est[h].high
            widths[h] += est[h].high - est[h].low
        bias += abs(float((predicted == "fake").mean() - (truth == "fake").mean()))
    return Coverage(n, design, runs, {h: hits[h] / runs for h in LABELS}, {h: widths[h] / runs for h in LABELS}, bias / runs)
