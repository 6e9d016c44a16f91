import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followaudit.estimate import (
    estimate_shares,
    fpc_factor,
    shares_from_counts,
    wilson,
)
from followaudit.schema import SampleDesign


def test_wilson_hand_computed():
    # 8 of 20 at 95%: the textbook Wilson interval is (0.2188, 0.6134).
    low, high = wilson(8, 20, 0.95)
    assert low == pytest.approx(0.2188, abs=1e-4)
    assert high == pytest.approx(0.6134, abs=1e-4)


def test_wilson_extremes_stay_in_unit_interval():
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10)[1] == 1.0
    low, high = wilson(0, 10)
    assert high == pytest.approx(0.2775, abs=1e-4)  # 3.84/(10+3.84)


def test_finite_population_correction_shrinks_and_vanishes_for_a_census():
    plain = wilson(100, 400, 0.95)
    corrected = wilson(100, 400, 0.95, population=500)
    assert corrected[1] - corrected[0] < plain[1] - plain[0]
    # f = (N - n)/(N - 1): 100/499 -> the half-width scales by about sqrt(f)
    ratio = (corrected[1] - corrected[0]) / (plain[1] - plain[0])
    assert ratio == pytest.approx(math.sqrt(100 / 499), rel=0.05)
    census = wilson(100, 500, 0.95, population=500)
    assert census == pytest.approx((0.2, 0.2))
    assert fpc_factor(500, 500) == 0.0
    assert fpc_factor(10, None) == 1.0


def test_estimate_shares_names_the_method_and_design():
    labels = pl.Series(["fake"] * 30 + ["inactive"] * 20 + ["real"] * 50)
    shares = estimate_shares(labels, 0.9, SampleDesign("uniform", 100, 10_000, 3))
    assert shares["fake"].share == 0.3 and shares["fake"].count == 30
    assert "finite-population correction" in shares["fake"].method
    assert "100 sampled uniformly of 10,000" in shares["fake"].method
    assert "Wilson score 90% interval" in estimate_shares(labels, 0.9)["real"].method


def test_sample_size_for_precision():
    from followaudit.errors import InputError
    from followaudit.estimate.sample_design import sample_size

    # z=1.96, h=0.02: n0 = 1.96^2/(4*0.0004) = 2400.9 -> 2401
    assert sample_size(0.02) == 2401
    # with N = 10,000: 2400.9/(1 + 2399.9/10000) = 1936.3 -> 1937
    assert sample_size(0.02, 10_000) == 1937
    assert sample_size(0.02, 500) <= 500
    with pytest.raises(InputError):
        sample_size(0.7)


counts = st.tuples(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 5000)).filter(lambda t: sum(t) > 0)


@settings(max_examples=200, deadline=None)
@given(counts, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_interval_contains_share_and_shares_sum_to_one(c, confidence):
    shares = shares_from_counts(dict(zip(("fake", "inactive", "real"), c, strict=True)), confidence)
    assert sum(s.share for s in shares.values()) == pytest.approx(1.0)
    for s in shares.values():
        assert 0.0 <= s.low <= s.share <= s.high <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2000), st.floats(0.0, 1.0), st.integers(2, 20))
def test_interval_narrows_as_n_grows(n, p, factor):
    k = round(p * n)
    small = wilson(k, n)
    big = wilson(k * factor, n * factor)
    assert big[1] - big[0] < small[1] - small[0]


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 3000), st.integers(1, 100), st.floats(0.0, 1.0))
def test_fpc_interval_is_never_wider_than_plain(n, extra, p):
    k = round(p * n)
    plain = wilson(k, n)
    corrected = wilson(k, n, population=n + extra)
    assert corrected[1] - corrected[0] <= plain[1] - plain[0] + 1e-12
    assert corrected[0] <= k / n <= corrected[1]
