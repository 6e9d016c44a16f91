"""Follow-time lower bound (Meeder et al. 2011): running max of creation dates in follow order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followaudit.bursts import estimate_follow_times
from followaudit.errors import MissingColumnsError

T0 = datetime(2015, 1, 1, tzinfo=UTC)


def frame(ranks, created):
    return pl.DataFrame(
        {"follower_id": [str(i) for i in range(len(ranks))], "follow_rank": ranks, "created_at": created},
        schema={"follower_id": pl.Utf8, "follow_rank": pl.Int64, "created_at": pl.Datetime("us", "UTC")},
    )


def test_exact_on_constructed_case():
    days = [0, 5, 3, 10, 2, 10, 11]
    out = estimate_follow_times(frame(list(range(7)), [T0 + timedelta(days=d) for d in days]))
    expected = [0, 5, 5, 10, 10, 10, 11]
    assert out["followed_at_lower"].to_list() == [T0 + timedelta(days=d) for d in expected]


def test_tight_where_a_new_account_follows_at_once():
    # each new maximum is an account that followed right after joining: the bound equals its creation
    created = [T0, T0 + timedelta(days=1), T0 - timedelta(days=300), T0 + timedelta(days=2)]
    out = estimate_follow_times(frame([0, 1, 2, 3], created))
    assert out["followed_at_lower"][1] == created[1]
    assert out["followed_at_lower"][3] == created[3]
    assert out["followed_at_lower"][2] == created[1]


def test_rows_keep_their_order_when_input_is_newest_first():
    days = [9, 1, 4, 0]  # ranks 3, 2, 1, 0: API order
    out = estimate_follow_times(frame([3, 2, 1, 0], [T0 + timedelta(days=d) for d in days]))
    assert out["follow_rank"].to_list() == [3, 2, 1, 0]
    assert out["followed_at_lower"].to_list() == [T0 + timedelta(days=d) for d in (9, 4, 4, 0)]


def test_missing_creation_and_rank():
    out = estimate_follow_times(frame([0, 1, None, 2], [T0 + timedelta(days=3), None, T0, T0 + timedelta(days=1)]))
    # no creation date: still bounded by earlier followers; no rank: cannot be placed
    assert out["followed_at_lower"].to_list() == [T0 + timedelta(days=3), T0 + timedelta(days=3), None, T0 + timedelta(days=3)]


def test_account_creation_is_a_bound_too():
    out = estimate_follow_times(frame([0, 1], [T0, T0 + timedelta(days=10)]), account_created_at=T0 + timedelta(days=5))
    assert out["followed_at_lower"].to_list() == [T0 + timedelta(days=5), T0 + timedelta(days=10)]


def test_naive_datetimes_are_taken_as_utc():
    f = pl.DataFrame({"follow_rank": [0, 1], "created_at": [datetime(2020, 1, 2), datetime(2020, 1, 1)]})
    out = estimate_follow_times(f)
    assert out["followed_at_lower"].to_list() == [datetime(2020, 1, 2, tzinfo=UTC)] * 2


def test_needs_rank_and_creation():
    with pytest.raises(MissingColumnsError) as err:
        estimate_follow_times(pl.DataFrame({"follower_id": ["a"], "created_at": [T0]}))
    assert "follow_rank" in err.value.message
    assert err.value.hint


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=200), st.randoms(use_true_random=False))
def test_monotone_never_before_creation_and_minimal(days, rnd):
    ranks = list(range(len(days)))
    rnd.shuffle(ranks)  # rows in any order
    f = frame(ranks, [T0 + timedelta(days=d) for d in days])
    out = estimate_follow_times(f).sort("follow_rank")
    lower = out["followed_at_lower"]
    created = out["created_at"]
    assert (lower.diff().drop_nulls().dt.total_microseconds() >= 0).all()  # monotone in follow order
    assert (lower >= created).all()  # never before the follower existed
    # minimal: every bound is some earlier-or-same follower's creation date
    running = np.maximum.accumulate(created.dt.epoch("us").to_numpy())
    assert lower.dt.epoch("us").to_list() == running.tolist()
