"""View inflation: per-item likes/comments per view against the channel's own distribution."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from followaudit.cli import cli
from followaudit.reach.views import flag_items, load_views, views_section
from followaudit.store import Store


def channel(tmp_path, n: int = 40):
    rng = np.random.default_rng(5)
    views = rng.integers(5_000, 50_000, n)
    likes = (views * rng.normal(0.04, 0.004, n)).astype(int)
    comments = (views * rng.normal(0.004, 0.0004, n)).astype(int)
    views[7] *= 30  # bought views: likes and comments stay where they were
    likes[19] *= 12  # bought likes
    frame = pl.DataFrame({"Video ID": [f"v{i:02d}" for i in range(n)],
                          "Video publish time": [f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}" for i in range(n)],
                          "Views": views, "Likes": likes, "Comments added": comments})
    path = tmp_path / "videos.csv"
    frame.write_csv(path)
    return path


def test_flags_inflated_views_and_bought_likes(tmp_path) -> None:
    loaded = load_views(channel(tmp_path))
    assert loaded.rejects.height == 0 and loaded.rows.height == 40
    flagged = flag_items(loaded.rows).filter(pl.col("flagged"))
    assert sorted(flagged["item_id"].to_list()) == ["v07", "v19"]
    by_id = {r["item_id"]: r for r in flagged.iter_rows(named=True)}
    assert "views look inflated" in by_id["v07"]["direction"] and by_id["v07"]["z_likes"] < -3.5
    assert "bought" in by_id["v19"]["direction"] and by_id["v19"]["z_likes"] > 3.5


def test_robust_z_of_the_log_ratio_by_hand() -> None:
    views = [1000] * 9
    likes = [39, 40, 41, 40, 40, 39, 41, 40, 2]
    out = flag_items(pl.DataFrame({"item_id": [str(i) for i in range(9)], "views": views, "likes": likes, "comments": [None] * 9},
                                  schema_overrides={"comments": pl.Int64}))
    x = np.log((np.array(likes) + 0.5) / 1000)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    assert out["z_likes"].to_list() == pytest.approx(list(0.6745 * (x - med) / mad))
    assert out["flagged"].to_list() == [False] * 8 + [True]
    assert out["z_comments"].null_count() == 9  # no comment counts: not judged on comments


def test_section_needs_enough_items_and_lists_rejects(tmp_path) -> None:
    few = pl.DataFrame({"item_id": ["a", "b"], "published": [None, None], "views": [10, 0], "likes": [1, 0], "comments": [0, 0]})
    assert views_section(few)["available"] is False
    assert "views FILE" in views_section(few.head(0))["missing"]
    bad = tmp_path / "bad.csv"
    bad.write_text("video_id,views,likes,comments\na,100,5,1\nb,lots,5,1\n")
    assert load_views(bad).rejects.select("line", "reason").rows() == [(3, "views is not a non-negative count")]


def test_views_cli_stores_items_for_the_report_and_draws(tmp_path) -> None:
    db = tmp_path / "w.duckdb"
    chart = tmp_path / "views.svg"
    got = CliRunner().invoke(cli, ["views", str(channel(tmp_path)), "--account", "chan", "--db", str(db),
                                   "--chart", str(chart), "--format", "json"])
    assert got.exit_code == 0, got.output
    out = json.loads(got.stdout)
    assert out["available"] and out["flagged_count"] == 2 and out["judged"] == 40
    assert chart.read_text().lstrip().startswith("<?xml")
    with Store(db) as store:
        assert store.view_items("chan").height == 40
        assert views_section(store.view_items("chan"))["flagged_count"] == 2
