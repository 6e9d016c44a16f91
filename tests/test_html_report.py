"""The self-contained HTML report, the static charts, and `followaudit report`."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from webdb import HOSTILE_ACCOUNT, build_demo_db

from followaudit.cli import cli
from followaudit.render.html import render_html
from followaudit.render.jsonout import render_json
from followaudit.render.static_charts import (
    report_charts,
    series_in,
    shares_figure,
    to_png,
    write_charts,
)
from followaudit.report import Report
from followaudit.store import Store
from followaudit.web.data import build_audit, factory_frame


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("html") / "html.duckdb"
    return path, build_demo_db(path, n=1200)


@pytest.fixture(scope="module")
def report(demo) -> Report:
    path, ids = demo
    with Store(path, read_only=True) as store:
        return build_audit(store, ids["a"]).report


def _external_refs(html: str) -> list[str]:
    return re.findall(r'(?:src|href)\s*=\s*"((?:https?:)?//[^"]*)"', html)


def test_html_is_self_contained_and_shows_the_numbers(report: Report) -> None:
    html = render_html(report)
    assert "<script" not in html.lower()
    assert _external_refs(html) == []
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    for share in report.shares.values():
        assert f"{100 * share.share:.1f}%" in html
        assert f"{100 * share.low:.1f}% – {100 * share.high:.1f}%" in html
    assert share.method in html
    for reason, _ in report.top_reasons:
        assert reason in html
    assert "What these numbers mean and do not mean" in html
    assert "No engagement data" in html  # no posts in this workspace
    assert "No growth data" not in html and "followers first" in html  # two snapshots make a history
    assert ('id="bursts-table"' if report.bursts else 'id="bursts-empty"') in html
    assert 'id="bursts-none"' in render_html(replace(report, bursts=None), charts={})  # not analysed
    assert 'id="bursts-empty"' in render_html(replace(report, bursts=[]), charts={})  # analysed, none found


def test_optional_sections_render_when_present(report: Report) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    growth = {"history": [{"date": (t0 + timedelta(days=i)).isoformat(), "followers": 1000 + 10 * i} for i in range(30)], "spikes": []}
    engagement = {"available": True, "engagement_rate": 0.0123, "posts": 40}
    fuller = replace(
        report,
        corrected={"fake": {"share": 0.31, "low": 0.27, "high": 0.35, "method": "Rogan-Gladen with the model's measured error"}},
        bursts=[{"burst_id": 1, "start_rank": 100, "end_rank": 299, "size": 200, "expected": 3.5,
                 "created_from": "2020-01-01T00:00:00+00:00", "created_to": "2020-01-04T00:00:00+00:00",
                 "followed_from": None, "followed_to": None, "fake_share": 0.9, "fake_share_low": 0.85,
                 "fake_share_high": 0.94, "score": 321.0}],
        sections={"growth": growth, "engagement": engagement},
    )
    charts = report_charts(fuller)
    assert "growth-history" in charts
    html = render_html(fuller, charts=charts)
    assert "Rogan-Gladen with the model&#39;s measured error" in html
    assert "31.0%" in html and "27.0% – 35.0%" in html
    assert 'id="bursts-table"' in html and "100 – 299" in html and "90.0% (85.0% – 94.0%)" in html
    assert 'id="chart-growth-history"' in html
    assert "No engagement data" not in html and "No growth data" not in html
    missing = replace(report, sections={"engagement": {"available": False, "missing": "posts with their like counts"}})
    assert "it needs posts with their like counts" in render_html(missing, charts={})


def test_hostile_account_is_escaped(demo) -> None:
    path, ids = demo
    with Store(path, read_only=True) as store:
        rep = build_audit(store, ids["hostile"]).report
    html = render_html(rep, charts={})
    assert HOSTILE_ACCOUNT not in html
    assert "evil&lt;script&gt;" in html


def test_static_charts_are_svg_and_png(report: Report, tmp_path: Path) -> None:
    charts = report_charts(report)
    for name in ("shares", "reasons"):
        ET.fromstring(charts[name].encode())  # well-formed SVG
    assert to_png(shares_figure(report)).startswith(b"\x89PNG\r\n\x1a\n")
    paths = write_charts(report, tmp_path / "charts")
    names = {p.name for p in paths}
    assert {"shares.svg", "shares.png", "reasons.svg", "reasons.png"} <= names
    assert all(p.stat().st_size > 1000 for p in paths)


def test_series_detection_is_generic() -> None:
    section = {"history": [{"date": "2026-01-01", "followers": 1}, {"date": "2026-01-02", "followers": 2}], "note": "x", "per_post": [{"id": 1}]}
    assert [k for k, _ in series_in(section)] == ["history"]


def test_follower_factory_embedded_when_the_chart_module_is_present(demo, report: Report) -> None:
    pytest.importorskip("followaudit.render.charts")
    path, ids = demo
    with Store(path, read_only=True) as store:
        frame = factory_frame(store, ids["a"])
    charts = report_charts(report, frame)
    assert "follower_factory" in charts
    html = render_html(report, charts=charts)
    assert 'id="chart-follower_factory"' in html and 'id="factory-unavailable"' not in html
    assert 'id="factory-unavailable"' in render_html(report, charts={})


def test_report_command_writes_html_json_csv_and_charts(demo, tmp_path: Path) -> None:
    path, ids = demo
    with Store(path, read_only=True) as store:
        expected = json.loads(render_json(build_audit(store, ids["a"]).report))
        labels_before = store.row("SELECT count(*) AS n FROM labels")["n"]
    runner = CliRunner()
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["report", str(ids["a"]), "--db", str(path), "-o", str(out), "--charts", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "<script" not in html and _external_refs(html) == []
    assert f"{100 * expected['shares']['fake']['share']:.1f}%" in html
    assert (tmp_path / "c" / "shares.svg").exists() and (tmp_path / "c" / "shares.png").exists()
    result = runner.invoke(cli, ["report", "demo_account", "--db", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    latest = json.loads(result.output)
    assert latest["snapshot"] == ids["b"]  # an account name means its latest snapshot
    result = runner.invoke(cli, ["report", str(ids["a"]), "--db", str(path), "--format", "json"])
    assert json.loads(result.output) == expected
    csv_out = tmp_path / "f.csv"
    assert runner.invoke(cli, ["report", str(ids["a"]), "--db", str(path), "-o", str(csv_out)]).exit_code == 0
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("follower_id,handle,label") and len(lines) == expected["followers_audited"] + 1
    with Store(path, read_only=True) as store:
        assert store.row("SELECT count(*) AS n FROM labels")["n"] == labels_before  # nothing written


def test_measured_error_of_a_model_is_stated(report: Report) -> None:
    detail = {"name": "model", "description": "LightGBM", "sensitivity": 0.9, "specificity": 0.98,
              "training_data": ["cresci-2015"], "cv": {"n": 4458}}
    html = render_html(replace(report, method="model", method_detail=detail), charts={})
    assert "finds 90.0% of fake accounts (sensitivity) and calls 2.0% of real accounts fake" in html
    assert "4,458 accounts in cross-validation" in html
    assert 'id="measured-error"' not in render_html(report, charts={})  # rules: no measured error claimed
