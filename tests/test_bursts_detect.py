"""Burst detection on constructed follower sequences with known bought bricks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from followaudit.bursts import Burst, BurstParams, burst_membership, detect_bursts, scan_bursts
from followaudit.bursts.harness import sequence_with_bricks as build
from followaudit.errors import InputError

TS = pl.Datetime("us", "UTC")


@pytest.fixture(scope="module")
def two_bricks() -> pl.DataFrame:
    return build(30_000, [(8_000, 400, 200, 5), (20_000, 1_500, 30, 20)], seed=11)


def test_finds_each_brick_with_its_exact_ranks(two_bricks):
    bursts = detect_bursts(two_bricks)
    assert len(bursts) == 2
    for burst, brick in zip(bursts, (1, 2), strict=True):
        ranks = two_bricks.filter(pl.col("brick") == brick)["follow_rank"]
        assert burst.start_rank == ranks.min()
        assert burst.end_rank == ranks.max()
        assert burst.burst_id == brick
        assert burst.size >= ranks.len()
        assert burst.expected < 0.2 * burst.size
        assert burst.score > 25
        assert burst.fake_share is None  # no labels given
        assert burst.followed_from is not None and burst.followed_from >= burst.created_to


def test_membership_is_the_brick(two_bricks):
    bursts = detect_bursts(two_bricks)
    members = burst_membership(two_bricks, bursts).join(two_bricks.select("follower_id", "brick"), on="follower_id")
    assert members.columns == ["follower_id", "burst_id", "brick"]
    truth = two_bricks.filter(pl.col("brick") > 0)
    assert members.filter(pl.col("brick") > 0).height == truth.height  # every bought follower
    assert (members["burst_id"] == members["brick"]).filter(members["brick"] > 0).all()
    assert members.filter(pl.col("brick") == 0).height <= 5  # organic followers inside the rectangles


def test_organic_only_has_no_burst():
    frame = build(40_000, [], seed=5)
    scan = scan_bursts(frame)
    assert scan.bursts == []
    assert scan.followers_scanned == 40_000


def test_fresh_accounts_at_the_crust_are_found():
    frame = build(25_000, [(12_000, 600, 0.5, 2)], seed=3)
    bursts = detect_bursts(frame)
    assert len(bursts) == 1
    assert bursts[0].start_rank == 12_000 and bursts[0].end_rank == 12_599


def test_back_to_back_bricks_stay_apart():
    frame = build(20_000, [(10_000, 500, 400, 3), (10_000, 500, 90, 3)], seed=8)
    bursts = detect_bursts(frame)
    assert [b.size for b in bursts] == [500, 500]
    assert bursts[0].end_rank + 1 == bursts[1].start_rank or bursts[1].end_rank + 1 == bursts[0].start_rank


def test_fake_share_from_labels(two_bricks):
    labelled = two_bricks.with_columns(
        pl.when(pl.col("brick") == 1).then(pl.lit("fake")).when(pl.col("brick") == 2).then(pl.lit("real")).otherwise(pl.lit("real")).alias("label")
    )
    first, second = detect_bursts(labelled)
    assert first.fake_share == pytest.approx(1.0, abs=0.01)
    assert first.fake_share_low < first.fake_share <= first.fake_share_high <= 1.0
    assert second.fake_share == pytest.approx(0.0, abs=0.01)


def test_order_of_rows_and_missing_dates_do_not_matter(two_bricks):
    base = detect_bursts(two_bricks)
    shuffled = two_bricks.sample(fraction=1.0, shuffle=True, seed=1)
    gaps = shuffled.with_columns(
        pl.when(pl.col("follow_rank") % 97 == 0).then(None).otherwise(pl.col("created_at")).alias("created_at")
    )
    scan = scan_bursts(gaps)
    assert scan.followers_skipped == gaps["created_at"].null_count()
    assert [(b.start_rank, b.end_rank) for b in scan.bursts] == [(b.start_rank, b.end_rank) for b in base]
    assert [(b.start_rank, b.end_rank) for b in detect_bursts(shuffled)] == [(b.start_rank, b.end_rank) for b in base]


def test_burst_record_and_reason(two_bricks):
    burst = detect_bursts(two_bricks)[0]
    doc = burst.to_dict()
    json.dumps(doc)
    assert set(doc) >= {"start_rank", "end_rank", "size", "created_from", "created_to", "followed_from", "followed_to", "fake_share", "score", "burst_id", "reason"}
    assert burst.reason().startswith(f"in burst #1: {burst.size:,} followers created ")
    assert burst.reason().endswith("followed consecutively")
    with pytest.raises(AttributeError):
        burst.size = 3  # frozen


def test_scan_report_shape(two_bricks):
    doc = scan_bursts(two_bricks, BurstParams(min_size=200)).to_dict()
    json.dumps(doc)
    assert doc["params"]["min_size"] == 200 and len(doc["bursts"]) == 2 and doc["method"]


def test_min_size_is_respected(two_bricks):
    assert [b.size for b in detect_bursts(two_bricks, min_size=1_000)] == [1_500]


def test_no_follow_order_is_an_input_error():
    frame = pl.DataFrame({"follower_id": ["a", "b"], "follow_rank": [None, None], "created_at": [datetime(2020, 1, 1, tzinfo=UTC)] * 2},
                         schema={"follower_id": pl.Utf8, "follow_rank": pl.Int64, "created_at": TS})
    with pytest.raises(InputError) as err:
        detect_bursts(frame)
    assert "follow order" in err.value.message and err.value.hint


def test_tiny_and_empty_inputs():
    assert detect_bursts(build(50, [], seed=1)) == []
    empty = pl.DataFrame(schema={"follower_id": pl.Utf8, "follow_rank": pl.Int64, "created_at": TS})
    assert detect_bursts(empty) == []
    assert burst_membership(empty, []).columns == ["follower_id", "burst_id"]


def test_unknown_parameter_is_rejected(two_bricks):
    with pytest.raises(TypeError):
        detect_bursts(two_bricks, window=3)


def test_burst_is_constructible_from_the_issue_fields():
    b = Burst(0, 9, 10, datetime(2013, 1, 25, tzinfo=UTC), datetime(2013, 2, 13, tzinfo=UTC), None, None, None, 40.0)
    assert b.span == 10 and b.burst_id == 0


def test_day_resolution_creation_dates_like_mastodon():
    # Mastodon gives account creation as a date (midnight UTC); a batch is then many identical dates
    frame = build(15_000, [(6_000, 300, 40, 2)], seed=12).with_columns(pl.col("created_at").dt.truncate("1d"))
    [burst] = detect_bursts(frame)
    assert (burst.start_rank, burst.end_rank) == (6_000, 6_299)
    assert burst.created_from.hour == 0 and (burst.created_to - burst.created_from).days <= 2


def test_identical_creation_times_and_partial_labels():
    frame = build(12_000, [(5_000, 250, 10, 0)], seed=13)  # zero-width window: one timestamp
    labels = pl.when(pl.col("brick") > 0).then(pl.when(pl.col("follow_rank") % 2 == 0).then(pl.lit("fake")))
    labelled = frame.with_columns(labels.alias("label"))
    [burst] = detect_bursts(labelled)
    members = burst_membership(labelled, [burst]).join(labelled, on="follower_id")
    assert members.filter(pl.col("brick") > 0).height == 250
    assert members.filter(pl.col("brick") == 0).height <= 2  # an organic stray or two within days
    assert burst.fake_share == pytest.approx(1.0)  # only labelled members count
    assert burst.fake_share_low is not None and burst.fake_share_low > 0.9
