"""Comparison: percentile among workspace accounts of similar size and against published figures."""

from __future__ import annotations

import polars as pl
import pytest

from followaudit.estimate import Share
from followaudit.reach.comparison import (
    comparison_section,
    mid_rank_percentile,
    percentile_range,
    reference_comparison,
    reference_table,
)
from followaudit.store import Store


def shares(fake: float, lo: float, hi: float, inactive: float = 0.1) -> dict[str, Share]:
    m = "Wilson score 95% interval"
    return {"fake": Share("fake", fake, lo, hi, 0, 1, m), "inactive": Share("inactive", inactive, 0, 1, 0, 1, m),
            "real": Share("real", 1 - fake - inactive, 0, 1, 0, 1, m)}


def test_reference_table_has_a_source_url_and_date_for_every_row() -> None:
    table = reference_table()
    assert table.height >= 1
    for column in ("source", "url", "published", "quote", "value"):
        assert table[column].null_count() == 0, column
    assert table["url"].str.starts_with("https://").all()
    assert ((table["value"] > 0) & (table["value"] < 1)).all()


def test_percentile_range_by_hand() -> None:
    mega = [(0.0, 0.10, 0.221), (0.10, 0.20, 0.476), (0.20, 1.0, 0.304)]
    assert percentile_range(mega, 0.05) == pytest.approx((0.0, 0.221))
    assert percentile_range(mega, 0.15) == pytest.approx((0.221, 0.697))
    assert percentile_range(mega, 0.5) == pytest.approx((0.697, 1.0))
    nano = [(0.0, 0.10, 0.47)]  # only "< 10%" is published: the rest is one unknown bucket
    assert percentile_range(nano, 0.02) == pytest.approx((0.0, 0.47))
    assert percentile_range(nano, 0.3) == pytest.approx((0.47, 1.0))
    assert percentile_range([], 0.3) is None


def test_reference_comparison_for_instagram_tiers_and_twitter() -> None:
    nano = reference_comparison("instagram", 3_000, shares(0.05, 0.03, 0.08))
    row = nano["rows"][0]
    assert nano["available"] and row["percentile_range"] == pytest.approx([0.0, 0.47])
    assert row["percentile_range_interval"] == pytest.approx([0.0, 0.47]) and "Heepsy" in row["source"]
    straddle = reference_comparison("instagram", 2_000_000, shares(0.15, 0.08, 0.25))["rows"][0]
    assert straddle["percentile_range"] == pytest.approx([0.221, 0.697])
    assert straddle["percentile_range_interval"] == pytest.approx([0.0, 1.0])
    twitter = reference_comparison("twitter", 4_000, shares(0.25, 0.2, 0.3))
    base = [r for r in twitter["rows"] if r["metric"] == "platform_prevalence"][0]
    assert base["difference"] == pytest.approx(0.25 - 0.1942)
    big = reference_comparison("twitter", 90_000_000, shares(0.30, 0.28, 0.32, inactive=0.2))
    median = [r for r in big["rows"] if r["metric"] == "median"][0]
    assert median["account_share"]["share"] == pytest.approx(0.5)  # fake + inactive, as SparkToro counts
    assert median["difference"] == pytest.approx(0.5 - 0.41)
    none = reference_comparison("mastodon", 500, shares(0.1, 0.05, 0.2))
    assert none["available"] is False and "mastodon" in none["missing"]


def test_mid_rank_percentile() -> None:
    assert mid_rank_percentile([0.1, 0.2, 0.3, 0.4], 0.25) == 0.5
    assert mid_rank_percentile([0.1, 0.2, 0.2, 0.4], 0.2) == pytest.approx((1 + 0.5 * 2) / 4)


def _labelled(store: Store, account: str, followers: int, fake: int, n: int = 100) -> int:
    sid = store.create_snapshot(platform="twitter", account=account, source="t", followers_reported=followers)
    ids = [f"{account}-{i}" for i in range(n)]
    store.replace_followers(sid, pl.DataFrame({"follower_id": ids}))
    store.save_labels(sid, "rules", pl.DataFrame(
        {"follower_id": ids, "label": ["fake"] * fake + ["real"] * (n - fake), "probability": [None] * n, "reasons": [[]] * n},
        schema_overrides={"probability": pl.Float64, "reasons": pl.List(pl.Utf8)}))
    return sid


def test_workspace_percentile_among_similar_sized_accounts(tmp_path) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        for i, fake in enumerate((10, 20, 30, 40)):
            _labelled(store, f"peer{i}", 5_000, fake)
        _labelled(store, "giant", 5_000_000, 90)  # not similar in size: left out
        _labelled(store, "acme", 4_000, 5)  # an older snapshot of the account itself: left out
        section = comparison_section(store, account="acme", platform="twitter", followers=4_000, method="rules",
                                     shares=shares(0.25, 0.15, 0.35))
        w = section["workspace"]
        assert section["available"] and w["available"] and w["peers"] == 4
        assert w["percentile"] == 0.5 and w["percentile_low"] == 0.25 and w["percentile_high"] == 0.75
        assert w["peer_median_fake_share"] == pytest.approx(0.25)
        alone = comparison_section(store, account="giant", platform="twitter", followers=5_000_000, method="rules",
                                   shares=shares(0.9, 0.8, 0.95))
        assert alone["workspace"]["available"] is False and "at least 3" in alone["workspace"]["missing"]
