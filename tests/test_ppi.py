"""The reviewed-sample estimator: PPI++ against ppi-python, power tuning, FPC, strata, coverage."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from followaudit.estimate.intervals import z_value
from followaudit.estimate.ppi import (
    cohens_kappa,
    ppi_lambda,
    ppi_mean,
    reviews_to_halve,
    stratified_mean,
    t_quantile,
    weighted_rate,
)
from followaudit.estimate.review_harness import coverage
from followaudit.estimate.reviewed import reviewed_section


def _data(seed: int, n: int = 400, big_n: int = 200_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth_all = rng.random(big_n) < 0.2
    pred_all = np.where(truth_all, rng.random(big_n) < 0.85, rng.random(big_n) < 0.25)  # specificity 0.75
    idx = rng.choice(big_n, n, replace=False)
    return truth_all[idx].astype(float), pred_all[idx].astype(float), pred_all.astype(float)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_ppi_python(seed: int) -> None:
    ppi_py = pytest.importorskip("ppi_py")  # the [eval] extra; not a runtime dependency
    y, f, f_all = _data(seed)
    p = f_all.mean()
    ours = ppi_mean(y, f, p, p * (1 - p), f_all.size, confidence=0.95)
    lam_ref = ppi_py.ppi.__dict__["_calc_lam_glm"](y - 0, f - 0, f_all - 0, np.eye(1), clip=True)  # centred grads
    assert ours.lam == pytest.approx(float(np.clip(lam_ref, 0, 1)), abs=2e-3)
    low, high = ppi_py.ppi_mean_ci(y, f, f_all, alpha=0.05, lam=ours.lam)
    centre = (float(low[0]) + float(high[0])) / 2
    assert ours.share == pytest.approx(centre, abs=1e-9)
    ref_var = ((float(high[0]) - float(low[0])) / (2 * z_value(0.95))) ** 2
    assert ours.variance == pytest.approx(ref_var, rel=1e-3)
    # our interval is the score form of the same variance: same width to within a few percent
    assert (ours.high - ours.low) == pytest.approx(float(high[0] - low[0]), rel=0.06)


def test_power_tuning_never_worse_than_classical() -> None:
    rng = np.random.default_rng(5)
    for trial in range(200):
        n = int(rng.integers(30, 300))
        y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(float)
        noise = rng.uniform(0, 1)  # from a useful model to a useless one
        f = np.where(rng.random(n) < noise, rng.random(n) < 0.5, y).astype(float)
        p = float(np.clip(f.mean() + rng.normal(0, 0.02), 0.01, 0.99))
        tuned = ppi_mean(y, f, p, p * (1 - p), 50_000)
        classical = ppi_mean(y, f, p, p * (1 - p), 50_000, lam=0.0)
        assert tuned.variance <= classical.variance + 1e-15, trial
        assert 0.0 <= tuned.lam <= 1.0


def test_useless_model_gets_lambda_near_zero_and_good_model_near_one() -> None:
    rng = np.random.default_rng(9)
    y = (rng.random(500) < 0.3).astype(float)
    assert ppi_lambda(y, (rng.random(500) < 0.5).astype(float), 0.25, 100_000) < 0.15
    assert ppi_lambda(y, y.copy(), 0.21, 100_000) > 0.95


def test_finite_population_correction() -> None:
    y, f, f_all = _data(4, n=300, big_n=2_000)
    p = f_all.mean()
    super_pop = ppi_mean(y, f, p, p * (1 - p), f_all.size)
    sampled = ppi_mean(y, f, p, p * (1 - p), f_all.size, population=2_500)  # 2,000 collected of 2,500
    assert sampled.variance < super_pop.variance
    # collected everyone and reviewed everyone: no uncertainty left
    everyone = ppi_mean(f_all, f_all, p, p * (1 - p), f_all.size, population=f_all.size)
    assert everyone.high - everyone.low < 1e-9


def test_stratified_weights_strata_by_population_not_by_reviews() -> None:
    # 900 followers the model calls fake (half truly fake), 9,100 it calls real (2% fake);
    # the sample over-represents the fake stratum 50:50.
    strata = np.array(["fake"] * 50 + ["real"] * 50)
    y = np.array([1.0] * 25 + [0.0] * 25 + [1.0] * 1 + [0.0] * 49)
    est = stratified_mean(y, strata, {"fake": 900, "real": 9_100})
    assert est.share == pytest.approx(0.09 * 0.5 + 0.91 * 0.02)
    assert est.low < est.share < est.high
    missing = stratified_mean(y[:50], strata[:50], {"fake": 900, "real": 9_100})
    assert (missing.low, missing.high) == (0.0, 1.0)  # a stratum without reviews: no claim


def test_sensitivity_is_design_weighted() -> None:
    # Stratified 50:50 as above. True fakes: 450 in the fake stratum (found) and 182 in the real one
    # (missed): sensitivity 450 / 632. Unweighted counting would say 25 / 26.
    strata = np.array(["fake"] * 50 + ["real"] * 50)
    truth = np.array([True] * 25 + [False] * 25 + [True] * 1 + [False] * 49)
    said = strata == "fake"
    weights = np.where(strata == "fake", 900 / 50, 9_100 / 50)
    sens = weighted_rate(truth & said, truth, weights, strata)
    assert sens["share"] == pytest.approx(450 / (450 + 182))
    assert sens["low"] < sens["share"] < sens["high"]
    plain = weighted_rate(truth & said, truth, np.ones(100), None)
    assert plain["share"] == pytest.approx(25 / 26)


def test_cohens_kappa_known_value() -> None:
    # Classic 2x2 example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no → kappa = 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    k = cohens_kappa(a, b)
    assert k is not None and k["kappa"] == pytest.approx(0.4)
    assert k["low"] < 0.4 < k["high"]


def test_reviews_to_halve_is_about_three_times_n() -> None:
    y, f, f_all = _data(7, n=100, big_n=1_000_000)
    p = f_all.mean()
    est = ppi_mean(y, f, p, p * (1 - p), f_all.size)
    more = reviews_to_halve(est)
    assert more is not None and 295 <= more <= 310  # 3n, plus a little for the model term
    assert reviews_to_halve(est, n_max=200) is None


def test_t_quantile() -> None:
    assert t_quantile(0.95, 10) == pytest.approx(2.228, abs=5e-3)
    assert t_quantile(0.95, 49) == pytest.approx(2.0096, abs=1e-3)
    assert t_quantile(0.95, math.inf) == pytest.approx(1.95996, abs=1e-4)


def test_cant_tell_is_counted_but_excluded() -> None:
    reviewed = pl.DataFrame({
        "label": ["fake"] * 10 + ["real"] * 25 + ["cant_tell"] * 5,
        "predicted": ["fake"] * 8 + ["real"] * 2 + ["real"] * 23 + ["fake"] * 2 + ["real"] * 5,
        "stratum": [None] * 40,
    }, schema_overrides={"stratum": pl.Utf8})
    out = reviewed_section(reviewed, {"fake": 300, "inactive": 0, "real": 700}, {"kind": "uniform"})
    assert out["n"] == 35 and out["cant_tell"] == 5
    assert "left out of the estimate" in out["note"]
    sens = out["model_on_this_audience"]["sensitivity"]
    assert sens["share"] == pytest.approx(0.8) and sens["n"] == 10


@pytest.mark.parametrize("design", ["uniform", "stratified"])
def test_coverage_with_a_biased_model(design: str) -> None:
    """The Done criterion, at test size: 95% intervals cover the truth ≥ 93% of the time at every n,
    although the model's own fake share is off by ~17 points (specificity 0.75).
    ``benchmarks/review_coverage.py`` runs the full table for the README."""
    for n in (50, 100, 200, 400):
        result = coverage(n, 300, design=design, population=5_000, seed=11)
        assert result.model_only_error > 0.12  # the model really is badly biased here
        for label, rate in result.coverage.items():
            assert rate >= 0.93, (design, n, label, rate)
