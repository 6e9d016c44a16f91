"""Misclassification-corrected fake shares: hand-computed cases, clamping, intervals."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from followaudit.estimate import wilson
from followaudit.estimate.corrected import (
    adjusted_count,
    corrected_shares,
    probabilistic_count,
    rogan_gladen,
)
from followaudit.schema import SampleDesign


def test_rogan_gladen_hand_computed() -> None:
    # (0.30 + 0.95 - 1) / (0.90 + 0.95 - 1) = 0.25 / 0.85
    assert rogan_gladen(0.30, 0.90, 0.95) == pytest.approx(0.25 / 0.85, abs=1e-12)
    # a perfect classifier needs no correction
    assert rogan_gladen(0.42, 1.0, 1.0) == pytest.approx(0.42)
    # (0.5 + 0.8 - 1) / (0.7 + 0.8 - 1) = 0.3 / 0.5
    assert rogan_gladen(0.5, 0.7, 0.8) == pytest.approx(0.6)


def test_rogan_gladen_clamps_to_unit_interval() -> None:
    # fewer flags than the false-positive rate alone would give: raw formula is negative
    assert (0.02 + 0.97 - 1) / (0.9 + 0.97 - 1) < 0
    assert rogan_gladen(0.02, 0.90, 0.97) == 0.0
    # more flags than sensitivity allows: raw formula is above 1
    assert (0.99 + 0.99 - 1) / (0.95 + 0.99 - 1) > 1
    assert rogan_gladen(0.99, 0.95, 0.99) == 1.0
    arr = rogan_gladen(np.array([0.0, 0.5, 1.0]), 0.9, 0.9)
    assert arr.tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_rogan_gladen_refuses_a_chance_classifier() -> None:
    with pytest.raises(ValueError, match="exceed 1"):
        rogan_gladen(0.3, 0.5, 0.5)


def test_adjusted_count_point_is_rogan_gladen_of_the_counts() -> None:
    est = adjusted_count(300, 1000, tp=90, fn=10, tn=95, fp=5)
    assert est.share == pytest.approx(rogan_gladen(0.3, 0.9, 0.95))
    assert est.low <= est.share <= est.high
    assert "Rogan" in est.method and "95%" in est.method


def test_adjusted_interval_carries_the_uncertainty_of_sensitivity_and_specificity() -> None:
    # same rates, 100x fewer validation accounts: the interval must widen
    precise = adjusted_count(300, 1000, tp=9000, fn=1000, tn=9500, fp=500)
    vague = adjusted_count(300, 1000, tp=90, fn=10, tn=95, fp=5)
    assert precise.share == pytest.approx(vague.share)
    assert (vague.high - vague.low) > 1.3 * (precise.high - precise.low)
    # with near-perfect, very well measured error rates it is close to the sampling interval alone
    near = adjusted_count(300, 1000, tp=10**6, fn=1, tn=10**6, fp=1)
    lo, hi = wilson(300, 1000)
    assert near.low == pytest.approx(lo, abs=0.006) and near.high == pytest.approx(hi, abs=0.006)


def test_adjusted_count_clamped_estimate_keeps_a_valid_interval() -> None:
    est = adjusted_count(10, 1000, tp=95, fn=5, tn=97, fp=3)  # 1% flagged < 3% false-positive rate
    assert est.share == 0.0
    assert est.low == 0.0 and 0.0 < est.high < 0.05


def test_adjusted_count_full_population_has_no_sampling_error() -> None:
    sampled = adjusted_count(300, 1000, tp=10**6, fn=1, tn=10**6, fp=1, population=10**6)
    census = adjusted_count(300, 1000, tp=10**6, fn=1, tn=10**6, fp=1, population=1000)
    assert census.high - census.low < 0.002
    assert sampled.high - sampled.low > 0.04


def test_adjusted_count_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        adjusted_count(5, 0, tp=1, fn=1, tn=1, fp=1)
    with pytest.raises(ValueError):
        adjusted_count(11, 10, tp=1, fn=1, tn=1, fp=1)


def test_probabilistic_count_is_the_mean_probability() -> None:
    p = np.array([0.1, 0.2, 0.9] * 100)
    est = probabilistic_count(p)
    assert est.share == pytest.approx(0.4)
    assert est.low < 0.4 < est.high
    # bootstrap sd of a mean ≈ sd / sqrt(n): the 95% interval is about ±1.96 of that
    half = 1.96 * p.std() / math.sqrt(p.size)
    assert (est.high - est.low) / 2 == pytest.approx(half, rel=0.15)
    constant = probabilistic_count(np.full(500, 0.25))
    assert constant.share == pytest.approx(0.25)
    assert constant.high - constant.low < 1e-9


def test_corrected_shares_shape_and_sum() -> None:
    labels = pl.DataFrame(
        {
            "label": ["fake"] * 300 + ["inactive"] * 200 + ["real"] * 500,
            "probability": [0.9] * 300 + [0.05] * 700,
        }
    )
    counts = {"tp": 900, "fn": 100, "tn": 950, "fp": 50}
    out = corrected_shares(labels, counts, design=SampleDesign())
    assert set(out) == {"fake", "inactive", "real"}
    assert out["fake"]["share"] == pytest.approx(rogan_gladen(0.3, 0.9, 0.95))
    assert sum(v["share"] for v in out.values()) == pytest.approx(1.0)
    # inactive:real keep their observed 2:5 ratio
    assert out["inactive"]["share"] / out["real"]["share"] == pytest.approx(0.4)
    for v in out.values():
        assert v["low"] <= v["share"] <= v["high"] and v["method"]
    assert out["fake"]["probabilistic"]["share"] == pytest.approx(0.3 * 0.9 + 0.7 * 0.05)
