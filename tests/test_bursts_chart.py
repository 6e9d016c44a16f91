"""The follower-factory chart: PNG, SVG and offline HTML, scatter and density, and `followaudit chart`."""

from __future__ import annotations

import re

import polars as pl
import pytest

from followaudit.bursts import detect_bursts
from followaudit.bursts.harness import sequence_with_bricks as build
from followaudit.cli import main
from followaudit.errors import InputError
from followaudit.render.charts import (
    follower_factory_html,
    follower_factory_svg,
    write_follower_factory,
)
from followaudit.store import Store


@pytest.fixture(scope="module")
def labelled() -> pl.DataFrame:
    frame = build(6_000, [(3_000, 400, 100, 4)], seed=4)
    return frame.with_columns(pl.when(pl.col("brick") > 0).then(pl.lit("fake")).otherwise(pl.lit("real")).alias("label"))


def test_svg_is_inline_ready_with_burst_tooltips(labelled):
    bursts = detect_bursts(labelled)
    assert len(bursts) == 1
    svg = follower_factory_svg(labelled, bursts, title="acct")
    assert svg.startswith("<svg") and "<?xml" not in svg and "<!DOCTYPE" not in svg
    assert 'width="100%"' in svg and "viewBox" in svg
    assert re.search(r'<g id="burst-1">\s*<title>Burst #1: 400 followers created', svg)
    assert "(scatter)" in svg and "fake (400)" in svg


def test_density_above_max_points(labelled):
    svg = follower_factory_svg(labelled, detect_bursts(labelled), max_points=1_000)
    assert "(density)" in svg and "<image" in svg


def test_html_is_self_contained(labelled):
    page = follower_factory_html(labelled, detect_bursts(labelled), title="@acct <x>")
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "&lt;x&gt;" in page  # the title is escaped
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    assert '<table class="bursts">' in page and "#1" in page


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<svg"), (".html", b"<!doctype html>")])
def test_write_by_suffix(tmp_path, labelled, suffix, magic):
    path = write_follower_factory(tmp_path / f"chart{suffix}", labelled, detect_bursts(labelled))
    assert path.read_bytes().startswith(magic)


def test_unknown_suffix(tmp_path, labelled):
    with pytest.raises(InputError) as err:
        write_follower_factory(tmp_path / "chart.gif", labelled)
    assert ".png" in err.value.hint


def test_without_labels_or_bursts(tmp_path, labelled):
    svg = follower_factory_svg(labelled.drop("label"))
    assert "unlabelled (6,400)" in svg and "burst-" not in svg


def run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_chart_command(tmp_path, capsys, labelled):
    db = tmp_path / "w.duckdb"
    with Store(db) as store:
        sid = store.create_snapshot(platform="twitter", account="acct", source="test")
        store.replace_followers(sid, labelled.drop("label", "brick").with_columns(pl.lit("twitter").alias("platform")))
        store.save_labels(sid, "rules", labelled.select("follower_id", "label", pl.lit([], pl.List(pl.Utf8)).alias("reasons")))
        bare = store.create_snapshot(platform="twitter", account="unordered", source="test")
        store.replace_followers(bare, labelled.drop("label", "brick").with_columns(pl.lit(None, pl.Int64).alias("follow_rank")))
    out_file = tmp_path / "ff.html"
    code, out, err = run(capsys, "chart", "acct", "--kind", "follower-factory", "-o", str(out_file), "--db", str(db))
    assert code == 0, err
    assert out == ""  # messages go to stderr
    assert "stored rules labels" in err and "#1: ranks 3,000-3,399" in err
    assert "fake (400)" in out_file.read_text()

    code, out, err = run(capsys, "chart", "unordered", "-o", str(tmp_path / "x.png"), "--db", str(db))
    assert code == 1 and "no follow order" in err and not (tmp_path / "x.png").exists()

    code, out, err = run(capsys, "chart", "nobody", "-o", str(tmp_path / "x.png"), "--db", str(db))
    assert code == 1 and err.startswith("Error:")
