"""Count histories, robust z-scores and spikes (hand-computed), the growth commands and chart."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from followaudit.cli import cli
from followaudit.reach.growth import (
    bursts_beside_spikes,
    count_history,
    date_of_count,
    detect_spikes,
    growth_chart,
    growth_section,
    load_count_history,
    robust_z,
)
from followaudit.store import Store


def test_robust_z_hand_values() -> None:
    # median 3, |dev| = 2,1,0,1,97 -> MAD 1 -> z(100) = 0.6745 * 97
    z = robust_z(np.array([1, 2, 3, 4, 100]))
    assert z[-1] == pytest.approx(0.6745 * 97) and z[2] == 0.0
    # MAD 0: MeanAD fallback, mean |dev| = 4/5 -> z(9) = 4 / (1.253314 * 0.8)
    z = robust_z(np.array([5, 5, 5, 5, 9]))
    assert z[-1] == pytest.approx(4 / (1.253314 * 0.8))
    assert not robust_z(np.array([2, 2, 2])).any()


def weekly(gains: list[int], start: int = 10_000) -> pl.DataFrame:
    d0 = date(2024, 1, 7)
    counts = np.cumsum([start, *gains])
    return pl.DataFrame({"date": [d0 + timedelta(days=7 * i) for i in range(len(counts))], "followers": counts})


def test_a_planted_purchase_is_the_one_spike_and_a_purge_is_a_drop() -> None:
    rng = np.random.default_rng(3)
    gains = list(rng.poisson(140, 60))
    gains[30] += 5_000  # bought
    gains[45] = -2_000  # purged by the platform
    found = detect_spikes(weekly(gains))
    assert found["available"]
    assert [s["date"] for s in found["spikes"]] == [(date(2024, 1, 7) + timedelta(days=7 * 31)).isoformat()]
    spike = found["spikes"][0]
    assert spike["gain"] == gains[30] and spike["excess"] == pytest.approx(5_000, abs=60) and spike["days"] == 7
    assert [d["gain"] for d in found["drops"]] == [-2_000]


def test_steady_growth_with_poisson_noise_has_no_spikes() -> None:
    rng = np.random.default_rng(11)
    for lam in (3, 40, 2_000):  # a tiny, a small and a large account
        gains = list(rng.poisson(np.linspace(lam, 3 * lam, 200)).astype(int))
        assert detect_spikes(weekly(gains, start=50 * lam))["spikes"] == []


def test_gain_per_day_handles_irregular_gaps() -> None:
    hist = pl.DataFrame({"date": [date(2025, 1, 1) + timedelta(days=d) for d in (0, 1, 2, 4, 5, 6, 7, 8, 10, 11)],
                         "followers": [100, 110, 120, 140, 150, 160, 170, 180, 200, 210]})
    found = detect_spikes(hist)
    assert found["available"] and found["spikes"] == []  # 20 in 2 days is the usual 10 per day
    assert found["median_gain_per_day"] == pytest.approx(10.0)
    assert detect_spikes(hist.head(5))["available"] is False


def test_date_of_count_and_bursts_beside_spikes() -> None:
    gains = [10] * 20
    gains[10] = 1_000
    hist = weekly(gains, start=100)
    spike_date = hist["date"][11]
    assert date_of_count(hist, 300) == (hist["date"][10], hist["date"][11])
    assert date_of_count(hist, 10**9) == (None, None)
    spikes = detect_spikes(hist)["spikes"]
    assert [s["date"] for s in spikes] == [spike_date.isoformat()]
    bursts = [{"burst_id": 1, "size": 950, "start_rank": 210, "end_rank": 1_150, "followed_from": None, "followed_to": None},
              {"burst_id": 2, "size": 120, "start_rank": 20, "end_rank": 140, "followed_from": None, "followed_to": None}]
    side = bursts_beside_spikes(bursts, spikes, hist)
    assert side[0]["matching_spikes"] == [spike_date.isoformat()]
    assert side[1]["matching_spikes"] == []


def test_load_count_history_rejects_and_aliases(tmp_path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("Date,Followers\n2025-01-01,100\n2025-01-02,\"1,100\"\nnot a date,5\n2025-01-03,-1\n2025-01-02,7\n")
    loaded = load_count_history(path)
    assert loaded.rows.rows() == [(date(2025, 1, 1), 100), (date(2025, 1, 2), 1100)]
    assert loaded.rejects["reason"].to_list() == ["unreadable date", "followers is not a non-negative count", "duplicate date"]


def test_history_merges_imports_and_snapshots_and_the_cli(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    csv = tmp_path / "history.csv"
    gains = [20] * 30
    gains[12] = 2_000
    weekly(gains, start=1_000).write_csv(csv)
    with Store(db) as store:
        sid = store.create_snapshot(platform="twitter", account="acme", source="t", followers_reported=5_000)
        store.replace_followers(sid, pl.DataFrame({"follower_id": ["1", "2"]}))
    runner = CliRunner()
    got = runner.invoke(cli, ["growth", "import", str(csv), "--account", "@acme", "--db", str(db), "--format", "json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout) == {"account": "acme", "points": 31, "rejects": {"count": 0, "first": None}}
    with Store(db) as store:
        hist = count_history(store, "acme")
        assert hist.height == 32 and hist["followers"][-1] == 5_000 and hist["source"][-1].startswith("snapshot")
        section = growth_section(store, "acme")
        assert section["available"] and len(section["spikes"]) == 1 and section["spikes"][0]["gain"] == 2_000
        assert "bursts_missing" in section
        assert growth_section(store, "nobody")["available"] is False
    chart = tmp_path / "growth.png"
    got = runner.invoke(cli, ["growth", "show", "acme", "--db", str(db), "--chart", str(chart)])
    assert got.exit_code == 0, got.output
    assert "spikes in gains" in got.stdout and "+2,000 followers" in got.stdout
    assert chart.read_bytes()[:4] == b"\x89PNG"
    svg = growth_chart(weekly(gains), tmp_path / "g.svg")
    assert svg.read_text().lstrip().startswith("<?xml")
